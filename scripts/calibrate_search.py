"""The trigger search's bound, from clean models only.

Reads evaluations written by ``fraudit search evaluate -o FILE`` of zoos whose
clean models the bound may be set on (never the evaluation's worlds), collects
every clean model's strongest-site z, and writes them with the prediction bounds
at false-alarm 1 % and 5 % (``fraudit.search.differential.prediction_bound``).
``BOUND_Z`` in that module must equal the 1 % bound of the file this writes;
``tests/test_search.py`` checks it.

    python scripts/calibrate_search.py EVAL.json ... --out measurements/search-calibration.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fraudit.search.differential import prediction_bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    models = []
    budgets = set()
    for path in args.evaluations:
        evaluation = json.loads(path.read_text())
        budgets.add(json.dumps(evaluation["budget"], sort_keys=True))
        models += [{"zoo": evaluation["zoo"], "base": evaluation["base"], "model": m["name"], "z": m["z"]}
                   for m in evaluation["models"] if m["kind"] == "clean"]
    if len(budgets) != 1:
        raise SystemExit("the evaluations were made with different search budgets")
    z = [m["z"] for m in models]
    document = {"budget": json.loads(budgets.pop()), "clean_models": len(models),
                "bound_z": {"0.01": round(prediction_bound(z, 0.01), 2), "0.05": round(prediction_bound(z, 0.05), 2)},
                "max_z": max(z), "models": models}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({k: document[k] for k in ("clean_models", "bound_z", "max_z")}))


if __name__ == "__main__":
    main()
