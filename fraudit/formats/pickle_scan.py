"""Static pickle scanning: list every global a pickle would import, without running it.

The opcode walk is picklescan's (a maintained scanner with no dependencies that
reads the memo, so STACK_GLOBAL tricks resolve, and that finds every pickle inside
a PyTorch zip and the several pickles of a legacy checkpoint). On top of it fraudit
applies an *allowlist*: a plain tensor checkpoint needs only torch's rebuild
helpers, storage types, dtypes, ``collections.OrderedDict`` and NumPy's array
reconstruction. Anything else — ``os.system`` or merely ``torch.nn.Conv2d`` from a
whole pickled module — fails the file, named module by module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from picklescan import scanner as picklescan

from fraudit.errors import CorruptFileError
from fraudit.formats.detect import Format

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


def is_allowed(module: str, name: str) -> bool:
    return name in ALLOWED_GLOBALS.get(module, frozenset())


@dataclass(frozen=True)
class ImportedGlobal:
    module: str
    name: str
    # picklescan's own reading: "innocuous", "suspicious" or "dangerous"
    picklescan_level: str

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def allowed(self) -> bool:
        return is_allowed(self.module, self.name)


@dataclass(frozen=True)
class PickleScan:
    """The globals of every pickle in one file, and those outside the allowlist."""

    path: Path
    globals: tuple[ImportedGlobal, ...]
    parse_error: bool

    @property
    def offending(self) -> tuple[ImportedGlobal, ...]:
        return tuple(g for g in self.globals if not g.allowed)

    @property
    def safe(self) -> bool:
        return not self.offending and not self.parse_error


def scan_pickles(path: Path, fmt: Format) -> PickleScan:
    """Statically list the globals imported by the pickle(s) in ``path``.

    Nothing in the file is executed: picklescan walks the opcodes with
    ``pickletools.genops``.
    """
    try:
        with path.open("rb") as f:
            if fmt in (Format.TORCH_ZIP, Format.TORCH_LEGACY):
                result = picklescan.scan_pytorch(f, str(path))
            else:
                result = picklescan.scan_pickle_bytes(f, str(path))
    except Exception as exc:  # noqa: BLE001 - the scanner raises many types on bad bytes
        raise CorruptFileError(f"{path.name}: pickle could not be scanned ({exc})") from exc
    found = sorted(
        {ImportedGlobal(g.module, g.name, g.safety.value) for g in result.globals},
        key=lambda g: (g.allowed, g.module, g.name),
    )
    return PickleScan(path=path, globals=tuple(found), parse_error=result.scan_err)
