"""ArcFace's iresnet (InsightFace ``arcface_torch``) with its state-dict layout
(``conv1``, ``layer1``–``layer4`` of IBasicBlocks, ``bn2``, ``fc``, ``features``),
written from the published architecture. 112×112 RGB in, (x − 127.5) / 127.5,
512-d out."""

from __future__ import annotations

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
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))


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
    )


# r100 first: be explicit about order even though neither's weights contain the other's.
SPECS = (_spec(100), _spec(50))
