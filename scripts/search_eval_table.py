"""Pool ``fraudit search evaluate`` files (one per zoo) into the trigger search's
numbers: false alarms on clean models and detections of successful backdoors per
zoo, per trigger family (held-out or library) and per recipe, with the strongest
site on the trigger — at the bounds each file was judged with, or at ``--bounds
PATCH BLEND [LIBRARY]`` (a re-judgement: the gains do not depend on the bounds; a
file written before the library cells has no library gains; LIBRARY is then one
number for every model; ``--library-cells CALIBRATION`` judges them by one bound per
cell, those of a ``scripts/calibrate_search.py`` file). The library cells'
own counts are given apart too. With ``--bank``
files of ``scripts/onnx_verdicts.py`` for the same zoos, also what ``scan --base``
gives with the weight bank — and the pairing check, where those files ran it — beside
the search (a model is flagged when any of them FAILs), for the safetensors and for
the ONNX exports — each export by its own search verdict where the file searched the
exports too (``--base``), else by its safetensors' search verdict. With
``--embedding-attack`` files of ``scripts/embedding_attack_record.py`` for the same
zoos, the successful backdoors are
also split by whether they work through the embedding (≥ 80 % of the impostors'
stamped faces verified as the victim without the head) or through the head only.

    python scripts/search_eval_table.py measurements/search-eval-X-*.json [--bank measurements/onnx-bank-verdicts-X-*.json]
        [--embedding-attack measurements/embedding-attack/*.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fraudit.search.differential import LibraryBound, LinearBound, library_bound_from_record
from fraudit.search.evaluate import SearchOutcome
from fraudit.zoo.heldout import heldout_triggers

FORMATS = ("safetensors", "onnx")
OTHER_CHECKS = ("weight-bank", "pairing")  # what an onnx_verdicts row may hold beside the search
Bounds = tuple[float, float, LibraryBound]  # patch, blend, library
Given = tuple[float | LibraryBound | None, ...]  # what the command line sets, in Bounds' order (None: the file's own)


def _detected(model: dict, bounds: Bounds) -> bool:
    return SearchOutcome(**model).detected(*bounds)


def _library_flagged(model: dict, bounds: Bounds) -> bool:
    excess = SearchOutcome(**model).library_excess(bounds[2])
    return excess is not None and excess > 0


def _recipe(model: dict) -> str:
    return model["recipe"] or "one-to-one"


def _bounds(data: dict, given: Given | None) -> Bounds:
    """The file's own bounds, with those ``given`` in their place (None: not given)."""
    summary = data["summary"]
    own = (summary["bound"], summary["blend_bound"], library_bound_from_record(summary.get("library_bound")))
    return tuple(o if g is None else g for o, g in zip(own, (*(given or ()), None, None, None)))  # type: ignore[return-value]


