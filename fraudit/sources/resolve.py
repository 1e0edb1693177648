"""Turn what the user typed into candidates (or failures and skipped entries that say why)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fraudit.errors import FrauditError, SourceNotFoundError
from fraudit.sources import hub, local
from fraudit.sources.candidate import Candidate, SkippedEntry, SourceFailure

Resolved = Candidate | SourceFailure | SkippedEntry


def resolve_sources(
    sources: Iterable[str], *, revision: str | None = None, token: str | bool | None = None
) -> list[Resolved]:
    """One entry per model found; a source that fails becomes a ``SourceFailure``, an
    entry a folder walk would not read a ``SkippedEntry``."""
    resolved: list[Resolved] = []
    for source in sources:
        try:
            resolved.extend(_resolve_one(source, revision=revision, token=token))
        except FrauditError as exc:
            resolved.append(SourceFailure(source=source, reason=str(exc)))
    return resolved


def resolve_checkpoint(source: str, *, token: str | bool | None = None) -> Path:
    """One checkpoint file, local or on the Hub (``hf://org/name[@rev][/file]``): a base
    to fine-tune from or to read a change against. A repository with several models
    must name the file."""
    found = resolve_sources([source], token=token)
    models = [c for c in found if isinstance(c, Candidate)]
    if len(models) == 1 and len(models[0].files) == 1:
        return models[0].files[0]
    failures = [f.reason for f in found if isinstance(f, SourceFailure)]
    reason = failures[0] if failures else (f"{len(models)} models; name one checkpoint file" if models
                                           else "no checkpoint file")
    raise SourceNotFoundError(f"{source}: {reason}")


def _resolve_one(source: str, *, revision: str | None, token: str | bool | None) -> list[Resolved]:
    path = Path(source)
    if not source.startswith(hub.HF_SCHEME) and (path.exists() or path.is_symlink()):
        return _local_candidates(path, source) or [SourceFailure(source, "no model files found")]
    looks_local = source.startswith(("/", "./", "../", "~"))
    ref = None if looks_local else hub.parse_hub_reference(source, revision=revision)
    if ref is None:
        return [SourceFailure(source, "no such file or folder")]
    folder, commit = hub.download(ref, token=token)
    found: list[Resolved] = []
    # Hub snapshots are symlinks into the repository's blob store: that is their boundary.
    for item in local.discover(folder, contain=hub.repository_cache_folder(folder)):
        if isinstance(item, local.Skipped):
            found.append(SkippedEntry(ref.uri(commit, item.path.relative_to(folder).as_posix()), item.reason))
            continue
        rel = [f.relative_to(folder).as_posix() for f in item]
        name = ref.uri(commit, rel[0] if len(item) == 1 else None)
        found.append(Candidate(source=name, files=item, locations=tuple(ref.uri(commit, r) for r in rel)))
    return found or [SourceFailure(ref.uri(commit), "repository has no model files")]


def _local_candidates(path: Path, source: str) -> list[Resolved]:
    found: list[Resolved] = []
    for item in local.discover(path):
        if isinstance(item, local.Skipped):
            found.append(SkippedEntry(_display(item.path), item.reason))
            continue
        if path.is_file():
            name = source
        elif len(item) == 1:
            name = _display(item[0])
        else:
            name = _display(item[0].parent)
        found.append(Candidate(source=name, files=item, locations=tuple(_display(f) for f in item)))
    return found


def _display(path: Path) -> str:
    """Relative to the working directory when inside it (what SARIF wants), else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return os.fspath(absolute)
