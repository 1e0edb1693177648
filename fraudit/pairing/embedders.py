"""Face embedders: uint8 faces in (N×H×W×3, RGB), float32 embeddings out. Each
embedder owns its preprocessing (input size, normalisation), so a caller hands
every model the same faces.

Every embedder has a ``fingerprint`` (a hash of its weights and preprocessing), and
``embed_cached`` keeps its embeddings of a face batch under fraudit's cache: the trusted side of a sweep is computed once and reused by every
audit, which then costs only the candidate's forward passes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.nn import functional as F
from safetensors.numpy import load_file, save_file

from fraudit.cache import cache_dir, file_sha256
from fraudit.errors import EmbedderUnavailableError, UnsupportedFormatError
from fraudit.formats import Format
from fraudit.faces.resize import resize_faces
from fraudit.formats.load import embedding_output, load_onnx_model
from fraudit.formats.safe import load_checked
from fraudit.models.dlib_resnet import INPUT_SIZE as DLIB_INPUT_SIZE
from fraudit.models.registry import ONNX_EMBEDDER, ONNX_MEAN, ONNX_SCALE, ArchitectureMatch, load_module
from fraudit.resources import shipped_embeddings_dir, verify_shipped

DLIB = "dlib"
# How far the torch-interpreted ONNX graph may be from onnxruntime (relative to the
# largest output): float32 reordering sits near 1e-6.
GRAPH_TOLERANCE = 1e-4
DLIB_INSTALL_HINT = 'pip install "fraudit[dlib]"  (face-recognition-models: dlib\'s model files)'


class Embedder(Protocol):
    name: str
    input_size: int
    fingerprint: str
    architecture: str  # the registry id, for finding what fraudit ships for it

    def embed(self, faces: np.ndarray) -> np.ndarray: ...


def cache_name(embedder: Embedder, faces: np.ndarray) -> str:
    """Where the embeddings of ``faces`` live under a cache root: fingerprint/face-hash."""
    digest = hashlib.sha256(repr((faces.shape, str(faces.dtype))).encode())
    digest.update(np.ascontiguousarray(faces).data)
    return f"{embedder.fingerprint[:24]}/{digest.hexdigest()[:32]}.safetensors"


def embed_cached(embedder: Embedder, faces: np.ndarray, *,
                 progress: Callable[[int, int], None] | None = None, chunk: int = 256) -> np.ndarray:
    """``embedder.embed(faces)``, kept on disk by (embedder fingerprint, face bytes).

    The cache is safetensors, not joblib.Memory's pickles: a cache folder is
    writable state, and a tampered pickle there would run code in the auditor.
    """
    name = cache_name(embedder, faces)
    path = cache_dir("embeddings") / name
    shipped = shipped_embeddings_dir() / name
    if path.exists():
        return load_file(str(path))["embeddings"]
    if shipped.exists():
        verify_shipped(shipped)  # refused if it is not the file this fraudit version pins
        return load_file(str(shipped))["embeddings"]
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, len(faces), chunk):
        parts.append(embedder.embed(faces[start : start + chunk]))
        if progress is not None:
            progress(min(start + chunk, len(faces)), len(faces))
    embeddings = np.ascontiguousarray(np.concatenate(parts).astype(np.float32))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({"embeddings": embeddings}, str(tmp), metadata={"embedder": embedder.name})
    tmp.replace(path)
    return embeddings


def model_pixels(pixels: torch.Tensor, input_size: int, mean: float, scale: float) -> torch.Tensor:
    """What ``embed`` feeds a model, differentiably: N×3×H×W pixels in [0, 255] resized
    (bilinear) to the model's input and normalised."""
    if pixels.shape[-1] != input_size:
        pixels = F.interpolate(pixels, size=(input_size, input_size), mode="bilinear", align_corners=False,
                               antialias=pixels.shape[-1] > input_size)
    return (pixels - mean) / scale


