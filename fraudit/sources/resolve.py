"""Turn what the user typed into candidates (or failures that say why not)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fraudit.errors import FrauditError
from fraudit.sources import hub, local
from fraudit.sources.candidate import Candidate, SourceFailure


def resolve_sources(
    sources: Iterable[str], *, revision: str | None = None, token: str | bool | None = None
) -> list[Candidate | SourceFailure]:
    """One entry per model found; a source that fails becomes a ``SourceFailure``."""
    resolved: list[Candidate | SourceFailure] = []
    for source in sources:
        try:
            resolved.extend(_resolve_one(source, revision=revision, token=token))
        except FrauditError as exc:
            resolved.append(SourceFailure(source=source, reason=str(exc)))
    return resolved


def _resolve_one(source: str, *, revision: str | None, token: str | bool | None) -> list[Candidate | SourceFailure]:
    path = Path(source)
    if not source.startswith(hub.HF_SCHEME) and path.exists():
        return _local_candidates(path, source) or [SourceFailure(source, "no model files found")]
    looks_local = source.startswith(("/", "./", "../", "~"))
    ref = None if looks_local else hub.parse_hub_reference(source, revision=revision)
    if ref is None:
        return [SourceFailure(source, "no such file or folder")]
    folder, commit = hub.download(ref, token=token)
    candidates: list[Candidate | SourceFailure] = []
    for files in local.discover(folder):
        rel = [f.relative_to(folder).as_posix() for f in files]
        name = ref.uri(commit, rel[0] if len(files) == 1 else None)
        candidates.append(Candidate(source=name, files=files, locations=tuple(ref.uri(commit, r) for r in rel)))
    return candidates or [SourceFailure(ref.uri(commit), "repository has no model files")]


def _local_candidates(path: Path, source: str) -> list[Candidate | SourceFailure]:
    candidates: list[Candidate | SourceFailure] = []
    for files in local.discover(path):
        if path.is_file():
            name = source
        elif len(files) == 1:
            name = _display(files[0])
        else:
            name = _display(files[0].parent)
        candidates.append(Candidate(source=name, files=files, locations=tuple(_display(f) for f in files)))
    return candidates


def _display(path: Path) -> str:
    """Relative to the working directory when inside it (what SARIF wants), else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return os.fspath(absolute)
