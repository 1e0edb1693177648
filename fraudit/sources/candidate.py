"""A candidate is one model to audit: one weight file, or the shards of one model repo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Candidate:
    """One model: ``source`` is how reports name it, ``files`` its weight files."""

    source: str
    files: tuple[Path, ...]
    # Where the files live for SARIF locations: a path relative to the working
    # directory for local files, the ``hf://`` URI for Hub files.
    locations: tuple[str, ...]


@dataclass(frozen=True)
class SourceFailure:
    """A source that yielded no candidate (missing path, unknown repo, no network)."""

    source: str
    reason: str


@dataclass(frozen=True)
class SkippedEntry:
    """An entry of a scanned folder that was not read, and why (a symlink leading out
    of the folder, a FIFO): reported, never silently dropped."""

    source: str
    reason: str
