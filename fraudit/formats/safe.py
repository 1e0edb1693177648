"""Load one model file the way file safety does, for tools that read checkpoints
the user hands them (bank building, pairing): detect, scan, then load."""

from __future__ import annotations

from pathlib import Path

import torch

from fraudit.errors import UnsafePickleError
from fraudit.formats.detect import detect_format
from fraudit.formats.load import load_tensors
from fraudit.formats.pickle_scan import scan_pickles


def load_checked(path: Path) -> dict[str, torch.Tensor]:
    fmt = detect_format(path)
    if fmt.is_pickle:
        scan = scan_pickles(path, fmt)
        if not scan.safe:
            names = ", ".join(g.qualified_name for g in scan.offending) or "malformed pickle"
            raise UnsafePickleError(f"{path.name}: refusing to load ({names})")
    return load_tensors(path, fmt)
