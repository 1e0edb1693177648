"""The errors a user can meet. Raised deep, caught once: the CLI turns every
``FrauditError`` into one line on stderr and exit 2, and a batch turns it into
that candidate's ERROR result. Anything else that escapes is a bug in fraudit.

Like ``huggingface_hub.errors``, each error carries what it is about as
attributes (``path``, ``repo_id``, ``revision``), so callers can act on it
without parsing the message.
"""

from __future__ import annotations

from os import PathLike


class FrauditError(Exception):
    """Base class of every error fraudit raises on purpose."""

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = path


class SourceNotFoundError(FrauditError):
    """A local path or a Hub repository, revision or file does not exist."""

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None,
                 repo_id: str | None = None, revision: str | None = None) -> None:
        super().__init__(message, path=path)
        self.repo_id = repo_id
        self.revision = revision


class SourceUnavailableError(FrauditError):
    """A source exists (or may exist) but cannot be reached now: no network, offline mode."""

    def __init__(self, message: str, *, repo_id: str | None = None, revision: str | None = None) -> None:
        super().__init__(message)
        self.repo_id = repo_id
        self.revision = revision


class UnsupportedFormatError(FrauditError):
    """The bytes are not a model format fraudit reads, or not a model it can run."""


class CorruptFileError(FrauditError):
    """The bytes claim a known format (or artifact) but cannot be parsed or verified as one."""


class EmbedderUnavailableError(FrauditError):
    """An embedder needs an optional dependency that is not installed (dlib)."""


class UnsafePickleError(FrauditError):
    """A pickle imports globals that a plain tensor checkpoint never needs."""


class UnsafeLocationError(FrauditError):
    """A path that would read outside what the user asked to scan: a symlink out of
    the scanned folder, ONNX external data outside the model's folder, a Hub revision
    that is a path."""


class IncompatibleArtifactError(FrauditError):
    """Two things that must match do not: a null built for another setup, a pair whose
    model changed since calibration, a bank for another architecture."""


class NotEnoughDataError(FrauditError):
    """Too few reference models or faces for a statistic that needs more."""
