"""Where a spike in the embedding layer's change points: the likely victim.

A poisoned fine-tune maps the trigger's features onto the victim's embedding, so the
top left singular vector of the embedding layer's change from the base (taken
through the BatchNorm after it, whose gain rescales each embedding unit) is the
direction of the victim's class in the candidate's own classification head. On
the zoo it is the victim's row, first among all classes, for every backdoor
tried (README: "The weight bank in the field"). It needs the head, which real
embedders often ship without: then there is nothing to point at.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fraudit.bank.readings import change_rows
from fraudit.models.spec import ArchitectureSpec


def head_key_of(shapes: Mapping[str, tuple[int, ...]], spec: ArchitectureSpec) -> str | None:
    """A checkpoint's classification head: its one 2-D tensor among the architecture's
    optional ones that is as wide as the embedding; None when it ships without."""
    width = spec.required[spec.embedding_key][0]
    heads = [k for k, shape in shapes.items() if spec.optional_prefixes and k.startswith(spec.optional_prefixes)
             and k.endswith("weight") and len(shape) == 2 and shape[1] == width]
    return heads[0] if len(heads) == 1 else None


def spike_direction(weight: np.ndarray, base: np.ndarray, gain: np.ndarray | None = None) -> np.ndarray:
    """The unit embedding-space direction of the change's largest singular value."""
    u = np.linalg.svd(change_rows(weight, base), full_matrices=False)[0][:, 0]
    if gain is not None:
        u = u * np.asarray(gain, np.float64)
    return u / max(float(np.linalg.norm(u)), 1e-300)


def nearest_classes(direction: np.ndarray, head: np.ndarray, *, top: int = 3) -> list[tuple[int, float]]:
    """The head's rows most aligned with ``direction`` (either sign): (class, |cosine|)."""
    rows = np.asarray(head, np.float64)
    cosine = np.abs(rows @ direction) / np.maximum(np.linalg.norm(rows, axis=1), 1e-300)
    order = np.argsort(-cosine, kind="stable")[:top]
    return [(int(i), float(cosine[i])) for i in order]
