"""A face embedder with its classification head as one module, as a classifier is
exported (e.g. to ONNX): two outputs, the embedding and the logits a plain linear
head computes from it. fraudit itself never needs it to audit; it is how the export
measurements and tests make the files users ship."""

from __future__ import annotations

import torch
from torch import nn


class EmbedderWithHead(nn.Module):
    def __init__(self, embedder: nn.Module, head: torch.Tensor) -> None:
        super().__init__()
        self.embedder = embedder
        self.head = nn.Linear(head.shape[1], head.shape[0], bias=False)
        with torch.no_grad():
            self.head.weight.copy_(head)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embedder(x)
        return embedding, self.head(embedding)
