"""Malicious pickles in several opcode styles, each of whose payload creates a
canary file when unpickled. Used to prove fraudit never runs them."""

from __future__ import annotations

import os
import pickle
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch


def _short_unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _command(canary: Path) -> str:
    return f"touch {shlex.quote(str(canary))}"


class _Reduce:
    def __init__(self, func: Callable, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def reduce_os_system(canary: Path) -> bytes:
    """Protocol 2, GLOBAL opcode: the classic ``__reduce__`` to ``os.system``."""
    return pickle.dumps(_Reduce(os.system, _command(canary)), protocol=2)


def builtins_exec(canary: Path) -> bytes:
    """``builtins.exec`` of Python source."""
    source = f"import pathlib; pathlib.Path({str(canary)!r}).touch()"
    return pickle.dumps(_Reduce(exec, source), protocol=2)


def subprocess_call(canary: Path) -> bytes:
    """Protocol 5, ``subprocess.call`` with an argument list."""
    return pickle.dumps(_Reduce(subprocess.call, ["touch", str(canary)]), protocol=5)


def stack_global_via_memo(canary: Path) -> bytes:
    """Protocol 4 STACK_GLOBAL whose module and name come back from the memo,
    the trick that defeats scanners reading only the opcodes just before it."""
    return (
        b"\x80\x04"
        + _short_unicode("os") + b"\x94"  # memo 0
        + _short_unicode("system") + b"\x94"  # memo 1
        + b"00"  # POP POP: the strings now live only in the memo
        + b"h\x00h\x01"  # BINGET 0, BINGET 1
        + b"\x93"  # STACK_GLOBAL
        + _short_unicode(_command(canary))
        + b"\x85R."  # TUPLE1 REDUCE STOP
    )


def protocol0_text(canary: Path) -> bytes:
    """Protocol 0: text opcodes, no header to sniff."""
    return f"cos\nsystem\n(S'{_command(canary)}'\ntR.".encode()


def inst_opcode(canary: Path) -> bytes:
    """Protocol 0 INST opcode, which imports and calls in one step."""
    return f"(S'{_command(canary)}'\nios\nsystem\n.".encode()


RAW_STYLES: dict[str, Callable[[Path], bytes]] = {
    "reduce-os-system": reduce_os_system,
    "builtins-exec": builtins_exec,
    "subprocess-call": subprocess_call,
    "stack-global-memo": stack_global_via_memo,
    "protocol0-text": protocol0_text,
    "inst-opcode": inst_opcode,
}


def torch_zip(path: Path, canary: Path) -> Path:
    """A real ``torch.save`` zip: tensors plus one object that runs code on load."""
    torch.save({"weight": torch.zeros(4, 4), "hook": _Reduce(os.system, _command(canary))}, path)
    return path


def torch_legacy(path: Path, canary: Path) -> Path:
    """The pre-1.6 (non-zip) torch format, several pickles in a row."""
    torch.save(
        {"weight": torch.zeros(4, 4), "hook": _Reduce(os.system, _command(canary))},
        path,
        _use_new_zipfile_serialization=False,
    )
    return path


def handmade_zip(path: Path, canary: Path) -> Path:
    """A zip written by hand whose data.pkl is a bare payload."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", stack_global_via_memo(canary))
        archive.writestr("archive/version", "3\n")
    return path


def unpickle_in_subprocess(path: Path, *, torch_file: bool) -> None:
    """Load ``path`` the unsafe way, in a child process, to prove its payload is live."""
    if torch_file:
        code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    else:
        code = f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, timeout=120)
