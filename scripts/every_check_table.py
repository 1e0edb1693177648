"""Count what every check, and the whole scan, FAILs in ``scripts/onnx_verdicts.py`` files
run with ``--base`` (the trigger search among the checks), per group (clean models,
successful backdoors, attempts that did not take) and file format — with the search
judged again at other bounds from the gains each file recorded (``--bounds PATCH BLEND
LIBRARY``; ``--library-line FILE`` judges the library cells by the line of a
``scripts/calibrate_search.py`` file at each file's recorded flip sensitivity,
``--library-cells FILE`` by its bound per cell, from the cells' gains the file recorded).
A scan FAILs when any of its checks does.

    python scripts/every_check_table.py measurements/.../every-check-*.json --bounds 0.117 0.530 0.054
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fraudit.search.differential import (BLEND_BOUND, BOUND, LIBRARY_BOUND, LibraryBound, LinearBound,
                                         library_bound_from_record)
from fraudit.search.evaluate import SearchOutcome

CHECKS = ("file-safety", "weight-bank", "pairing", "trigger-search")


def search_fails(result: dict, patch: float, blend: float, library: LibraryBound) -> bool:
    """Whether the search FAILs this file at these bounds, from the gains and flip sensitivity it recorded."""
    gain, blend_gain, library_gain = result["search_gains"]
    outcome = SearchOutcome("", "", None, None, None, None, None, gain, None, None, 0.0, blend_gain=blend_gain,
                            library_gain=library_gain, library_gains=result.get("library_gains"),
                            library_flip=result.get("library_flip"))
    return outcome.detected(patch, blend, library)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--bounds", type=float, nargs=3, metavar=("PATCH", "BLEND", "LIBRARY"),
                        help="judge at these bounds, the library's one number for every cell (default: the shipped bounds)")
    parser.add_argument("--library-line", type=Path, help="a calibrate_search.py file whose library line to judge by")
    parser.add_argument("--library-cells", type=Path, help="a calibrate_search.py file whose per-cell bounds to judge by")
    args = parser.parse_args()
    patch, blend = args.bounds[:2] if args.bounds else (BOUND, BLEND_BOUND)
    library: LibraryBound = LinearBound.constant(args.bounds[2]) if args.bounds else LIBRARY_BOUND
    for path, kind in ((args.library_line, "line"), (args.library_cells, "cells")):
        if path:
            library = library_bound_from_record(json.loads(path.read_text())["bounds"]["library"][kind]["0.005"])
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for path in args.files:
        for row in json.loads(path.read_text())["models"]:
            group = "clean" if row["kind"] == "clean" else "successful backdoors" if row["successful"] else "failed attempts"
            for fmt in ("safetensors", "onnx"):
                result = row[fmt]
                failed = {c: result.get(c) == "FAIL" for c in CHECKS}
                failed["trigger-search"] = search_fails(result, patch, blend, library)
                tally = counts.setdefault(group, {}).setdefault(fmt, {"models": 0, "scan": 0, **{c: 0 for c in CHECKS}})
                tally["models"] += 1
                tally["scan"] += any(failed.values())
                for check, value in failed.items():
                    tally[check] += value
    print(json.dumps({"bounds": {"patch": patch, "blend": blend, "library": library.describe()}, "FAIL": counts}, indent=2))


if __name__ == "__main__":
    main()
