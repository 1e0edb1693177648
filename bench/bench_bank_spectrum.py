"""Weight bank: the spectrum, head-aligned and head-response readings against the
index-aligned vector readings, side by side in one run on the same reference networks,
at full scale (no cropping): time to build a bank (fit + cross-fitted calibration; for
head-response also every reference's and the base's embeddings of the response faces)
and to score one candidate (for head-response, with its embeddings of those faces);
and, read on every reference, what each reading of the change spectrum costs
(``spike_score`` and ``trend_spike_score``, as checkpoints and as folded exports read them);
the spectrum bank also with each reading's share between the zoos measured
(``sources``, as ``bank build`` does) and without the spike over the median.

    python bench/bench_bank_spectrum.py ZOO [ZOO ...] --base BASE.safetensors [--networks 20] [--runs 5]

Prints medians over ``--runs`` and their ratio, as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from fraudit.bank.bank import EstimatorKind, fit_layer_models, score_network
from fraudit.bank.build import read_layers
from fraudit.bank.readings import Reading, ReadingSet, spike_score, trend_spike_score
from fraudit.bank.response import RESPONSE_KEY, response_embeddings, response_faces
from fraudit.formats.safe import load_checked
from fraudit.zoo.manifest import clean_checkpoints

LAYER = "last_linear.weight"
HEAD = "head.weight"


def _median_seconds(run, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("zoos", type=Path, nargs="+")
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--networks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    found = [(i, p) for i, zoo in enumerate(args.zoos) for p in clean_checkpoints([zoo])][: args.networks + 1]
    paths = [p for _, p in found]
    sources = [i for i, _ in found][: args.networks]
    networks = [read_layers(p, (LAYER, HEAD))[1] for p in paths]
    references, candidate = networks[:-1], networks[-1]
    base = read_layers(args.base, (LAYER,))[1]
    report: dict = {"layer": LAYER, "shape": list(references[0][LAYER].shape), "networks": len(references), "runs": args.runs}
    for name, options in (("index-aligned vectors", {"kind": EstimatorKind.INDEX_ALIGNED}),
                          ("spectrum", {"kind": EstimatorKind.INDEX_ALIGNED, "readings": ReadingSet.SPECTRUM, "base": base}),
                          ("spectrum, shares between sources measured",
                           {"kind": EstimatorKind.INDEX_ALIGNED, "readings": ReadingSet.SPECTRUM, "base": base,
                            "sources": sources}),
                          ("spectrum without the spike over the median",
                           {"kind": EstimatorKind.INDEX_ALIGNED, "readings": ReadingSet.SPECTRUM, "base": base,
                            "without": (Reading.SPECTRUM,)}),
                          ("head-aligned", {"kind": EstimatorKind.INDEX_ALIGNED, "readings": ReadingSet.HEAD_ALIGNED,
                                            "base": base, "head": (LAYER, HEAD)})):
        models = fit_layer_models(references, [LAYER], **options)
        report[name] = {
            "build_s": _median_seconds(lambda: fit_layer_models(references, [LAYER], **options), args.runs),
            "score_s": _median_seconds(lambda: score_network(models, candidate, frr=(0.01, 0.05)), args.runs),
        }
    t0 = time.perf_counter()
    response_faces()
    report["response_faces_s (once per process)"] = time.perf_counter() - t0
    full = [load_checked(p) for p in paths]
    base_full = load_checked(args.base)

    def responding(i: int) -> dict:
        return {**networks[i], RESPONSE_KEY: response_embeddings(paths[i].name, full[i])}

    def build_response():  # noqa: ANN202
        nets = [responding(i) for i in range(len(references))]
        with_base = {**base, RESPONSE_KEY: response_embeddings("base", base_full)}
        return fit_layer_models(nets, [LAYER], kind=EstimatorKind.INDEX_ALIGNED, readings=ReadingSet.HEAD_RESPONSE,
                                base=with_base, head=(LAYER, HEAD))

    response_models = build_response()
    report["head-response"] = {
        "build_s": _median_seconds(build_response, args.runs),
        "score_s": _median_seconds(lambda: score_network(response_models, responding(len(references)),
                                                         frr=(0.01, 0.05)), args.runs),
    }
    for name, read in (("spike_score", spike_score), ("trend_spike_score", trend_spike_score)):
        for unit_rows in (False, True):
            report[f"{name}{' (unit rows)' if unit_rows else ''}: all references_s"] = _median_seconds(
                lambda: [read(net[LAYER], base[LAYER], unit_rows=unit_rows) for net in references], args.runs)
    vectors, spectrum = report["index-aligned vectors"], report["spectrum"]
    report["build_ratio_shares_measured_over_spectrum"] = (
        report["spectrum, shares between sources measured"]["build_s"] / spectrum["build_s"])
    report["build_ratio_vectors_over_spectrum"] = vectors["build_s"] / spectrum["build_s"]
    report["score_ratio_vectors_over_spectrum"] = vectors["score_s"] / spectrum["score_s"]
    report["build_ratio_vectors_over_head_aligned"] = vectors["build_s"] / report["head-aligned"]["build_s"]
    report["score_ratio_vectors_over_head_aligned"] = vectors["score_s"] / report["head-aligned"]["score_s"]
    report["build_ratio_vectors_over_head_response"] = vectors["build_s"] / report["head-response"]["build_s"]
    report["score_ratio_vectors_over_head_response"] = vectors["score_s"] / report["head-response"]["score_s"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
