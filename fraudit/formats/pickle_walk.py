"""A static pickle reader that parses every opcode the way the real unpickler does,
and keeps only what a scanner needs: the globals a pickle would import.

Why not ``pickletools.genops`` (which picklescan and most scanners build on): it
parses some arguments more strictly than ``pickle.Unpickler`` (``I0x10\\n`` is an
integer to the unpickler and an error to ``genops``), so a "decoy" opcode stops the
scan while the real unpickler reads on and runs the payload behind it; and
scanners keep its opcode list whole, so a million-opcode pickle costs a gigabyte.

This reader mirrors ``pickle._Unpickler``'s argument parsing opcode by opcode, and
simulates the stack and memo only as far as needed to resolve ``STACK_GLOBAL``
names: strings are kept (short ones), every other value is an opaque marker. It
streams: memory stays flat in the pickle's length, bounded by ``Limits``. Whatever
it cannot follow — an unresolved ``STACK_GLOBAL``, an extension-registry code, a
line or a memo index past the limits, bytes the unpickler itself would reject —
is reported, so the caller can fail closed.
"""

from __future__ import annotations

import io
import pickle
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

UNRESOLVED = "<unresolved>"


@dataclass(frozen=True)
class Limits:
    """What one walk may cost; past any of them the pickle is unscannable."""

    max_opcodes: int = 20_000_000
    max_stack: int = 1_000_000  # items on the stack and the mark stack together
    max_line: int = 64 * 1024  # text-opcode argument lines
    max_memo_index: int = 16_000_000
    max_kept_string: int = 512  # longer strings cannot be module or global names that matter
    max_kept_memo_strings: int = 200_000
    max_bytes: int = 8 * 1024**3  # read through (skipped byte strings count too)


@dataclass
class PickleWalk:
    """What a walk found: the globals (module, name) in the order the unpickler
    would import them, and how the walk ended."""

    globals: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = False  # reached STOP with a value, as a real load would
    error: str | None = None
    at_limit: bool = False  # stopped by ``Limits``, not by bytes the unpickler would reject
    opcodes: int = 0
    start: int = 0
    end: int = 0  # offset after STOP (or where the walk stopped)
    protocol: int | None = None

    @property
    def imports(self) -> bool:
        return bool(self.globals)


