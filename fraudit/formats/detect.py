"""Tell a model file's format from its bytes, never from its name — reading only
what the decision needs, under stated caps.

``detect_format`` names the format a file would be opened as; ``sniff_other_formats``
(in ``read``) then asks what *else* the same bytes parse as, because a loader picks
its own reading: a safetensors file whose header length is a zip signature is also
a PyTorch checkpoint, and an ONNX protobuf can also be a pickle.
"""

from __future__ import annotations

import enum
import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fraudit.errors import CorruptFileError, UnsupportedFormatError
from fraudit.formats.dlib_dnn import looks_like_dlib_dnn
from fraudit.formats.pickle_walk import Limits, PickleWalk, walk_pickle


class Format(enum.StrEnum):
    SAFETENSORS = "safetensors"
    TORCH_ZIP = "pytorch-zip"
    TORCH_LEGACY = "pytorch-legacy"
    PICKLE = "pickle"
    ONNX = "onnx"
    # .npy / .npz holding object arrays: their payload is a pickle, read by np.load(allow_pickle=True)
    NUMPY_OBJECT = "numpy-object"
    # dlib's own serialisation of a DNN (``dlib::serialize(net)``), read by fraudit's parser
    DLIB_DNN = "dlib-dnn"

    @property
    def is_pickle(self) -> bool:
        """The file's payload is one or more pickles that a loader would unpickle."""
        return self in (Format.TORCH_ZIP, Format.TORCH_LEGACY, Format.PICKLE, Format.NUMPY_OBJECT)


@dataclass(frozen=True)
class Caps:
    """What reading one file may cost before it is refused (an ERROR that says which cap)."""

    safetensors_header_bytes: int = 16 * 1024 * 1024
    tensors: int = 200_000  # entries of a safetensors header, initialisers of an ONNX graph
    onnx_bytes: int = 2 * 1024**3  # protobuf's own limit for one message
    onnx_top_level_fields: int = 100_000
    sniff_pickle_opcodes: int = 100_000  # a pickle hidden behind another format is small


CAPS = Caps()

# The protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c: torch's legacy serialisation
# writes this magic number as its first pickle.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."
_NUMPY_MAGIC = b"\x93NUMPY"

# Formats we can name but do not audit, so the message says what the file is.
_KNOWN_OTHER_MAGIC: dict[bytes, str] = {
    b"GGUF": "GGUF (llama.cpp)",
    b"\x89HDF\r\n\x1a\n": "HDF5 (Keras/TensorFlow)",
    b"7z\xbc\xaf\x27\x1c": "7-Zip archive",
    b"\x1f\x8b": "gzip archive (a compressed pickle or joblib file cannot be scanned; decompress it first)",
    b"\x89PNG": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
}

SNIFF_BYTES = 64


def detect_format(path: Path) -> Format:
    """Return the format of ``path`` or raise an error that says why it has none.

    Raises:
        UnsupportedFormatError: the bytes are not a format fraudit audits.
        CorruptFileError: the bytes start like a known format but are broken, or pass a cap.
    """
    size = path.stat().st_size
    if size == 0:
        raise CorruptFileError(f"{path.name}: empty file", path=path)
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)

    # A zip first: its signature can also be read as a safetensors header length (a
    # polyglot that ``read`` then refuses); checking safetensors first would hide it.
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return zip_format(path)
    if looks_like_safetensors(head):
        check_safetensors_header(path, head, size)
        return Format.SAFETENSORS
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return Format.TORCH_LEGACY
    if looks_like_dlib_dnn(head):
        return Format.DLIB_DNN
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return Format.PICKLE
    if head.startswith(_NUMPY_MAGIC):
        if numpy_object_offset(path) is not None:
            return Format.NUMPY_OBJECT
        raise UnsupportedFormatError(f"{path.name}: a NumPy array of numbers is not a model format fraudit audits", path=path)
    for magic, name in _KNOWN_OTHER_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedFormatError(f"{path.name}: {name} is not a format fraudit audits", path=path)
    if looks_like_onnx(path, size):
        return Format.ONNX
    # Protocol 0/1 pickles carry no header: walk the opcodes (read, never run).
    if parses_as_pickle(path):
        return Format.PICKLE
    raise UnsupportedFormatError(
        f"{path.name}: not safetensors, a PyTorch checkpoint, a pickle, ONNX or a dlib network "
        f"(first bytes {head[:8].hex(' ')})",
        path=path,
    )


def looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len and head[8:9] == b"{"


def check_safetensors_header(path: Path, head: bytes, size: int) -> dict:
    """The header, parsed under the caps; refuses one that would cost more to read
    than any model needs (a 20 MB header of nested objects takes gigabytes as JSON)."""
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > CAPS.safetensors_header_bytes:
        raise CorruptFileError(f"{path.name}: safetensors header of {header_len} bytes is over the "
                               f"{CAPS.safetensors_header_bytes}-byte cap", path=path)
    if 8 + header_len > size:
        raise CorruptFileError(
            f"{path.name}: safetensors header claims {header_len} bytes but the file has {size}", path=path
        )
    with path.open("rb") as f:
        f.seek(8)
        raw = f.read(header_len)
    # Every tensor entry is one object and two lists; more braces than that is not a header.
    if raw.count(b"{") > CAPS.tensors + 2 or raw.count(b"[") > 2 * CAPS.tensors:
        raise CorruptFileError(f"{path.name}: safetensors header holds more objects than the "
                               f"{CAPS.tensors}-tensor cap allows", path=path)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptFileError(f"{path.name}: safetensors header is not valid JSON ({type(exc).__name__})", path=path) from exc
    if not isinstance(header, dict):
        raise CorruptFileError(f"{path.name}: safetensors header is not a JSON object", path=path)
    try:
        data_end = max(
            (int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
            default=0,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptFileError(f"{path.name}: safetensors header entries lack data_offsets", path=path) from exc
    if 8 + header_len + data_end > size:
        raise CorruptFileError(
            f"{path.name}: truncated safetensors file ({size} bytes, tensors need "
            f"{8 + header_len + data_end})",
            path=path,
        )
    return header


def zip_format(path: Path) -> Format:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise CorruptFileError(f"{path.name}: broken zip archive ({exc})", path=path) from exc
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return Format.TORCH_ZIP
    if any(name.endswith(".pkl") for name in names):
        return Format.TORCH_ZIP  # torch would not load it, but its pickles are what a loader unpickles
    if names and all(name.endswith(".npy") for name in names):
        if _npz_has_objects(path):
            return Format.NUMPY_OBJECT
        raise UnsupportedFormatError(f"{path.name}: NumPy arrays of numbers are not a model format fraudit audits",
                                     path=path)
    raise UnsupportedFormatError(
        f"{path.name}: zip archive without data.pkl is not a PyTorch checkpoint", path=path
    )


def numpy_object_offset(path: Path) -> int | None:
    """Where the pickled payload of an object-dtype .npy starts; None for numeric arrays."""
    with path.open("rb") as f:
        return npy_payload_offset(f, path)


def npy_payload_offset(f, path: Path) -> int | None:  # noqa: ANN001 - a binary file or zip member
    import numpy as np

    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=64 * 1024)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=64 * 1024)
    except (ValueError, OSError, SyntaxError) as exc:
        raise CorruptFileError(f"{path.name}: broken NumPy array header ({exc})", path=path) from exc
    return f.tell() if dtype.hasobject else None


