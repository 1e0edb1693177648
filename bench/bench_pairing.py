"""Pairing: translator fit time on 10 k embedding pairs (each translator, side by
side in one run) and trigger-sweep throughput (faces/s for a reference-architecture
candidate, for the dlib trusted model — dlib's file read by fraudit and run in torch —
and for dlib itself, with the largest difference between the two), medians of
repeated runs.

    python bench/bench_pairing.py [--pairs 10000] [--repeats 3] [--faces 512]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from fraudit.pairing.pair import TRANSLATOR_CLASSES, TranslatorKind


def _median_seconds(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def translators(n_pairs: int, repeats: int) -> list[dict]:
    """Probe 512-d, reference 128-d (FaceNet-like into dlib-like), a noisy linear relation."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_pairs + 2_000, 512))
    y = x @ rng.standard_normal((512, 128)) / 20 + 0.3 * rng.standard_normal((n_pairs + 2_000, 128)) + 5.0
    rows = []
    for kind in TranslatorKind:
        model = TRANSLATOR_CLASSES[kind]()
        seconds = _median_seconds(lambda: model.fit(x[:n_pairs], y[:n_pairs]), repeats)
        held_out = float(np.mean(model.score(x[n_pairs:], y[n_pairs:])))
        rows.append({"translator": str(kind), "pairs": n_pairs, "fit_s_median": round(seconds, 3),
                     "held_out_cosine": round(held_out, 4)})
    return rows


class _DlibItself:
    """dlib's own C++ run of its network (dlib-bin), to time and check fraudit's run against."""

    name = "dlib itself (dlib-bin)"
    architecture = "dlib-resnet-v1"

    def __init__(self, path) -> None:  # noqa: ANN001
        import dlib

        self.model = dlib.face_recognition_model_v1(str(path))

    def embed(self, faces: np.ndarray) -> np.ndarray:
        from fraudit.faces.resize import resize_faces

        chips = [np.ascontiguousarray(f) for f in resize_faces(faces, 150)]
        return np.asarray([np.asarray(d) for d in self.model.compute_face_descriptor(chips)], dtype=np.float32)


def throughput(n_faces: int, repeats: int) -> list[dict]:
    from pathlib import Path

    from fraudit.faces.synthetic import unlabelled_faces
    from fraudit.errors import EmbedderUnavailableError
    from fraudit.formats.dlib_dnn import read_dlib_dnn
    from fraudit.pairing.embedders import DlibEmbedder, dlib_model_path, reference_embedder

    faces = unlabelled_faces(seed=77, n=n_faces)
    base = Path(__file__).resolve().parents[1] / "reference_models" / "examples" / "clean.safetensors"
    models = [reference_embedder(base)]
    try:
        models.append(DlibEmbedder())
        path = dlib_model_path()
        parse_s = _median_seconds(lambda: read_dlib_dnn(path), repeats)
        models.append(_DlibItself(path))
    except (EmbedderUnavailableError, ImportError) as exc:
        print(f"dlib skipped: {exc}")
    rows = []
    dlib_sample = faces[: max(32, n_faces // 8)]
    for model in models:
        sample = faces if model.architecture != "dlib-resnet-v1" else dlib_sample
        seconds = _median_seconds(lambda: model.embed(sample), repeats)
        rows.append({"embedder": model.name, "faces": len(sample), "faces_per_s_median": round(len(sample) / seconds, 1)})
    if len(models) == 3:
        ours, dlibs = (model.embed(dlib_sample) for model in models[1:])
        rows.append({"dlib_file_parse_s_median": round(parse_s, 4),
                     "fraudit_vs_dlib_max_abs_difference": float(np.abs(ours - dlibs).max()),
                     "dlib_descriptor_norm_median": float(np.median(np.linalg.norm(dlibs, axis=1)))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--faces", type=int, default=512)
    args = parser.parse_args()
    import torch

    print(json.dumps({"torch_threads": torch.get_num_threads(),
                      "translators": translators(args.pairs, args.repeats),
                      "throughput": throughput(args.faces, args.repeats)}, indent=2))


if __name__ == "__main__":
    main()
