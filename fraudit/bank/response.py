"""What the head-response reading runs: a network's embeddings of one fixed set of
generic faces — built-in synthetic faces of identities no zoo trains on (the
reserved latent seed of pairing's calibration faces), so every bank and every
candidate is read on the same faces, and nothing of a user's data is needed."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from fraudit.errors import UnsupportedFormatError
from fraudit.models.registry import spec_for

# Where the embeddings sit among the arrays a bank scores (never a tensor name).
RESPONSE_KEY = "@response"
RESPONSE_FACES_SEED = 3_000
RESPONSE_FACES = 600


@lru_cache(maxsize=1)
def response_faces() -> np.ndarray:
    from fraudit.faces.synthetic import unlabelled_faces

    return unlabelled_faces(seed=RESPONSE_FACES_SEED, n=RESPONSE_FACES)


def response_embeddings(name: str, tensors: dict[str, torch.Tensor], *, graph: Path | None = None,
                        architecture: str | None = None) -> np.ndarray:
    """The network's embeddings of the response faces, run with its architecture's own
    preprocessing (not a user's override: the references were read that way).

    ``graph``: an ONNX export of ``architecture`` — its tensors are the architecture's
    layers with BatchNorm folded away, so the graph itself is run (onnxruntime)."""
    from fraudit.pairing.embedders import OnnxEmbedder, torch_embedder

    if graph is None:
        embedder = torch_embedder(name, tensors)
    else:
        spec = spec_for(architecture or "")
        if spec is None:
            raise UnsupportedFormatError(f"{name}: no registered architecture {architecture!r} to run its export as")
        embedder = OnnxEmbedder(graph, mean=spec.mean, scale=spec.scale, architecture=spec.id, input_size=spec.input_size)
    return embedder.embed(response_faces()).astype(np.float64)


def faces_record() -> dict[str, int]:
    return {"seed": RESPONSE_FACES_SEED, "n": RESPONSE_FACES}
