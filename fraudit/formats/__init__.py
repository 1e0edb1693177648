"""Model file formats: recognised from their bytes, scanned, then loaded as tensors."""

from fraudit.formats.detect import Format, detect_format
from fraudit.formats.load import load_tensors
from fraudit.formats.pickle_scan import PickleScan, scan_pickles
from fraudit.formats.read import FileReading, ReadCandidate, read_candidate, read_file

__all__ = [
    "FileReading", "Format", "PickleScan", "ReadCandidate", "detect_format", "load_tensors", "read_candidate",
    "read_file", "scan_pickles",
]
