"""ArcFace's iresnet (InsightFace ``arcface_torch``) with its state-dict layout
(``conv1``, ``layer1``–``layer4`` of IBasicBlocks, ``bn2``, ``fc``, ``features``),
written from the published architecture. 112×112 RGB in, (x − 127.5) / 127.5,
512-d out."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fraudit.models.spec import ArchitectureSpec, defining_weights, read_shape_listing

INPUT_SIZE = 112
MEAN, SCALE = 127.5, 127.5
LAYERS = {"r50": (3, 4, 14, 3), "r100": (3, 13, 30, 3)}


class IBasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in, eps=1e-5)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, eps=1e-5)
        self.prelu = nn.PReLU(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out, eps=1e-5)
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out, eps=1e-5))
                           if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (self.downsample(x) if self.downsample is not None else x)


class IResNet(nn.Module):
    def __init__(self, depth: str = "r50", embedding: int = 512) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        widths, c_in = (64, 128, 256, 512), 64
        for index, (width, blocks) in enumerate(zip(widths, LAYERS[depth]), start=1):
            layer = [IBasicBlock(c_in, width, 2)] + [IBasicBlock(width, width, 1) for _ in range(blocks - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*layer))
            c_in = width
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.fc = nn.Linear(512 * 7 * 7, embedding)
        self.features = nn.BatchNorm1d(embedding, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages():
            x = stage(x)
        return x

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn1(self.conv1(x)))

    def stages(self) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
        """The forward pass as named steps, up to the embedding (iresnet normalises none)."""
        blocks = [(f"layer{i}.{j}", block) for i in range(1, 5) for j, block in enumerate(getattr(self, f"layer{i}"))]
        return [("stem", self.stem), *blocks, ("bn2", self.bn2), ("flatten", nn.Flatten()), ("fc", self.fc),
                ("features", self.features)]



def _spec(depth: int) -> ArchitectureSpec:
    return ArchitectureSpec(
        id=f"iresnet{depth}",
        name=f"ArcFace iresnet{depth} (insightface arcface_torch)",
        input_size=INPUT_SIZE,
        embedding_key="fc.weight",
        required=defining_weights(read_shape_listing(f"iresnet_r{depth}_keys.txt")),
        build=lambda: IResNet(f"r{depth}"),
        mean=MEAN,
        scale=SCALE,
        # the embedding layers, and with them the last residual block (and the BatchNorm after it)
        fine_tuned={"last-layer": ("fc", "features"),
                    "multi-layer": (f"layer4.{LAYERS[f'r{depth}'][3] - 1}", "bn2", "fc", "features")},
    )


# r100 first: be explicit about order even though neither's weights contain the other's.
SPECS = (_spec(100), _spec(50))
