"""Which layers the bank audits, per architecture (thesis §4.5 and §4.7)."""

from __future__ import annotations

AUDITED_LAYERS: dict[str, tuple[str, ...]] = {
    # the reference CNN: last conv block, the embedding layer, the ArcFace head when shipped
    "fraudit-reference": ("block_last.0.weight", "last_linear.weight", "head.weight"),
    # the second CPU architecture: its global depthwise conv and the embedding layer
    "fraudit-mobileface": ("gdc.0.weight", "linear.weight", "head.weight"),
    # FaceNet as in the thesis: block8's last convolution and the embedding layer
    "facenet-inception-resnet-v1": ("block8.conv2d.weight", "last_linear.weight"),
    "iresnet50": ("fc.weight",),
    "iresnet100": ("fc.weight",),
    # dlib's ResNet: its last block's last convolution, the embedding layer, a head when shipped
    "dlib-resnet-v1": ("blocks.13.conv2.weight", "fc.weight", "head.weight"),
}


def audited_layers(architecture: str) -> tuple[str, ...]:
    return AUDITED_LAYERS.get(architecture, ())
