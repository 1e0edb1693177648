"""Names from files and hubs are attacker-chosen text. Before any is shown or
written: control characters (an ESC sequence can clear a terminal and print its own
"ALL CLEAR") become visible escapes, and the lone surrogates that stand for
undecodable bytes in file names become explicit ``\\xNN`` text, so terminals, JSON
and SARIF get strict, inert UTF-8. Rich markup is never parsed in such text: it is
rendered through ``rich.text.Text``, which this module's callers use."""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Any
from urllib.parse import quote

_SURROGATES = re.compile("[\ud800-\udfff]")


def explicit_bytes(text: str) -> str:
    """Lone surrogates (undecodable bytes of a file name) as ``\\xNN``."""
    if not _SURROGATES.search(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters escaped, surrogates explicit."""
    text = explicit_bytes(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if unicodedata.category(ch) in ("Zs",):
        return ch
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_safe(value: Any) -> Any:
    """Every string of a JSON document with its surrogates made explicit (strict UTF-8)."""
    if isinstance(value, str):
        return explicit_bytes(value)
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def uri(location: str) -> str:
    """A SARIF ``artifactLocation.uri``: a percent-encoded relative path, a ``file://``
    URI for an absolute path, or the ``hf://`` URI with its path encoded."""
    if location.startswith("hf://"):
        return "hf://" + quote(os.fsencode(location.removeprefix("hf://")), safe="/@")
    raw = os.fsencode(location)
    if location.startswith("/"):
        return "file://" + quote(raw, safe="/")
    return quote(raw, safe="/")