def pooled(files: list[dict], bank: dict[tuple[str, str], dict] | None = None,
           bounds: Given | None = None, through: dict[tuple[str, str], bool] | None = None) -> dict:
    """``bank``: (zoo, model) → that model's onnx_verdicts row, for the flagged-by-either counts;
    ``through``: (zoo, model) → whether the backdoor works through the embedding."""
    clean = flagged_clean = hits = found = located = library_clean = library_found = 0
    library_read = False
    checks_read: set[str] = set()
    either = {fmt: [0, 0] for fmt in FORMATS}  # clean flagged, backdoors flagged
    clean_gains: list[float] = []
    by_family: dict[str, list[int]] = {}
    by_recipe: dict[str, list[int]] = {}
    for data in files:
        judged = _bounds(data, bounds)
        for model in data["models"]:
            flagged = _detected(model, judged)
            by_library = _library_flagged(model, judged)
            library_read |= model.get("library_gain") is not None
            row = (bank or {}).get((data["zoo"], model["name"]))
            if row is not None and (model["kind"] == "clean" or model["successful"]):
                for fmt in FORMATS:
                    # a file that searched the exports too gives each format its own search verdict
                    searched = row[fmt]["trigger-search"] == "FAIL" if "trigger-search" in row[fmt] else flagged
                    others = [check for check in OTHER_CHECKS if check in row[fmt]]
                    checks_read |= set(others)
                    either[fmt][model["kind"] != "clean"] += searched or any(row[fmt][c] == "FAIL" for c in others)
            if model["kind"] == "clean":
                clean += 1
                flagged_clean += flagged
                library_clean += by_library
                if model["gain"] is not None:
                    clean_gains.append(model["gain"])
                continue
            if not model["successful"]:
                continue
            hits += 1
            found += flagged
            library_found += by_library
            located += bool(flagged and model["on_trigger"])
            family = "held-out triggers" if model["trigger"] in heldout_triggers() else "library triggers"
            keys = [(by_family, family), (by_recipe, _recipe(model))]
            if through:
                way = "through the embedding" if through[(data["zoo"], model["name"])] else "through the head only"
                keys += [(by_family, f"{family}, {way}"), (by_recipe, f"{_recipe(model)}, {way}")]
            for table, key in keys:
                counts = table.setdefault(key, [0, 0])
                counts[0] += flagged
                counts[1] += 1
    return {
        "clean false alarms": f"{flagged_clean}/{clean}",
        "clean patch gains": f"{min(clean_gains):.3f}–{max(clean_gains):.3f}" if clean_gains else "—",
        "successful backdoors detected": f"{found}/{hits}",
        **({"library cells alone: clean flagged / backdoors flagged": f"{library_clean}/{clean} / {library_found}/{hits}"}
           if library_read else {}),
        "strongest site on the trigger (of those detected)": f"{located}/{found}",
        **{f"{k} detected": f"{v[0]}/{v[1]}" for k, v in sorted(by_family.items())},
        **{f"recipe {k} detected": f"{v[0]}/{v[1]}" for k, v in sorted(by_recipe.items())},
        **({f"with the {' and the '.join(c for c in OTHER_CHECKS if c in checks_read)}, {fmt}: clean flagged / "
            f"backdoors flagged": f"{either[fmt][0]}/{clean} / {either[fmt][1]}/{hits}" for fmt in FORMATS} if bank else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--bank", type=Path, nargs="+", default=[],
                        help="scripts/onnx_verdicts.py files of the same zoos (the weight bank's verdicts per format)")
    parser.add_argument("--bounds", type=float, nargs="+", metavar="BOUND",
                        help="PATCH BLEND [LIBRARY]: judge every file at these bounds instead of its own")
    parser.add_argument("--library-cells", type=Path, metavar="CALIBRATION",
                        help="judge the library cells by the per-cell bounds of a scripts/calibrate_search.py file")
    parser.add_argument("--embedding-attack", type=Path, nargs="+", default=[],
                        help="scripts/embedding_attack_record.py files of the same zoos")
    parser.add_argument("--zoo-alias", nargs=2, action="append", default=[], metavar=("EVALUATED", "RECORDED"),
                        help="an evaluation file's zoo name and the folder name its embedding record has (the same zoo built again)")
    args = parser.parse_args()
    if args.bounds and len(args.bounds) not in (2, 3):
        parser.error("--bounds takes PATCH BLEND [LIBRARY]")
    bounds: Given | None = None
    if args.bounds:
        bounds = (*args.bounds[:2], *(LinearBound.constant(b) for b in args.bounds[2:]))
    if args.library_cells:
        cells = json.loads(args.library_cells.read_text())["bounds"]["library"]["cells"]["0.005"]
        bounds = (*(bounds or (None, None))[:2], library_bound_from_record(cells))
    files = [json.loads(f.read_text()) for f in args.files]
    bank: dict[tuple[str, str], dict] = {}
    for path in args.bank:
        verdicts = json.loads(path.read_text())
        bank.update({(Path(verdicts["zoo"]).name, row["model"]): row for row in verdicts["models"]})
    missing = [(d["zoo"], m["name"]) for d in files for m in d["models"] if bank and (d["zoo"], m["name"]) not in bank]
    if missing:
        parser.error(f"no bank verdict for {len(missing)} models, e.g. {missing[0]}")
    alias = dict((recorded, evaluated) for evaluated, recorded in args.zoo_alias)
    through: dict[tuple[str, str], bool] = {}
    for path in args.embedding_attack:
        record = json.loads(path.read_text())
        zoo = alias.get(record["zoo"], record["zoo"])
        through.update({(zoo, row["name"]): bool(row["works_through_embedding"]) for row in record["models"]})
    absent = [(d["zoo"], m["name"]) for d in files for m in d["models"]
              if through and m["kind"] != "clean" and m["successful"] and (d["zoo"], m["name"]) not in through]
    if absent:
        parser.error(f"no embedding attack record for {len(absent)} backdoors, e.g. {absent[0]}")
    per_zoo = {data["zoo"]: pooled([data], bank, bounds, through) for data in files}
    missed = [{"zoo": data["zoo"], "model": m["name"],
               **{key: round(m[key], 3) for key in ("gain", "blend_gain", "library_gain") if m.get(key) is not None}}
              for data in files for m in data["models"]
              if m["kind"] != "clean" and m["successful"]
              and not _detected(m, _bounds(data, bounds))]
    print(json.dumps({"per zoo": per_zoo, "pooled": pooled(files, bank, bounds, through), "missed": missed},
                     indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
