"""Tell a model file's format from its bytes, never from its name."""

from __future__ import annotations

import enum
import json
import pickletools
import struct
import zipfile
from pathlib import Path

from fraudit.errors import CorruptFileError, UnsupportedFormatError


class Format(enum.StrEnum):
    SAFETENSORS = "safetensors"
    TORCH_ZIP = "pytorch-zip"
    TORCH_LEGACY = "pytorch-legacy"
    PICKLE = "pickle"
    ONNX = "onnx"

    @property
    def is_pickle(self) -> bool:
        return self in (Format.TORCH_ZIP, Format.TORCH_LEGACY, Format.PICKLE)


# The protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c: torch's legacy serialisation
# writes this magic number as its first pickle.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."
_SAFETENSORS_MAX_HEADER = 100_000_000  # the limit safetensors itself enforces

# Formats we can name but do not audit, so the message says what the file is.
_KNOWN_OTHER_MAGIC: dict[bytes, str] = {
    b"GGUF": "GGUF (llama.cpp)",
    b"\x89HDF\r\n\x1a\n": "HDF5 (Keras/TensorFlow)",
    b"\x93NUMPY": "NumPy .npy array",
    b"7z\xbc\xaf\x27\x1c": "7-Zip archive",
    b"\x1f\x8b": "gzip archive",
    b"\x89PNG": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
}

SNIFF_BYTES = 64


def detect_format(path: Path) -> Format:
    """Return the format of ``path`` or raise an error that says why it has none.

    Raises:
        UnsupportedFormatError: the bytes are not a format fraudit audits.
        CorruptFileError: the bytes start like a known format but are broken.
    """
    size = path.stat().st_size
    if size == 0:
        raise CorruptFileError(f"{path.name}: empty file")
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)

    if _looks_like_safetensors(head, size):
        _check_safetensors_header(path, head, size)
        return Format.SAFETENSORS
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_format(path)
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return Format.TORCH_LEGACY
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= pickletools.pickle.HIGHEST_PROTOCOL:
        return Format.PICKLE
    for magic, name in _KNOWN_OTHER_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedFormatError(f"{path.name}: {name} is not a format fraudit audits")
    if _parses_as_onnx(path):
        return Format.ONNX
    # Protocol 0/1 pickles carry no header; walking the opcodes reads, never runs them.
    if _parses_as_pickle(path):
        return Format.PICKLE
    raise UnsupportedFormatError(
        f"{path.name}: not safetensors, a PyTorch checkpoint, a pickle or ONNX "
        f"(first bytes {head[:8].hex(' ')})"
    )


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= _SAFETENSORS_MAX_HEADER and head[8:9] == b"{"


def _check_safetensors_header(path: Path, head: bytes, size: int) -> None:
    (header_len,) = struct.unpack("<Q", head[:8])
    if 8 + header_len > size:
        raise CorruptFileError(
            f"{path.name}: safetensors header claims {header_len} bytes but the file has {size}"
        )
    with path.open("rb") as f:
        f.seek(8)
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path.name}: safetensors header is not valid JSON ({exc})") from exc
    data_end = max(
        (entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"),
        default=0,
    )
    if 8 + header_len + data_end > size:
        raise CorruptFileError(
            f"{path.name}: truncated safetensors file ({size} bytes, tensors need "
            f"{8 + header_len + data_end})"
        )


def _zip_format(path: Path) -> Format:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise CorruptFileError(f"{path.name}: broken zip archive ({exc})") from exc
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return Format.TORCH_ZIP
    raise UnsupportedFormatError(
        f"{path.name}: zip archive without data.pkl is not a PyTorch checkpoint"
    )


def _parses_as_onnx(path: Path) -> bool:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError):
        return False
    graph = model.graph
    return model.ir_version > 0 and (len(graph.node) > 0 or len(graph.initializer) > 0)


def _parses_as_pickle(path: Path) -> bool:
    with path.open("rb") as f:
        try:
            ops = [op.name for op, _, _ in pickletools.genops(f)]
        except Exception:  # noqa: BLE001 - genops raises ValueError, KeyError, struct errors...
            return False
    return len(ops) >= 2 and ops[-1] == "STOP"
