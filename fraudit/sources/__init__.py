"""Where candidates come from: local files and folders, or the Hugging Face Hub."""

from fraudit.sources.candidate import Candidate, SkippedEntry, SourceFailure
from fraudit.sources.resolve import Resolved, resolve_checkpoint, resolve_sources

__all__ = ["Candidate", "Resolved", "SkippedEntry", "SourceFailure", "resolve_checkpoint", "resolve_sources"]