class _Opaque:
    """A value the walk does not need to know (numbers, containers, objects)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<value>"


OPAQUE = _Opaque()


class _Stop(Exception):
    pass


class _Invalid(Exception):
    """The real unpickler would reject the bytes here."""


class _AtLimit(_Invalid):
    """The bytes may be fine, but reading on would pass ``Limits``."""


class _Reader:
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        self.consumed = 0

    def _count(self, n: int) -> None:
        self.consumed += n
        if self.consumed > self.limits.max_bytes:
            raise _AtLimit(f"more than {self.limits.max_bytes} bytes of pickle")

    def read(self, n: int) -> bytes:
        self._count(n)
        data = self.stream.read(n)
        if len(data) < n:
            raise _Invalid("pickle data was truncated")
        return data

    def skip(self, n: int) -> None:
        """Consume ``n`` bytes without holding them (large byte strings, tensors' raw data)."""
        self._count(n)
        while n > 0:
            chunk = self.stream.read(min(n, 1 << 20))
            if not chunk:
                raise _Invalid("pickle data was truncated")
            n -= len(chunk)

    def readline(self) -> bytes:
        line = self.stream.readline(self.limits.max_line + 1)
        self._count(len(line))
        if len(line) > self.limits.max_line:
            raise _AtLimit(f"a text argument longer than {self.limits.max_line} bytes")
        return line


class _Walker:
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        self.r = _Reader(stream, limits)
        self.limits = limits
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.depth = 0
        self.memo: dict[int, str] = {}
        self.memo_keys = bytearray()  # a bit per memo index: len(memo) as the unpickler counts it
        self.memo_len = 0
        self.walk = PickleWalk()

    # --- the stack, as pickle._Unpickler keeps it -------------------------------------
    def push(self, value: object) -> None:
        self.depth += 1
        if self.depth > self.limits.max_stack:
            raise _AtLimit(f"stack deeper than {self.limits.max_stack}")
        self.stack.append(value)

    def pop(self) -> object:
        if not self.stack:
            raise _Invalid("unpickling stack underflow")
        self.depth -= 1
        return self.stack.pop()

    def top(self) -> object:
        if not self.stack:
            raise _Invalid("unpickling stack underflow")
        return self.stack[-1]

    def mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def pop_mark(self) -> list[object]:
        if not self.metastack:
            raise _Invalid("unpickling stack underflow (no MARK)")
        items = self.stack
        self.depth -= len(items)
        self.stack = self.metastack.pop()
        return items

    # --- the memo ------------------------------------------------------------------------
    def memo_put(self, index: int, value: object) -> None:
        if index < 0:
            raise _Invalid("negative PUT argument")
        if index >= self.limits.max_memo_index:
            raise _AtLimit(f"memo index {index} past {self.limits.max_memo_index}")
        byte, bit = divmod(index, 8)
        if byte >= len(self.memo_keys):
            self.memo_keys.extend(bytes(byte + 1 - len(self.memo_keys)))
        if not self.memo_keys[byte] & (1 << bit):
            self.memo_keys[byte] |= 1 << bit
            self.memo_len += 1
        if isinstance(value, str) and len(self.memo) < self.limits.max_kept_memo_strings:
            self.memo[index] = value
        else:
            self.memo.pop(index, None)

    def memo_get(self, index: int) -> object:
        byte, bit = divmod(index, 8)
        if index < 0 or byte >= len(self.memo_keys) or not self.memo_keys[byte] & (1 << bit):
            raise _Invalid(f"memo value not found at index {index}")
        return self.memo.get(index, OPAQUE)

    # --- values ----------------------------------------------------------------------------
    def string(self, data: bytes, encoding: str, errors: str = "strict") -> object:
        try:
            text = data.decode(encoding, errors)
        except UnicodeDecodeError as exc:
            raise _Invalid(f"undecodable string ({exc.reason})") from None
        return text if len(text) <= self.limits.max_kept_string else OPAQUE

    def sized_string(self, size: int, encoding: str | None, errors: str = "strict") -> None:
        """A length-prefixed str or bytes argument; long ones are skipped, not held."""
        if size < 0:
            raise _Invalid("negative byte count")
        if encoding is None or size > 4 * self.limits.max_kept_string:
            self.r.skip(size)
            self.push(OPAQUE)
        else:
            self.push(self.string(self.r.read(size), encoding, errors))

    def add_global(self, module: object, name: object) -> None:
        if isinstance(module, str) and isinstance(name, str):
            self.walk.globals.append((module, name))
        else:
            self.walk.globals.append((UNRESOLVED, UNRESOLVED))

    def text_global(self) -> None:
        try:
            module = self.r.readline()[:-1].decode("utf-8")
            name = self.r.readline()[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid("undecodable GLOBAL / INST name") from None
        self.add_global(module, name)

    # --- the opcode loop ---------------------------------------------------------------
    def run(self) -> PickleWalk:
        dispatch = _DISPATCH
        try:
            while True:
                code = self.r.stream.read(1)
                if not code:
                    raise _Invalid("pickle data was truncated (no STOP)")
                self.walk.opcodes += 1
                if self.walk.opcodes > self.limits.max_opcodes:
                    raise _AtLimit(f"more than {self.limits.max_opcodes} opcodes")
                handler = dispatch.get(code[0])
                if handler is None:
                    raise _Invalid(f"invalid load key {code!r}")
                handler(self)
        except _Stop:
            self.walk.complete = True
        except _AtLimit as exc:
            self.walk.error, self.walk.at_limit = str(exc), True
        except _Invalid as exc:
            self.walk.error = str(exc)
        except (ValueError, OverflowError, struct.error) as exc:  # int()/float() of bad text, as the unpickler raises
            self.walk.error = f"{type(exc).__name__}: {exc}"
        return self.walk


def _int_line(w: _Walker) -> int:
    return int(w.r.readline()[:-1])


def _op_int(w: _Walker) -> None:
    data = w.r.readline()
    if data not in (b"00\n", b"01\n"):
        int(data, 0)  # the unpickler's own parse: base prefixes, underscores and all
    w.push(OPAQUE)


def _op_long(w: _Walker) -> None:
    value = w.r.readline()[:-1]
    if value and value[-1] == ord("L"):
        value = value[:-1]
    int(value, 0)
    w.push(OPAQUE)


def _op_float(w: _Walker) -> None:
    float(w.r.readline()[:-1])
    w.push(OPAQUE)


def _op_string(w: _Walker) -> None:
    data = w.r.readline()[:-1]
    if len(data) >= 2 and data[0] == data[-1] and data[0] in b"\"'":
        data = data[1:-1]
    else:
        raise _Invalid("the STRING opcode argument must be quoted")
    import codecs

    try:
        raw = codecs.escape_decode(data)[0]
    except ValueError as exc:
        raise _Invalid(f"bad STRING escape ({exc})") from None
    w.push(w.string(raw, "ascii") if raw.isascii() else OPAQUE)


def _op_unicode(w: _Walker) -> None:
    w.push(w.string(w.r.readline()[:-1], "raw-unicode-escape"))


def _binstring(size_format: str, size: int, *, signed_check: bool, encoding: str | None,
               errors: str = "strict"):
    def op(w: _Walker) -> None:
        (n,) = struct.unpack(size_format, w.r.read(size))
        if signed_check and n < 0:
            raise _Invalid("negative byte count")
        if n > 2**62:
            raise _Invalid("byte count too large")
        w.sized_string(n, encoding, errors)

    return op


def _fixed(size: int):
    def op(w: _Walker) -> None:
        w.r.read(size)
        w.push(OPAQUE)

    return op


def _op_long_sized(size_format: str, size: int):
    def op(w: _Walker) -> None:
        (n,) = struct.unpack(size_format, w.r.read(size))
        if n < 0:
            raise _Invalid("LONG pickle has negative byte count")
        w.r.skip(n)
        w.push(OPAQUE)

    return op


def _op_proto(w: _Walker) -> None:
    proto = w.r.read(1)[0]
    if not 0 <= proto <= pickle.HIGHEST_PROTOCOL:
        raise _Invalid(f"unsupported pickle protocol: {proto}")
    w.walk.protocol = proto


def _op_frame(w: _Walker) -> None:
    (size,) = struct.unpack("<Q", w.r.read(8))
    if size > 2**63:
        raise _Invalid("frame size too large")


def _op_stop(w: _Walker) -> None:
    w.pop()
    raise _Stop


def _op_global(w: _Walker) -> None:
    w.text_global()
    w.push(OPAQUE)


def _op_stack_global(w: _Walker) -> None:
    name = w.pop()
    module = w.pop()
    w.add_global(module, name)
    w.push(OPAQUE)


def _op_inst(w: _Walker) -> None:
    w.text_global()
    w.pop_mark()
    w.push(OPAQUE)


def _op_ext(size: int):
    def op(w: _Walker) -> None:
        code = int.from_bytes(w.r.read(size), "little")
        # copyreg's extension registry maps the code to (module, name) at load time
        w.walk.globals.append(("copyreg._extension_registry", f"code {code}"))
        w.push(OPAQUE)

    return op


def _pop_then_push(n: int):
    def op(w: _Walker) -> None:
        for _ in range(n):
            w.pop()
        w.push(OPAQUE)

    return op


def _mark_then_push(w: _Walker) -> None:
    w.pop_mark()
    w.push(OPAQUE)


def _op_pop(w: _Walker) -> None:
    if w.stack:
        w.pop()
    else:
        w.pop_mark()


def _op_dup(w: _Walker) -> None:
    w.push(w.top())


def _op_append(w: _Walker) -> None:
    w.pop()
    w.top()


def _op_appends(w: _Walker) -> None:
    w.pop_mark()
    w.top()


def _op_setitem(w: _Walker) -> None:
    w.pop()
    w.pop()
    w.top()


def _op_build(w: _Walker) -> None:
    w.pop()
    w.top()


def _op_obj(w: _Walker) -> None:
    items = w.pop_mark()
    if not items:
        raise _Invalid("OBJ without a class")
    w.push(OPAQUE)


def _op_persid(w: _Walker) -> None:
    try:
        w.r.readline()[:-1].decode("ascii")
    except UnicodeDecodeError:
        raise _Invalid("persistent IDs in protocol 0 must be ASCII strings") from None
    w.push(OPAQUE)


def _get_line(w: _Walker) -> None:
    w.push(w.memo_get(_int_line(w)))


def _get_sized(size_format: str, size: int):
    def op(w: _Walker) -> None:
        (index,) = struct.unpack(size_format, w.r.read(size))
        w.push(w.memo_get(index))

    return op


def _put_line(w: _Walker) -> None:
    w.memo_put(_int_line(w), w.top())


def _put_sized(size_format: str, size: int):
    def op(w: _Walker) -> None:
        (index,) = struct.unpack(size_format, w.r.read(size))
        w.memo_put(index, w.top())

    return op


def _op_memoize(w: _Walker) -> None:
    w.memo_put(w.memo_len, w.top())


def _push(w: _Walker) -> None:
    w.push(OPAQUE)


_DISPATCH = {
    ord(code): handler
    for code, handler in (
        (pickle.MARK, lambda w: w.mark()),
        (pickle.STOP, _op_stop),
        (pickle.POP, _op_pop),
        (pickle.POP_MARK, lambda w: w.pop_mark()),
        (pickle.DUP, _op_dup),
        (pickle.FLOAT, _op_float),
        (pickle.INT, _op_int),
        (pickle.BININT, _fixed(4)),
        (pickle.BININT1, _fixed(1)),
        (pickle.LONG, _op_long),
        (pickle.BININT2, _fixed(2)),
        (pickle.NONE, _push),
        (pickle.PERSID, _op_persid),
        (pickle.BINPERSID, _pop_then_push(1)),
        (pickle.REDUCE, _pop_then_push(2)),
        (pickle.STRING, _op_string),
        (pickle.BINSTRING, _binstring("<i", 4, signed_check=True, encoding="ascii")),
        (pickle.SHORT_BINSTRING, _binstring("<B", 1, signed_check=False, encoding="ascii")),
        (pickle.UNICODE, _op_unicode),
        (pickle.BINUNICODE, _binstring("<I", 4, signed_check=False, encoding="utf-8", errors="surrogatepass")),
        (pickle.APPEND, _op_append),
        (pickle.BUILD, _op_build),
        (pickle.GLOBAL, _op_global),
        (pickle.DICT, _mark_then_push),
        (pickle.EMPTY_DICT, _push),
        (pickle.APPENDS, _op_appends),
        (pickle.GET, _get_line),
        (pickle.BINGET, _get_sized("<B", 1)),
        (pickle.INST, _op_inst),
        (pickle.LONG_BINGET, _get_sized("<I", 4)),
        (pickle.LIST, _mark_then_push),
        (pickle.EMPTY_LIST, _push),
        (pickle.OBJ, _op_obj),
        (pickle.PUT, _put_line),
        (pickle.BINPUT, _put_sized("<B", 1)),
        (pickle.LONG_BINPUT, _put_sized("<I", 4)),
        (pickle.SETITEM, _op_setitem),
        (pickle.TUPLE, _mark_then_push),
        (pickle.EMPTY_TUPLE, _push),
        (pickle.SETITEMS, _op_appends),
        (pickle.BINFLOAT, _fixed(8)),
        (pickle.PROTO, _op_proto),
        (pickle.NEWOBJ, _pop_then_push(2)),
        (pickle.EXT1, _op_ext(1)),
        (pickle.EXT2, _op_ext(2)),
        (pickle.EXT4, _op_ext(4)),
        (pickle.TUPLE1, _pop_then_push(1)),
        (pickle.TUPLE2, _pop_then_push(2)),
        (pickle.TUPLE3, _pop_then_push(3)),
        (pickle.NEWTRUE, _push),
        (pickle.NEWFALSE, _push),
        (pickle.LONG1, _op_long_sized("<B", 1)),
        (pickle.LONG4, _op_long_sized("<i", 4)),
        (pickle.BINBYTES, _binstring("<I", 4, signed_check=False, encoding=None)),
        (pickle.SHORT_BINBYTES, _binstring("<B", 1, signed_check=False, encoding=None)),
        (pickle.SHORT_BINUNICODE, _binstring("<B", 1, signed_check=False, encoding="utf-8", errors="surrogatepass")),
        (pickle.BINUNICODE8, _binstring("<Q", 8, signed_check=False, encoding="utf-8", errors="surrogatepass")),
        (pickle.BINBYTES8, _binstring("<Q", 8, signed_check=False, encoding=None)),
        (pickle.EMPTY_SET, _push),
        (pickle.ADDITEMS, _op_appends),
        (pickle.FROZENSET, _mark_then_push),
        (pickle.NEWOBJ_EX, _pop_then_push(3)),
        (pickle.STACK_GLOBAL, _op_stack_global),
        (pickle.MEMOIZE, _op_memoize),
        (pickle.FRAME, _op_frame),
        (pickle.BYTEARRAY8, _binstring("<Q", 8, signed_check=False, encoding=None)),
        (pickle.NEXT_BUFFER, _push),
        (pickle.READONLY_BUFFER, lambda w: w.top()),
    )
}


def walk_pickle(stream: BinaryIO, *, limits: Limits | None = None) -> PickleWalk:
    """Walk one pickle from the stream's position to its STOP (or to where a real
    unpickler would fail). Never executes anything, never raises for bad bytes."""
    start = stream.tell() if stream.seekable() else 0
    walk = _Walker(stream, limits or Limits()).run()
    walk.start = start
    walk.end = stream.tell() if stream.seekable() else 0
    return walk


def walk_bytes(data: bytes, *, limits: Limits | None = None) -> PickleWalk:
    return walk_pickle(io.BytesIO(data), limits=limits)
