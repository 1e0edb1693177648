"""fraudit: audit face-recognition models for backdoors before deployment."""

__version__ = "0.1.0"
