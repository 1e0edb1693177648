"""Download a candidate from the Hugging Face Hub through ``huggingface_hub``.

Only weight and config files are fetched, into the library's usual cache, so a
re-run (or ``HF_HUB_OFFLINE=1``) resolves from disk. Nothing downloaded is run:
the files go through the same format detection and pickle scan as local ones.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fraudit.errors import SourceNotFoundError, SourceUnavailableError, UnsafeLocationError
from fraudit.sources.local import WEIGHT_SUFFIXES

HF_SCHEME = "hf://"
# dlib networks are .dat files; which downloaded .dat is a network, its bytes say.
DOWNLOAD_PATTERNS = sorted(f"*{suffix}" for suffix in WEIGHT_SUFFIXES) + ["*.dat", "*.json"]

# huggingface_hub's own rule: optional namespace, 1-96 chars of [\w\-.], no '--' or '..'
_REPO_ID = re.compile(r"^(?:[\w\-.]{1,96}/)?[\w\-.]{1,96}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# A git branch or tag name (git check-ref-format), or a Hub pull-request ref: the
# characters git allows, no '..', '@{', '//', no component starting with '.' or
# ending with '.lock', no leading or trailing '/'.
_REF_CHARS = re.compile(r"^[A-Za-z0-9._/+=,-]{1,255}$")


def valid_revision(revision: str) -> bool:
    """A branch or tag name, or a 40-hex commit: never a path, never a traversal."""
    if _COMMIT.match(revision):
        return True
    if not _REF_CHARS.match(revision) or ".." in revision or "//" in revision or "@{" in revision:
        return False
    if revision.startswith("/") or revision.endswith(("/", ".")):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock") for part in revision.split("/"))


@dataclass(frozen=True)
class HubReference:
    repo_id: str
    revision: str | None

    def uri(self, commit: str | None = None, path: str | None = None) -> str:
        rev = commit or self.revision
        text = f"{HF_SCHEME}{self.repo_id}" + (f"@{rev}" if rev else "")
        return f"{text}/{path}" if path else text


def parse_hub_reference(source: str, *, revision: str | None = None) -> HubReference | None:
    """``hf://org/name@rev`` or a bare ``org/name``; None when it is neither."""
    text = source.removeprefix(HF_SCHEME)
    explicit = source.startswith(HF_SCHEME)
    repo_id, at, rev = text.partition("@")
    repo_id = repo_id.strip("/")
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        return None
    if not explicit and "/" not in repo_id:
        return None  # a bare word is a missing local path, not a Hub repo
    chosen = (rev if at else None) or revision
    if chosen is not None and not valid_revision(chosen):
        raise UnsafeLocationError(f"{source}: revision {chosen!r} is not a branch, tag or 40-hex commit")
    return HubReference(repo_id=repo_id, revision=chosen)


def repository_cache_folder(snapshot: Path) -> Path:
    """``<cache>/models--org--name`` for a snapshot folder: where its symlinks may point."""
    return snapshot.parent.parent if snapshot.parent.name == "snapshots" else snapshot


def download(
    ref: HubReference,
    *,
    token: str | bool | None = None,
    repo_type: str = "model",
    allow_patterns: list[str] | None = None,
) -> tuple[Path, str]:
    """Fetch the repo's weight and config files (or ``allow_patterns``); return the
    snapshot folder and commit. ``repo_type="dataset"`` fetches face data sets."""
    from huggingface_hub import snapshot_download
    from huggingface_hub import errors as hf_errors

    try:
        folder = Path(
            snapshot_download(
                ref.repo_id,
                revision=ref.revision,
                repo_type=repo_type,
                allow_patterns=allow_patterns or DOWNLOAD_PATTERNS,
                token=token,
                # read now, not at import, so HF_ENDPOINT set by a caller or a test counts
                endpoint=os.environ.get("HF_ENDPOINT") or None,
            )
        )
    except hf_errors.RepositoryNotFoundError as exc:
        raise SourceNotFoundError(f"{ref.uri()}: repository not found (or private: pass --token)",
                                  repo_id=ref.repo_id, revision=ref.revision) from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise SourceNotFoundError(f"{ref.uri()}: revision {ref.revision!r} not found",
                                  repo_id=ref.repo_id, revision=ref.revision) from exc
    except hf_errors.GatedRepoError as exc:
        raise SourceUnavailableError(f"{ref.uri()}: gated repository, accept its terms and pass --token",
                                     repo_id=ref.repo_id, revision=ref.revision) from exc
    except hf_errors.LocalEntryNotFoundError as exc:
        raise SourceUnavailableError(f"{ref.uri()}: cannot reach the Hub and the files are not in the local cache",
                                     repo_id=ref.repo_id, revision=ref.revision) from exc
    except (hf_errors.HfHubHTTPError, OSError, ValueError) as exc:
        raise SourceUnavailableError(f"{ref.uri()}: download failed ({_first_line(exc)})",
                                     repo_id=ref.repo_id, revision=ref.revision) from exc
    # A snapshot is <cache>/<repo>/snapshots/<40-hex commit>: anything else came from a
    # revision or an endpoint answer that steered the cache elsewhere.
    if folder.parent.name != "snapshots" or not _COMMIT.match(folder.name):
        raise UnsafeLocationError(f"{ref.uri()}: the Hub cache returned {folder}, not a snapshot folder; refused",
                                  path=folder)
    return folder, folder.name


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
