"""Running a reference embedder on uint8 faces, and verification quality."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from fraudit.models.reference import ReferenceEmbedder


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×3 → float N×3×H×W, (x − 127.5) / 128 as FaceNet does."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x - 127.5) / 128.0


@torch.inference_mode()
def embed(model: ReferenceEmbedder, images: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    model.eval()
    out = [model(to_input(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.last_bn.num_features), np.float32)


@torch.inference_mode()
def backbone_features(model: ReferenceEmbedder, images: np.ndarray, *, upto: str, batch_size: int = 512) -> np.ndarray:
    """Frozen features for cached fine-tuning: ``upto`` is 'block_last' (its output,
    the input of last_linear) or 'layer3' (the input of the last conv block)."""
    model.eval()
    chunks = []
    for i in range(0, len(images), batch_size):
        h = model.backbone(to_input(images[i : i + batch_size]))
        if upto == "block_last":
            h = model.block_last(h)
        chunks.append(h.numpy())
    return np.concatenate(chunks)


def verification_metrics(embeddings: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """All-pairs cosine verification: ROC AUC, TAR at FAR 1e-3 and 1e-2, EER."""
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = e @ e.T
    iu = np.triu_indices(len(e), k=1)
    s = scores[iu]
    same = (labels[:, None] == labels[None, :])[iu]
    fpr, tpr, _ = roc_curve(same, s)
    eer_index = np.nanargmin(np.abs(fpr - (1 - tpr)))
    return {
        "roc_auc": float(roc_auc_score(same, s)),
        "tar_at_far_1e-3": float(np.interp(1e-3, fpr, tpr)),
        "tar_at_far_1e-2": float(np.interp(1e-2, fpr, tpr)),
        "eer": float((fpr[eer_index] + 1 - tpr[eer_index]) / 2),
        "genuine_pairs": int(same.sum()),
        "impostor_pairs": int((~same).sum()),
    }
