"""Model file formats: recognised from their bytes, scanned, then loaded as tensors."""

from fraudit.formats.detect import Format, detect_format
from fraudit.formats.load import load_tensors
from fraudit.formats.pickle_scan import PickleScan, scan_pickles

__all__ = ["Format", "PickleScan", "detect_format", "load_tensors", "scan_pickles"]
