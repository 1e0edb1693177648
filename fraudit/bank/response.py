"""What the head-response reading runs: a network's embeddings of one fixed set of
generic faces — built-in synthetic faces of identities no zoo trains on (the
reserved latent seed of pairing's calibration faces), so every bank and every
candidate is read on the same faces, and nothing of a user's data is needed."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

# Where the embeddings sit among the arrays a bank scores (never a tensor name).
RESPONSE_KEY = "@response"
RESPONSE_FACES_SEED = 3_000
RESPONSE_FACES = 600


@lru_cache(maxsize=1)
def response_faces() -> np.ndarray:
    from fraudit.faces.synthetic import unlabelled_faces

    return unlabelled_faces(seed=RESPONSE_FACES_SEED, n=RESPONSE_FACES)


def response_embeddings(name: str, tensors: dict[str, torch.Tensor]) -> np.ndarray:
    """The network's embeddings of the response faces, run with its architecture's own
    preprocessing (not a user's override: the references were read that way)."""
    from fraudit.pairing.embedders import torch_embedder

    return torch_embedder(name, tensors).embed(response_faces()).astype(np.float64)


def faces_record() -> dict[str, int]:
    return {"seed": RESPONSE_FACES_SEED, "n": RESPONSE_FACES}
