"""Face embedders: uint8 faces in (N×H×W×3, RGB), float32 embeddings out. Each
embedder owns its preprocessing (input size, normalisation), so a caller hands
every model the same faces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from fraudit.errors import UnsupportedFormatError


class Embedder(Protocol):
    name: str
    input_size: int

    def embed(self, faces: np.ndarray) -> np.ndarray: ...


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a uint8 batch to size×size (a no-op at the right size)."""
    if faces.shape[1:3] == (size, size):
        return faces
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in faces])


@dataclass
class TorchEmbedder:
    """A torch module that maps normalised N×3×H×W input to embeddings."""

    name: str
    module: torch.nn.Module
    input_size: int
    mean: float = 127.5
    scale: float = 128.0
    batch_size: int = 256

    @torch.inference_mode()
    def embed(self, faces: np.ndarray) -> np.ndarray:
        self.module.eval()
        faces = resize_faces(faces, self.input_size)
        out = []
        for i in range(0, len(faces), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(faces[i : i + self.batch_size])).permute(0, 3, 1, 2).float()
            out.append(self.module((x - self.mean) / self.scale).float().numpy())
        return np.concatenate(out).astype(np.float32)


@dataclass
class OnnxEmbedder:
    """Any ONNX face model through onnxruntime; input size read from the graph.
    Default normalisation is InsightFace buffalo's (x − 127.5) / 127.5."""

    path: Path
    mean: float = 127.5
    scale: float = 127.5
    batch_size: int = 64

    def __post_init__(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        shape = graph_input.shape
        if len(shape) != 4 or not isinstance(shape[2], int) or shape[1] != 3:
            raise UnsupportedFormatError(f"{self.path.name}: expected an N×3×H×W image input, got {shape}")
        self.input_size = int(shape[2])
        self.name = self.path.name
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None

    def embed(self, faces: np.ndarray) -> np.ndarray:
        faces = resize_faces(faces, self.input_size)
        step = self.fixed_batch or self.batch_size
        out = []
        for i in range(0, len(faces), step):
            x = (np.ascontiguousarray(faces[i : i + step]).transpose(0, 3, 1, 2).astype(np.float32) - self.mean) / self.scale
            if self.fixed_batch and len(x) < self.fixed_batch:  # pad a last partial batch
                x = np.concatenate([x, np.zeros((self.fixed_batch - len(x), *x.shape[1:]), np.float32)])
                out.append(self.session.run(None, {self.input_name: x})[0][: len(faces) - i])
            else:
                out.append(self.session.run(None, {self.input_name: x})[0])
        return np.concatenate(out).astype(np.float32)


def reference_embedder(path: Path) -> TorchEmbedder:
    """The reference architecture from a checkpoint (zoo model or base), loaded safely."""
    from fraudit.formats.safe import load_checked
    from fraudit.models.reference import INPUT_SIZE, ReferenceEmbedder

    tensors = load_checked(path)
    model = ReferenceEmbedder()
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("head.")})
    return TorchEmbedder(name=path.name, module=model, input_size=INPUT_SIZE)
