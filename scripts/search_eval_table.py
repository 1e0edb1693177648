"""Pool ``fraudit search evaluate`` files (one per zoo) into the trigger search's
numbers: false alarms on clean models and detections of successful backdoors per
zoo, per trigger family (held-out or library) and per recipe, with the strongest
site on the trigger — at the bounds each file was judged with.

    python scripts/search_eval_table.py measurements/search-eval-X-*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _detected(model: dict, bound: float, blend_bound: float) -> bool:
    return ((model["gain"] is not None and model["gain"] > bound)
            or (model["blend_gain"] is not None and model["blend_gain"] > blend_bound))


def _recipe(model: dict) -> str:
    return model["recipe"] or "one-to-one"


def pooled(files: list[dict]) -> dict:
    clean = flagged_clean = hits = found = located = 0
    clean_gains: list[float] = []
    by_family: dict[str, list[int]] = {}
    by_recipe: dict[str, list[int]] = {}
    for data in files:
        bound, blend_bound = data["summary"]["bound"], data["summary"]["blend_bound"]
        for model in data["models"]:
            flagged = _detected(model, bound, blend_bound)
            if model["kind"] == "clean":
                clean += 1
                flagged_clean += flagged
                clean_gains.append(model["gain"])
                continue
            if not model["successful"]:
                continue
            hits += 1
            found += flagged
            located += bool(flagged and model["on_trigger"])
            family = "held-out triggers" if model["trigger"].startswith("heldout-") else "library triggers"
            for table, key in ((by_family, family), (by_recipe, _recipe(model))):
                counts = table.setdefault(key, [0, 0])
                counts[0] += flagged
                counts[1] += 1
    return {
        "clean false alarms": f"{flagged_clean}/{clean}",
        "clean patch gains": f"{min(clean_gains):.3f}–{max(clean_gains):.3f}" if clean_gains else "—",
        "successful backdoors detected": f"{found}/{hits}",
        "strongest site on the trigger (of those detected)": f"{located}/{found}",
        **{f"{k} detected": f"{v[0]}/{v[1]}" for k, v in sorted(by_family.items())},
        **{f"recipe {k} detected": f"{v[0]}/{v[1]}" for k, v in sorted(by_recipe.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    files = [json.loads(f.read_text()) for f in args.files]
    per_zoo = {data["zoo"]: pooled([data]) for data in files}
    missed = [{"zoo": data["zoo"], "model": m["name"], "gain": round(m["gain"], 3), "blend_gain": round(m["blend_gain"], 3)}
              for data in files for m in data["models"]
              if m["kind"] != "clean" and m["successful"]
              and not _detected(m, data["summary"]["bound"], data["summary"]["blend_bound"])]
    print(json.dumps({"per zoo": per_zoo, "pooled": pooled(files), "missed": missed}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
