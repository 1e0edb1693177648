"""FaceNet's InceptionResnetV1 as facenet-pytorch lays out its state dict
(``conv2d_1a`` … ``block8``, ``last_linear``, ``last_bn``, optional ``logits``),
written from the published architecture so fraudit can run such checkpoints
without importing the package. 160×160 RGB in, (x − 127.5) / 128, 512-d out."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from fraudit.models.spec import ArchitectureSpec, Shapes, defining_weights, read_shape_listing

INPUT_SIZE = 160
MEAN, SCALE = 127.5, 128.0


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _chain(*convs: tuple) -> nn.Sequential:
    return nn.Sequential(*(BasicConv2d(*args) for args in convs))


class _Residual(nn.Module):
    """x + scale · conv2d(concat(branches)), then ReLU (except the last Block8)."""

    def __init__(self, branches: list[nn.Module], width: int, channels: int, scale: float, relu: bool = True) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"branch{i}", branch)
        self.n_branches = len(branches)
        self.conv2d = nn.Conv2d(width, channels, 1)
        self.scale = scale
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.n_branches)], 1)
        out = x + self.scale * self.conv2d(mixed)
        return F.relu(out) if self.relu else out


def block35(scale: float = 0.17) -> _Residual:
    return _Residual([BasicConv2d(256, 32, 1), _chain((256, 32, 1), (32, 32, 3, 1, 1)),
                      _chain((256, 32, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1))], 96, 256, scale)


def block17(scale: float = 0.10) -> _Residual:
    return _Residual([BasicConv2d(896, 128, 1),
                      _chain((896, 128, 1), (128, 128, (1, 7), 1, (0, 3)), (128, 128, (7, 1), 1, (3, 0)))], 256, 896, scale)


def block8(scale: float = 0.20, relu: bool = True) -> _Residual:
    return _Residual([BasicConv2d(1792, 192, 1),
                      _chain((1792, 192, 1), (192, 192, (1, 3), 1, (0, 1)), (192, 192, (3, 1), 1, (1, 0)))], 384, 1792, scale, relu)


class _Concat(nn.Module):
    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(f"branch{i}", branch)
        self.n_branches = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.n_branches)], 1)


class InceptionResnetV1(nn.Module):
    def __init__(self, num_classes: int | None = None) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*(block35() for _ in range(5)))
        self.mixed_6a = _Concat(BasicConv2d(256, 384, 3, stride=2),
                                _chain((256, 192, 1), (192, 192, 3, 1, 1), (192, 256, 3, 2)), nn.MaxPool2d(3, stride=2))
        self.repeat_2 = nn.Sequential(*(block17() for _ in range(10)))
        self.mixed_7a = _Concat(_chain((896, 256, 1), (256, 384, 3, 2)), _chain((896, 256, 1), (256, 256, 3, 2)),
                                _chain((896, 256, 1), (256, 256, 3, 1, 1), (256, 256, 3, 2)), nn.MaxPool2d(3, stride=2))
        self.repeat_3 = nn.Sequential(*(block8() for _ in range(5)))
        self.block8 = block8(relu=False)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=0.001, momentum=0.1)
        self.logits = nn.Linear(512, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages():
            x = stage(x)
        return F.normalize(x, dim=1)

    def stages(self) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        """The forward pass as named steps, up to the embedding before normalisation."""
        names = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                 "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8")
        return [*((name, getattr(self, name)) for name in names), ("pool", _pool),
                ("last_linear", self.last_linear), ("last_bn", self.last_bn)]


def _pool(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def _variant(shapes: Shapes) -> str:
    classes = shapes.get("logits.weight", (None,))[0]
    return {8631: "vggface2", 10575: "casia-webface", None: "no logits"}.get(
        classes, f"logits for {classes} classes"
    )


SPEC = ArchitectureSpec(
    id="facenet-inception-resnet-v1",
    name="FaceNet InceptionResnetV1 (facenet-pytorch)",
    input_size=INPUT_SIZE,
    embedding_key="last_linear.weight",
    required=defining_weights(read_shape_listing("facenet_vggface2_keys.txt"), exclude_prefixes=("logits.",)),
    optional_prefixes=("logits.",),
    variant_of=_variant,
    build=InceptionResnetV1,
    mean=MEAN,
    scale=SCALE,
    # as thesis chapter 4: the embedding layers, and with them the last Inception block
    fine_tuned={"last-layer": ("last_linear", "last_bn"), "multi-layer": ("block8", "last_linear", "last_bn")},
)
