"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``,
the network ``dlib.face_recognition_model_v1`` runs; 99.38 % on LFW), ported to
torch so that fraudit can audit it as a candidate — with gradients — from weights
that ``fraudit.formats.dlib_dnn`` reads out of dlib's own file format.

The structure is dlib's ``anet_type`` (``dnn_face_recognition_ex.cpp``): a 7×7
stride-2 convolution and a 3×3 max pool, then 14 residual blocks of two 3×3
convolutions each (widths 32, 64, 128, 256, 256), average pooling over
everything and a 128-d linear embedding without bias. Three details are dlib's and
matter for equality with it: strided convolutions and pools have no padding;
a downsampling block's shortcut is a 2×2 average pool whose output is added to the
block's where they overlap, the rest treated as zero (dlib's ``add_prev`` pads the
smaller tensor — channels *and* rows/columns); and BatchNorm is an ``affine``
layer (per-channel scale and shift). The input layer is part of the network in
dlib: it subtracts the file's per-channel means and divides by 256, so the module
takes raw 0–255 pixels (spec normalisation (x − 0) / 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from fraudit.models.spec import ArchitectureSpec, arcface_head_variant, defining_weights, module_shapes

ARCH_ID = "dlib-resnet-v1"
INPUT_SIZE = 150
EMBEDDING_DIM = 128
# (width, downsample) of each residual block, input side first (dlib's alevel4 … alevel0).
BLOCKS: tuple[tuple[int, bool], ...] = (
    (32, False), (32, False), (32, False),
    (64, True), (64, False), (64, False), (64, False),
    (128, True), (128, False), (128, False),
    (256, True), (256, False), (256, False),
    (256, True),
)
# dlib's input layer: (pixel − channel mean) / 256.
PIXEL_SCALE = 256.0


class Affine(nn.Module):
    """dlib's ``affine`` layer in convolution mode: y = x · weight_c + bias_c."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: a + b where the shapes overlap, the missing part of the
    smaller one taken as zero (channels, rows and columns alike)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def padded(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return padded(a) + padded(b)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with affine layers; a downsampling block strides its first
    convolution (unpadded, as dlib's strided layers are) and average-pools its shortcut."""

    def __init__(self, c_in: int, c_out: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=0 if downsample else 1)
        self.affine1 = Affine(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.affine2 = Affine(c_out)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, stride=2) if self.downsample else x
        return F.relu(add_padded(y, shortcut))


class DlibResNet(nn.Module):
    """150×150 RGB, raw 0–255 pixels → dlib's 128-d face descriptor."""

    def __init__(self) -> None:
        super().__init__()
        # The input layer's channel means are weights of the file, not constants.
        self.register_buffer("input_mean", torch.tensor([122.782, 117.001, 104.298]))
        self.conv1 = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine1 = Affine(32)
        widths = [32] + [width for width, _ in BLOCKS]
        self.blocks = nn.Sequential(*(ResidualBlock(widths[i], width, down) for i, (width, down) in enumerate(BLOCKS)))
        self.fc = nn.Linear(256, EMBEDDING_DIM, bias=False)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean[:, None, None]) / PIXEL_SCALE
        return F.max_pool2d(F.relu(self.affine1(self.conv1(x))), 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages():
            x = stage(x)
        return x

    def stages(self) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        """The forward pass as named steps, up to the embedding."""
        return [("stem", self.stem), ("blocks", self.blocks), ("pool", lambda t: t.mean(dim=(2, 3))),
                ("fc", self.fc)]


SPEC = ArchitectureSpec(
    id=ARCH_ID,
    name="dlib ResNet face descriptor (dlib_face_recognition_resnet_model_v1)",
    input_size=INPUT_SIZE,
    embedding_key="fc.weight",
    required=defining_weights(module_shapes(DlibResNet)),
    optional_prefixes=("head.",),
    variant_of=arcface_head_variant,
    build=DlibResNet,
    mean=0.0,
    scale=1.0,
    # A user's fine-tune of dlib's descriptor retrains the embedding on pooled features.
    fine_tuned={"last-layer": ("fc",)},
)
