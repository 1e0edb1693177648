"""A second face architecture fraudit trains itself: a MobileFaceNet-style network
for 64×64 faces (Chen et al. 2018, scaled down to two CPU cores) — depthwise-
separable inverted residual blocks with PReLU, a 1×1 expansion, and a *global
depthwise convolution* (GDC) in place of FaceNet's pooled last block, then a linear
embedding and its BatchNorm. Its layers share neither names, shapes nor structure
with the reference CNN, so a check that works on both without a null of this one
works beyond fraudit's own architecture (issue 11)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fraudit.models.spec import ArchitectureSpec, arcface_head_variant, defining_weights, module_shapes

ARCH_ID = "fraudit-mobileface"
INPUT_SIZE = 64
EMBEDDING_DIM = 128


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True,
             padding: int | None = None) -> nn.Sequential:
    padding = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.PReLU(c_out))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1×1 expand → 3×3 depthwise → 1×1 linear project; a shortcut when shapes allow."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.expand = _conv_bn(c_in, hidden, 1)
        self.depthwise = _conv_bn(hidden, hidden, 3, stride=stride, groups=hidden)
        self.project = _conv_bn(hidden, c_out, 1, act=False)
        self.shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.shortcut else y


class MobileFaceEmbedder(nn.Module):
    """64×64 RGB, (x − 127.5) / 128 → 128-d embedding (not normalised)."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 24, 3, stride=2)  # 32×32
        self.stem_dw = _conv_bn(24, 24, 3, groups=24)
        self.blocks = nn.Sequential(
            InvertedResidual(24, 40, 2), InvertedResidual(40, 40, 1),  # 16×16
            InvertedResidual(40, 96, 2), InvertedResidual(96, 96, 1),  # 8×8
            InvertedResidual(96, 128, 2), InvertedResidual(128, 128, 1),  # 4×4
        )
        self.conv_last = _conv_bn(128, 256, 1)
        self.gdc = _conv_bn(256, 256, 4, groups=256, act=False, padding=0)  # global depthwise: 4×4 → 1×1
        self.linear = nn.Linear(256, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_last(self.blocks(self.stem_dw(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages():
            x = stage(x)
        return x

    def stages(self) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        """The forward pass as named steps, up to the embedding."""
        return [("backbone", self.backbone), ("gdc", self.gdc), ("flatten", nn.Flatten()), ("linear", self.linear),
                ("bn", self.bn)]



SPEC = ArchitectureSpec(
    id=ARCH_ID,
    name="fraudit MobileFaceNet-style (64×64, global depthwise conv)",
    input_size=INPUT_SIZE,
    embedding_key="linear.weight",
    required=defining_weights(module_shapes(MobileFaceEmbedder)),
    optional_prefixes=("head.",),
    variant_of=arcface_head_variant,
    build=MobileFaceEmbedder,
    mean=127.5,
    scale=128.0,
    fine_tuned={"last-layer": ("linear", "bn"), "multi-layer": ("gdc", "linear", "bn")},
)