def _npz_has_objects(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                if npy_payload_offset(member, path) is not None:
                    return True
    return False


def looks_like_onnx(path: Path, size: int) -> bool:
    """An ONNX ModelProto, judged from its top-level protobuf fields alone: each known
    ModelProto field has its wire type (unknown fields are well-formed varints or
    length-delimited runs, as protobuf itself accepts them), length-delimited payloads
    are skipped (not read), the fields end exactly at the end of the file, and there is
    a graph. The graph itself is parsed by onnx only when the model is loaded."""
    wire_types = {1: 0, 5: 0, 2: 2, 3: 2, 4: 2, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
    seen_graph = False
    with path.open("rb") as f:
        for _ in range(CAPS.onnx_top_level_fields):
            if f.tell() == size:
                return seen_graph
            key = _varint(f)
            if key is None:
                return False
            field, wire = key >> 3, key & 7
            if field == 0 or wire_types.get(field, wire) != wire:
                return False
            if wire in (1, 5):
                f.seek(8 if wire == 1 else 4, 1)
                continue
            if wire not in (0, 2):
                return False
            value = _varint(f)
            if value is None:
                return False
            if wire == 2:
                if f.tell() + value > size:
                    return False
                f.seek(value, 1)
            seen_graph |= field == 7
    return False


def onnx_external_locations(path: Path) -> set[str]:
    """The external-data file names an ONNX model's initialisers refer to, read by
    walking the protobuf (ModelProto.graph → GraphProto.initializer → TensorProto.
    external_data) and seeking past everything else: a large or hostile model is
    never read whole just to learn which files belong to it."""
    size = path.stat().st_size
    found: set[str] = set()
    with path.open("rb") as f:
        for field, start, length in _fields(f, 0, size):
            if field != 7:  # ModelProto.graph
                continue
            for gfield, gstart, glength in _fields(f, start, start + length):
                if gfield != 5:  # GraphProto.initializer
                    continue
                for tfield, tstart, tlength in _fields(f, gstart, gstart + glength):
                    if tfield != 13 or tlength > 64 * 1024:  # TensorProto.external_data entries
                        continue
                    entry = {k: v for k, v in _string_fields(f, tstart, tstart + tlength)}
                    if entry.get(1) == b"location" and 2 in entry:
                        found.add(entry[2].decode("utf-8", "replace"))
                    if len(found) > CAPS.tensors:
                        return found
    return found


def _fields(f, start: int, end: int):  # noqa: ANN001, ANN202
    """(field number, payload start, payload length) of each length-delimited field in
    [start, end); other wire types are skipped. Stops quietly at malformed bytes."""
    position = start
    for _ in range(CAPS.onnx_top_level_fields * 10):
        if position >= end:
            return
        f.seek(position)
        key = _varint(f)
        if key is None:
            return
        wire = key & 7
        if wire == 0:
            if _varint(f) is None:
                return
            position = f.tell()
        elif wire in (1, 5):
            position = f.tell() + (8 if wire == 1 else 4)
        elif wire == 2:
            length = _varint(f)
            if length is None or f.tell() + length > end:
                return
            payload = f.tell()
            yield key >> 3, payload, length
            position = payload + length
        else:
            return


def _string_fields(f, start: int, end: int):  # noqa: ANN001, ANN202
    for field, payload, length in _fields(f, start, end):
        f.seek(payload)
        yield field, f.read(length)


def _varint(f) -> int | None:  # noqa: ANN001
    result, shift = 0, 0
    for _ in range(10):
        byte = f.read(1)
        if not byte:
            return None
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
    return None


def sniff_pickle(f) -> PickleWalk:  # noqa: ANN001 - a binary file at the offset to sniff
    """A short walk of what may be a pickle hidden behind another format or name."""
    return walk_pickle(f, limits=Limits(max_opcodes=CAPS.sniff_pickle_opcodes))


def parses_as_pickle(path: Path) -> bool:
    """Whether the bytes from offset 0 are a pickle that imports something (a pickle
    that imports nothing cannot run code, and is no model either)."""
    with path.open("rb") as f:
        walk = sniff_pickle(f)
    # a walk stopped by the sniff's opcode cap is still a pickle so far: scan it in full
    return walk.imports or (walk.at_limit and walk.opcodes > 1)
