"""Static pickle scanning: list every global a pickle would import, without running it.

The opcode walk is fraudit's own (``pickle_walk``): it parses arguments exactly as
the unpickler does, streams, and resolves ``STACK_GLOBAL`` names through the memo.
On top of it fraudit applies an *allowlist*: a plain tensor checkpoint needs only
torch's rebuild helpers, storage types, dtypes, ``collections.OrderedDict`` and
NumPy's array reconstruction. Anything else — ``os.system`` or merely
``torch.nn.Conv2d`` from a whole pickled module — fails the file, named module by
module. A pickle the walk cannot follow to its end is *unscannable*, and fails too:
what a scanner cannot read, it cannot clear.

Every pickle a loader would read is walked: the one pickle of a plain file, the
five of a legacy torch checkpoint, and every ``.pkl`` member of a zip.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fraudit.formats.detect import Format, npy_payload_offset
from fraudit.formats.pickle_walk import UNRESOLVED, Limits, PickleWalk, walk_pickle

_TORCH_DTYPES = {
    "float16", "float32", "float64", "bfloat16", "half", "float", "double",
    "int8", "int16", "int32", "int64", "uint8", "bool", "complex64", "complex128",
    "float8_e4m3fn", "float8_e5m2",
}
_TORCH_STORAGES = {
    f"{kind}Storage"
    for kind in (
        "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char",
        "Byte", "Bool", "ComplexFloat", "ComplexDouble",
    )
} | {"UntypedStorage", "TypedStorage"}

ALLOWED_GLOBALS: dict[str, frozenset[str]] = {
    "collections": frozenset({"OrderedDict"}),
    "torch": frozenset(_TORCH_STORAGES | _TORCH_DTYPES | {"Size", "device", "strided"}),
    "torch._utils": frozenset({
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3",
        "_rebuild_parameter", "_rebuild_parameter_with_state",
        "_rebuild_device_tensor_from_numpy", "_rebuild_meta_tensor_no_storage",
        "_rebuild_qtensor", "_rebuild_sparse_tensor", "_rebuild_nested_tensor",
    }),
    "torch.storage": frozenset({"UntypedStorage", "TypedStorage"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy": frozenset({"ndarray", "dtype"}),
    "numpy.dtypes": frozenset({"Float32DType", "Float64DType", "Float16DType", "Int64DType"}),
    # protocol-2 pickles spell NumPy's raw bytes through _codecs.encode(str, 'latin1')
    "_codecs": frozenset({"encode"}),
}

# Modules whose globals run commands, code or I/O when called: named in reports so a
# reader sees at once that this is no odd checkpoint but an attack.
_DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "builtins", "__builtin__", "runpy", "importlib", "code", "codeop",
    "pty", "shutil", "socket", "sys", "webbrowser", "pickle", "_pickle", "marshal", "types", "ctypes",
    "pdb", "bdb", "timeit", "commands", "platform", "asyncio", "multiprocessing", "http", "urllib",
    "requests", "ftplib", "smtplib", "telnetlib", "tempfile", "pathlib", "io", "operator", "functools",
    "copyreg", "copyreg._extension_registry",
})

# A legacy torch file is five pickles in a row (magic number, protocol, system
# info, the object, the storage keys), then raw storage bytes that are never unpickled.
LEGACY_PICKLES = 5


def is_allowed(module: str, name: str) -> bool:
    return name in ALLOWED_GLOBALS.get(module, frozenset())


@dataclass(frozen=True)
class ImportedGlobal:
    module: str
    name: str

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def allowed(self) -> bool:
        return is_allowed(self.module, self.name)

    @property
    def danger(self) -> str:
        """How a report labels an offending global."""
        if self.module == UNRESOLVED:
            return "unresolved (a name computed at load time)"
        if self.module.split(".")[0] in _DANGEROUS_MODULES:
            return "dangerous (runs code, commands or I/O)"
        return "not a tensor-checkpoint global"


@dataclass(frozen=True)
class PickleScan:
    """The globals of every pickle in one file, and those outside the allowlist."""

    path: Path
    globals: tuple[ImportedGlobal, ...]
    # Why a pickle could not be followed to its end (None when every one was).
    unscannable: str | None = None
    pickles: int = 0

    @property
    def offending(self) -> tuple[ImportedGlobal, ...]:
        return tuple(g for g in self.globals if not g.allowed)

    @property
    def safe(self) -> bool:
        return not self.offending and self.unscannable is None


def scan_pickles(path: Path, fmt: Format, *, limits: Limits | None = None) -> PickleScan:
    """Statically list the globals imported by the pickle(s) in ``path``; nothing in
    the file is executed. Raises ``OSError`` only when the file cannot be read."""
    limits = limits or Limits()
    walks: list[tuple[str, PickleWalk]] = []
    if fmt is Format.TORCH_ZIP:
        walks = list(_zip_walks(path, limits))
    elif fmt is Format.NUMPY_OBJECT:
        walks = list(_numpy_walks(path, limits))
    else:
        with path.open("rb") as f:
            count = LEGACY_PICKLES if fmt is Format.TORCH_LEGACY else 1
            for index in range(count):
                walk = walk_pickle(f, limits=limits)
                walks.append((f"pickle {index + 1}", walk))
                if not walk.complete:
                    break
    return _combine(path, walks)


def scan_stream(path: Path, stream: BinaryIO, *, limits: Limits | None = None) -> PickleScan:
    """One pickle from an open stream (a NumPy object array's payload, a zip member)."""
    return _combine(path, [("pickle", walk_pickle(stream, limits=limits))])


def _zip_walks(path: Path, limits: Limits):
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if info.filename.endswith(".pkl")]
            if not members:
                yield "zip", PickleWalk(error="no pickle member in the archive")
            for info in members:
                with archive.open(info) as member:
                    yield info.filename, walk_pickle(member, limits=limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError, ValueError) as exc:
        # an encrypted, unsupported-compression or broken member: torch.load cannot read
        # it either, but neither can we vouch for it
        yield "zip", PickleWalk(error=f"archive member unreadable ({type(exc).__name__}: {exc})")


def _numpy_walks(path: Path, limits: Limits):
    """The pickled payload of each object array in a .npy or .npz file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    if npy_payload_offset(member, path) is not None:
                        yield info.filename, walk_pickle(member, limits=limits)
        return
    with path.open("rb") as f:
        if npy_payload_offset(f, path) is not None:
            yield "object array", walk_pickle(f, limits=limits)


def _combine(path: Path, walks: list[tuple[str, PickleWalk]]) -> PickleScan:
    found: dict[tuple[str, str], ImportedGlobal] = {}
    problems = []
    for where, walk in walks:
        for module, name in walk.globals:
            found.setdefault((module, name), ImportedGlobal(module, name))
        if not walk.complete:
            problems.append(f"{where}: {walk.error}")
    ordered = sorted(found.values(), key=lambda g: (g.allowed, g.module, g.name))
    return PickleScan(path=path, globals=tuple(ordered), unscannable="; ".join(problems) or None, pickles=len(walks))
