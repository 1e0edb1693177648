"""The errors a user can meet. Raised deep, caught once: only the CLI turns them
into messages and exit codes, and a batch turns them into ERROR results."""


class FrauditError(Exception):
    """Base class of every error fraudit raises on purpose."""


class SourceNotFoundError(FrauditError):
    """A local path or a Hub repository, revision or file does not exist."""


class SourceUnavailableError(FrauditError):
    """A source exists (or may exist) but cannot be reached now: no network, offline mode."""


class UnsupportedFormatError(FrauditError):
    """The bytes are not a model format fraudit reads."""


class CorruptFileError(FrauditError):
    """The bytes claim a known format but cannot be parsed as one."""


class EmbedderUnavailableError(FrauditError):
    """An embedder needs an optional dependency that is not installed (dlib)."""


class UnsafePickleError(FrauditError):
    """A pickle imports globals that a plain tensor checkpoint never needs."""
