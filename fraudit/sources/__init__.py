"""Where candidates come from: local files and folders, or the Hugging Face Hub."""

from fraudit.sources.candidate import Candidate, SourceFailure
from fraudit.sources.resolve import resolve_sources

__all__ = ["Candidate", "SourceFailure", "resolve_sources"]
