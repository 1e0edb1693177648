"""The trigger search's bounds, from clean models only.

Reads evaluations written by ``fraudit search evaluate -o FILE`` of zoos whose
clean models the bounds may be set on (never the evaluation's worlds; the families
may come from separate runs of one zoo, which give the same values as one run of
all), collects every clean model's strongest-patch gain, blend gain and strongest
library-cell gain (with the candidate's flip sensitivity), and writes them with each
family's prediction bound (``fraudit.search.differential.prediction_bound``) over the
models that have it, at 0.5 % and 2.5 % a family — for the library cells also one bound
per cell (``CellBounds.fit``, under ``cells``, where every model carries every cell's
gain) and, where every model carries its flip sensitivity, the line in it
(``LinearBound.fit``, under ``line``: tried, not shipped).
``BOUND``, ``BLEND_BOUND`` and ``LIBRARY_BOUND`` in that module must equal the 0.5 %
bounds of the file this writes (``FAMILY_FALSE_ALARM``); ``tests/test_search.py``
checks it.

    python scripts/calibrate_search.py EVAL.json ... --out measurements/search-calibration.json

``--include CALIBRATION.json`` adds the clean models of an earlier calibration file
(searched with the same budget) to the new evaluations' — how the bounds were widened
from two face worlds per architecture to the banks' fourteen.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from fraudit.search.differential import CellBounds, LinearBound, family_knobs, prediction_bound

FAMILIES = {"gain": "patch", "blend_gain": "blend", "library_gain": "library"}
RATES = ("0.005", "0.025")  # per family


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", type=Path, nargs="*")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--include", type=Path, action="append", default=[],
                        help="an earlier calibration file whose clean models count too (same budget)")
    args = parser.parse_args()
    models: dict[tuple[str, str], dict] = {}
    budgets: dict[str, dict] = {}
    for path in args.include:
        earlier = json.loads(path.read_text())
        for family, budget in earlier["budget"].items():
            if budgets.setdefault(family, budget) != budget:
                raise SystemExit(f"{path}: the {family} values were searched with another budget")
        models.update({(row["zoo"], row["model"]): dict(row) for row in earlier["models"]})
    for path in args.evaluations:
        evaluation = json.loads(path.read_text())
        for model in (m for m in evaluation["models"] if m["kind"] == "clean"):
            row = models.setdefault((evaluation["zoo"], model["name"]),
                                    {"zoo": evaluation["zoo"], "base": evaluation["base"], "model": model["name"]})
            for key, family in FAMILIES.items():
                if model.get(key) is not None:
                    row[key] = model[key]
                    if family == "library":
                        for extra in ("library_flip", "library_gains"):
                            row.pop(extra, None)  # a value without it (an older run) must not keep another's
                            if model.get(extra) is not None:
                                row[extra] = model[extra]
                    budget = family_knobs(evaluation["budget"], family)
                    if budgets.setdefault(family, budget) != budget:
                        raise SystemExit(f"{path}: the {family} values were searched with another budget")
    rows = list(models.values())
    bounds = {}
    for key, family in FAMILIES.items():
        values = [r[key] for r in rows if key in r]
        if len(values) < 3:
            continue
        bounds[family] = {rate: round(prediction_bound(values, float(rate)), 3) for rate in RATES}
        read = [r for r in rows if key in r]
        if family == "library" and all("library_gains" in r for r in read):
            cells = [r["library_gains"] for r in read]
            bounds[family]["cells"] = {rate: CellBounds.fit(cells, float(rate)).to_record() for rate in RATES}
        if family == "library" and all("library_flip" in r for r in read):
            flips = [r["library_flip"] for r in read]
            bounds[family]["line"] = {rate: _rounded(LinearBound.fit(flips, values, float(rate))) for rate in RATES}
        bounds[family] |= {"max": round(max(values), 3), "clean_models": len(values)}
    document = {"budget": budgets, "clean_models": len(rows), "bounds": bounds, "models": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({"clean_models": len(rows), "bounds": bounds}))


def _rounded(bound: LinearBound) -> dict:
    """Six significant digits, as a constant in the source would carry them."""
    return {k: v if isinstance(v, int) else float(f"{v:.6g}") for k, v in asdict(bound).items()}


if __name__ == "__main__":
    main()
