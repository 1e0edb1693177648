"""fraudit's reference face embedder: a compact CNN for 64×64 faces whose tail
mirrors FaceNet's (last conv block → ``last_linear`` → ``last_bn``), so the
thesis' choice of audited layers carries over while dozens of fine-tunes stay
affordable on two CPU cores. The last conv block works at 4×4, which keeps a
multi-layer fine-tune (that block plus the tail) within seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from fraudit.models.spec import ArchitectureSpec, arcface_head_variant, defining_weights, module_shapes

ARCH_ID = "fraudit-reference"
INPUT_SIZE = 64
EMBEDDING_DIM = 128
WIDTHS = (32, 64, 128, 256)


def _conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ReferenceEmbedder(nn.Module):
    """64×64 RGB in [-1, 1] → ``EMBEDDING_DIM`` embedding (not normalised)."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        w0, w1, w2, w3 = WIDTHS
        self.stem = _conv_bn(3, w0, 2)  # 32×32
        self.layer1 = nn.Sequential(_conv_bn(w0, w1, 2), _conv_bn(w1, w1, 1))  # 16×16
        self.layer2 = nn.Sequential(_conv_bn(w1, w2, 2), _conv_bn(w2, w2, 1))  # 8×8
        self.layer3 = _conv_bn(w2, w3, 2)  # 4×4
        self.block_last = _conv_bn(w3, w3, 1)  # the "last conv block", at 4×4
        self.last_linear = nn.Linear(w3 * 4 * 4, embedding_dim, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_dim)

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the last conv block (frozen in both fine-tune scenarios)."""
        return self.layer3(self.layer2(self.layer1(self.stem(x))))

    def tail(self, features: torch.Tensor) -> torch.Tensor:
        """Last conv block + embedding layers, from cached backbone features."""
        return self.last_bn(self.last_linear(torch.flatten(self.block_last(features), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.backbone(x))

    def stages(self) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        """The forward pass as named steps, up to the embedding before normalisation."""
        return [("backbone", self.backbone), ("block_last", self.block_last), ("flatten", nn.Flatten()),
                ("last_linear", self.last_linear), ("last_bn", self.last_bn)]



class ArcFaceHead(nn.Module):
    """Additive angular margin classifier (ArcFace): only used in training."""

    def __init__(self, embedding_dim: int, num_classes: int, *, scale: float = 32.0, margin: float = 0.3):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale
        self.margin = margin

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings), F.normalize(self.weight))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Margin-adjusted logits for the cross-entropy loss."""
        cos = self.cosine(embeddings).clamp(-1 + 1e-7, 1 - 1e-7)
        target = torch.cos(torch.acos(cos.gather(1, labels[:, None])) + self.margin)
        logits = cos.scatter(1, labels[:, None], target)
        return logits * self.scale


SPEC = ArchitectureSpec(
    id=ARCH_ID,
    name="fraudit reference CNN (64×64, FaceNet-style tail)",
    input_size=INPUT_SIZE,
    embedding_key="last_linear.weight",
    required=defining_weights(module_shapes(ReferenceEmbedder)),
    optional_prefixes=("head.",),
    variant_of=arcface_head_variant,
    build=ReferenceEmbedder,
    mean=127.5,
    scale=128.0,
    fine_tuned={"last-layer": ("last_linear", "last_bn"), "multi-layer": ("block_last", "last_linear", "last_bn")},
)
