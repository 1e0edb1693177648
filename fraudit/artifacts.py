"""Reading the JSON files of fraudit's artifacts (bank headers, sweep nulls, pair
files, zoo manifests): one place that turns a missing or malformed file into the
typed error a user sees, whichever artifact it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fraudit.errors import CorruptFileError, SourceNotFoundError


def read_json_object(path: Path, *, kind: str, missing: str | None = None) -> dict[str, Any]:
    """The JSON object in ``path``; ``kind`` names the artifact in errors ("a sweep null"),
    ``missing`` replaces the message for a file that does not exist."""
    if not path.is_file():
        raise SourceNotFoundError(missing or f"{path}: no such file ({kind} expected)", path=path)
    try:
        payload = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path}: not {kind} (invalid JSON: {exc})", path=path) from exc
    if not isinstance(payload, dict):
        raise CorruptFileError(f"{path}: not {kind} (a JSON {type(payload).__name__}, not an object)", path=path)
    return payload
