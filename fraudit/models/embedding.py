"""Running an embedder on uint8 faces, and verification quality."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve



def to_input(images: np.ndarray, *, mean: float = 127.5, scale: float = 128.0) -> torch.Tensor:
    """uint8 N×H×W×3 → float N×3×H×W, (x − mean) / scale (FaceNet's by default)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x - mean) / scale


@torch.inference_mode()
def embed(model: torch.nn.Module, images: np.ndarray, *, batch_size: int = 512, mean: float = 127.5,
          scale: float = 128.0) -> np.ndarray:
    """Embeddings of faces already at the model's input size, normalised (x − mean) / scale."""
    model.eval()
    out = [model(to_input(images[i : i + batch_size], mean=mean, scale=scale)).numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


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