@dataclass
class TorchEmbedder:
    """A torch module that maps normalised N×3×H×W input to embeddings."""

    name: str
    module: torch.nn.Module
    input_size: int
    mean: float = 127.5
    scale: float = 128.0
    batch_size: int = 256
    fingerprint: str = ""
    architecture: str = "unknown"

    def __post_init__(self) -> None:
        if not self.fingerprint:  # hash the weights: a cache key must change with them
            digest = hashlib.sha256(f"{self.input_size}|{self.mean}|{self.scale}".encode())
            for key, tensor in sorted(self.module.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self.fingerprint = digest.hexdigest()

    @torch.inference_mode()
    def embed(self, faces: np.ndarray) -> np.ndarray:
        self.module.eval()
        faces = resize_faces(faces, self.input_size)
        out = []
        for i in range(0, len(faces), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(faces[i : i + self.batch_size])).permute(0, 3, 1, 2).float()
            out.append(self.module((x - self.mean) / self.scale).float().numpy())
        return np.concatenate(out).astype(np.float32)

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Differentiable in the pixels (N×3×H×W in [0, 255]): resized and normalised as
        ``embed`` does, for searches that follow the gradient to a trigger."""
        self.module.eval().requires_grad_(False)
        return self.module(model_pixels(pixels, self.input_size, self.mean, self.scale))


@dataclass
class OnnxEmbedder:
    """Any ONNX face model through onnxruntime; input size read from the graph.
    Default normalisation is InsightFace buffalo's (x − 127.5) / 127.5."""

    path: Path
    mean: float = ONNX_MEAN
    scale: float = ONNX_SCALE
    batch_size: int = 64
    # an export of a registered architecture is that architecture (its nulls apply)
    architecture: str = ONNX_EMBEDDER
    input_size: int | None = None  # needed only where the graph's H×W is dynamic
    _graph: torch.nn.Module | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped exceptions
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UnsupportedFormatError(f"{self.path.name}: onnxruntime cannot run this graph ({first})",
                                         path=self.path) from exc
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        # a model exported with its head gives logits too; the embedding is read
        graph = load_onnx_model(self.path).graph
        self.output_name = embedding_output(graph)
        shape = graph_input.shape
        if len(shape) != 4 or shape[1] != 3:
            raise UnsupportedFormatError(f"{self.path.name}: expected an N×3×H×W image input, got {shape}")
        if isinstance(shape[2], int):
            if self.input_size is not None and self.input_size != shape[2]:
                raise UnsupportedFormatError(f"{self.path.name}: the graph takes {shape[2]}×{shape[3]} faces, "
                                             f"not the {self.input_size}×{self.input_size} given")
            self.input_size = int(shape[2])
        elif self.input_size is None:
            raise UnsupportedFormatError(f"{self.path.name}: the graph's input size is dynamic ({shape}): "
                                         "give it (--input-size)")
        self.name = self.path.name
        # which output is read belongs in the cache key where there is a choice
        read = f"|{self.output_name}" if len(graph.output) > 1 else ""
        self.fingerprint = hashlib.sha256(f"{file_sha256(self.path)}|{self.mean}|{self.scale}{read}".encode()).hexdigest()
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None

    def embed(self, faces: np.ndarray) -> np.ndarray:
        faces = resize_faces(faces, self.input_size)
        step = self.fixed_batch or self.batch_size
        out = []
        for i in range(0, len(faces), step):
            x = (np.ascontiguousarray(faces[i : i + step]).transpose(0, 3, 1, 2).astype(np.float32) - self.mean) / self.scale
            if self.fixed_batch and len(x) < self.fixed_batch:  # pad a last partial batch
                x = np.concatenate([x, np.zeros((self.fixed_batch - len(x), *x.shape[1:]), np.float32)])
                out.append(self.session.run([self.output_name], {self.input_name: x})[0][: len(faces) - i])
            else:
                out.append(self.session.run([self.output_name], {self.input_name: x})[0])
        return np.concatenate(out).astype(np.float32)

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Differentiable in the pixels, through the graph interpreted by torch
        (``fraudit.formats.onnx_graph``). Its first use is checked against onnxruntime
        on the same input: a graph torch does not run exactly as onnxruntime does gives
        no gradient path rather than a wrong one."""
        assert self.input_size is not None  # set from the graph or the user in __post_init__
        x = model_pixels(pixels, self.input_size, self.mean, self.scale)
        if self._graph is None:
            from fraudit.formats.onnx_graph import OnnxGraphModule

            graph = OnnxGraphModule(self.path)
            sample = x[: self.fixed_batch or 8].detach()
            with torch.no_grad():
                ours = graph(sample).float().numpy()
            theirs = self.session.run([self.output_name], {self.input_name: sample.float().numpy()})[0]
            error = float(np.abs(ours - theirs).max() / max(float(np.abs(theirs).max()), 1e-12))
            if ours.shape != theirs.shape or not error <= GRAPH_TOLERANCE:
                raise EmbedderUnavailableError(f"{self.name}: torch runs this graph differently from onnxruntime "
                                               f"(relative error {error:.1e}); no gradient path")
            self._graph = graph
        return self._graph(x)


def dlib_model_path() -> Path:
    """dlib's ResNet face descriptor, from the ``face-recognition-models`` package.

    Located without importing the package: its ``__init__`` needs ``pkg_resources``,
    which recent setuptools no longer ship.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailableError(f"the dlib trusted model is not installed: {DLIB_INSTALL_HINT}")
    path = Path(spec.submodule_search_locations[0]) / "models" / "dlib_face_recognition_resnet_model_v1.dat"
    if not path.is_file():
        raise EmbedderUnavailableError(f"{path} is missing; reinstall face-recognition-models")
    return path


@dataclass
class DlibEmbedder:
    """dlib's ResNet face descriptor (128-d, 150×150 chips; trained on real faces).

    Faces go in as aligned crops resized to 150×150 (the chip dlib's
    ``get_face_chip`` would give for a tight crop); no detector runs. dlib's own
    file (``path``; default: the one ``face-recognition-models`` installs) is read by
    fraudit's parser and run in the torch port of its network, which gives dlib's
    descriptors to float32 rounding (a test holds it to dlib itself) at about 13×
    dlib's speed on CPU, and with gradients. The fingerprint names the file, not the
    engine: embeddings dlib computed for the same file (the shipped ones) stay valid.
    """

    path: Path | None = None
    # the file's weights when a caller has read them already (a dlib candidate): not read twice
    tensors: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    name: str = "dlib-resnet-v1"
    architecture: str = "dlib-resnet-v1"
    input_size: int = 150
    batch_size: int = 64
    fingerprint: str = field(init=False, default="")

    def __post_init__(self) -> None:
        from fraudit.formats.dlib_dnn import read_dlib_dnn

        self.path = self.path or dlib_model_path()
        self.fingerprint = hashlib.sha256(f"dlib|{file_sha256(self.path)}|{self.input_size}".encode()).hexdigest()
        module, spec = load_module(self.name, self.tensors if self.tensors is not None else read_dlib_dnn(self.path))
        self.tensors = None  # the module holds the weights
        self._port = TorchEmbedder(self.name, module, spec.input_size, mean=spec.mean, scale=spec.scale,
                                   batch_size=self.batch_size, fingerprint=self.fingerprint, architecture=spec.id)

    def embed(self, faces: np.ndarray) -> np.ndarray:
        return self._port.embed(faces)

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._port.forward_pixels(pixels)


def reference_embedder(path: Path) -> TorchEmbedder:
    """A checkpoint of a registered architecture (zoo model or base), loaded safely."""
    return torch_embedder(path.name, load_checked(path))


def torch_embedder(name: str, tensors: dict[str, torch.Tensor]) -> TorchEmbedder:
    """An embedder for a state dict of any registered architecture with a module to run
    it (the reference CNN, FaceNet InceptionResnetV1, ArcFace iresnet50/100). Loading is
    strict, so a checkpoint missing tensors (a BN-fused export) is refused rather than
    half-run; a classification head (the spec's optional tensors) is left out."""
    module, spec = load_module(name, tensors)
    return TorchEmbedder(name=name, module=module, input_size=spec.input_size, mean=spec.mean,
                         scale=spec.scale, architecture=spec.id)


def loaded_embedder(name: str, tensors: dict[str, torch.Tensor], files: tuple[Path, ...],
                    formats: tuple[Format, ...], architecture: ArchitectureMatch | None = None) -> Embedder:
    """An embedder for a model whose files have already been read safely: an ONNX graph
    runs in onnxruntime (with the normalisation of the architecture it was recognised
    as, if any), a state dict in its registered torch module."""
    if Format.ONNX in formats and len(files) == 1:
        if architecture is not None and architecture.normalisation is not None:
            mean, scale = architecture.normalisation
            return OnnxEmbedder(files[0], mean=mean, scale=scale, architecture=architecture.id,
                                input_size=architecture.input_size)
        return OnnxEmbedder(files[0])
    as_given = architecture is None or (architecture.normalisation_source != "option"
                                        and architecture.input_size in (None, DLIB_INPUT_SIZE))
    if formats == (Format.DLIB_DNN,) and len(files) == 1 and as_given:
        # dlib's own file is dlib's descriptor, named by the file as the dlib trusted model is
        # (so its shipped nulls and embeddings apply), whether given as ``dlib`` or as a path
        return DlibEmbedder(path=files[0], tensors=tensors)
    embedder = torch_embedder(name, tensors)
    if architecture is not None and architecture.normalisation is not None:
        (mean, scale), size = architecture.normalisation, architecture.input_size or embedder.input_size
        if (mean, scale, size) != (embedder.mean, embedder.scale, embedder.input_size):  # the user's, over the spec's
            return replace(embedder, mean=mean, scale=scale, input_size=size, fingerprint="")
    return embedder
