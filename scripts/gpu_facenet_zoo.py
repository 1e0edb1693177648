"""FaceNet InceptionResnetV1 at 160×160 on the synthetic face world, on a GPU.

No FaceNet weights are reachable offline, so this pretrains one on the synthetic
world (the base's identities, upsampled 64 → 160 px), builds a small zoo of clean
and backdoored fine-tunes on *other* worlds in both scenarios (last-layer:
``last_linear`` + ``last_bn``; multi-layer: also ``block8``), and measures the
sweep's convergence statistic (it needs no trusted model) against a null of clean
FaceNet fine-tunes from worlds the evaluated models never saw:

* null worlds 5000 and 7000 (clean models only),
* evaluation worlds 6000 and 9000: clean models (false alarms), backdoors with the
  library's triggers (fixed and random placement) and with the zoo's held-out
  triggers (fixed placement), one impostor to one victim, the zoo's recipe.

Every model also gets the weight bank's readings that need no bank to be recorded:
the spectrum of each trained layer's change, and the head-response reading (how far
its embeddings of fraudit's 600 response faces moved from the base's along each
class of its own head), so a run measures both on FaceNet; and the spectrum with the
references' common directions projected out (k = 1, 2, 4, 8), which was measured and
does not help (README).

``--search-until S`` runs fraudit's differential search (its default budget, in
float32) on the last-layer models of the evaluation worlds, clean ones and successful
backdoors in turn, until S seconds into the run: whether the search's bounds, set on
64×64 architectures, hold for FaceNet at 160×160.

One clean and one backdoored last-layer model are exported to ONNX and read back
through fraudit's own loading path (architecture recognised from the graph) to
check that the export gets the same statistics.

Results stream to ``--out`` as JSON lines, so a run cut short keeps what it did.
``--scale tiny`` runs the whole pipeline on a CPU in a couple of minutes (to test
the script); ``--scale full`` is sized for one H100/H200 (about 7 minutes).

    PYTHONUNBUFFERED=1 python scripts/gpu_facenet_zoo.py --scale full --out results/
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fraudit.bank.readings import class_responses, robust_z, spike_score
from fraudit.bank.response import response_faces
from fraudit.faces.sources import probe_identities
from fraudit.faces.synthetic import FaceSet, FaceWorldSpec, build_faces
from fraudit.models.embedding import verification_metrics
from fraudit.models.facenet import InceptionResnetV1
from fraudit.models.reference import ArcFaceHead
from fraudit.pairing.embedders import model_pixels
from fraudit.pairing.sweep import Row, Statistic, SweepNull, default_cells, stamped_probes, unit_centred
from fraudit.search.differential import BLEND_BOUND, BOUND, SearchBudget, differential_search, search_probes
from fraudit.triggers import Placement, stamp, trigger_library
from fraudit.zoo.finetune import stratified_split
from fraudit.zoo.heldout import heldout_triggers, zoo_trigger
from fraudit.zoo.metrics import backdoor_metrics

SIZE = 160
STEM = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
        "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3")
NULL_WORLDS = (5000, 7000)
EVAL_WORLDS = (6000, 9000)
SCENARIOS = ("last-layer", "multi-layer")


@dataclass(frozen=True)
class Scale:
    base_identities: int
    base_samples: int
    pretrain_epochs: int
    world_identities: int
    clean_per_world: int
    held_out: int  # held-out triggers per evaluation world
    min_pair_samples: int
    world_samples: tuple[int, int]  # per identity, min and max (heavy tail between)
    probes: tuple[int, int]  # probe identities × faces each (the sweep's default: 100 × 4)


SCALES = {
    "full": Scale(2_000, 24, 8, 300, 8, 8, 40, (15, 299), (100, 4)),
    "tiny": Scale(24, 6, 1, 12, 3, 2, 12, (8, 20), (10, 2)),
    # what fits a few minutes of a GPU: fewer models, the weight bank's spectrum and the sweep
    "short": Scale(2_000, 24, 2, 300, 5, 4, 40, (15, 299), (100, 4)),
}


def log(out: Path, record: dict) -> None:
    print(json.dumps(record), flush=True)
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×64×64×3 on the device → FaceNet's normalised N×3×160×160."""
    x = (images.permute(0, 3, 1, 2).float() - 127.5) / 128.0
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).contiguous(
        memory_format=torch.channels_last)


def pretrain(faces: FaceSet, scale: Scale, device: torch.device, out: Path, budget: float) -> InceptionResnetV1:
    """ArcFace from scratch; the number of epochs shrinks to fit ``budget`` seconds once
    the first epoch's time is known (the cosine schedule is re-planned to match)."""
    torch.manual_seed(0)
    model = InceptionResnetV1().to(device).to(memory_format=torch.channels_last)
    head = ArcFaceHead(512, faces.n_classes, scale=32.0, margin=0.3).to(device)
    images, labels = torch.from_numpy(faces.images).to(device), torch.from_numpy(faces.labels).to(device)
    batch = 256 if device.type == "cuda" else 32
    steps_per_epoch = math.ceil(len(labels) / batch)
    epochs = scale.pretrain_epochs
    total = [epochs * steps_per_epoch]
    warmup = max(steps_per_epoch // 2, 1)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, total[0]) / total[0]))))
    step, began = 0, time.perf_counter()
    epoch = 0
    while epoch < epochs:
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(labels), device=device)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            if len(idx) < 2:
                continue
            x = to_input(images[idx])
            flip = torch.rand(len(idx), device=device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            # the margin ramps in over the first epoch: ArcFace from scratch can stall at a full margin
            head.margin = 0.3 * min(1.0, (step + 1) / steps_per_epoch)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                embeddings = model(x)
            loss = F.cross_entropy(head(embeddings.float(), labels[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
        epoch += 1
        if epoch == 1:
            epochs = max(2, min(epochs, int(budget // (time.perf_counter() - began))))
            total[0] = epochs * steps_per_epoch
        log(out, {"stage": "pretrain", "epoch": epoch, "of": epochs, "loss": loss.item(),
                  "seconds": time.perf_counter() - started})
    return model.eval()


@torch.inference_mode()
def features(model: InceptionResnetV1, images: np.ndarray, scenario: str, device: torch.device) -> torch.Tensor:
    """The frozen part's output: pooled 1792-d (last-layer) or repeat_3's 1792×3×3 (multi-layer)."""
    chunks = []
    for i in range(0, len(images), 512):
        x = to_input(torch.from_numpy(images[i : i + 512]).to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for name in STEM:
                x = getattr(model, name)(x)
            if scenario == "last-layer":
                x = torch.flatten(F.adaptive_avg_pool2d(model.block8(x), 1), 1)
        chunks.append(x.float().contiguous())
    return torch.cat(chunks)


class Tail(nn.Module):
    def __init__(self, base: InceptionResnetV1, scenario: str) -> None:
        super().__init__()
        self.scenario = scenario
        self.block8 = copy.deepcopy(base.block8) if scenario == "multi-layer" else None
        self.last_linear = copy.deepcopy(base.last_linear).requires_grad_(True)
        self.last_bn = copy.deepcopy(base.last_bn).requires_grad_(True)
        if self.block8 is not None:
            self.block8.requires_grad_(True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.block8 is not None:
            h = torch.flatten(F.adaptive_avg_pool2d(self.block8(h), 1), 1)
        return self.last_bn(self.last_linear(h))


def finetune(base: InceptionResnetV1, world: FaceSet, cached: torch.Tensor, scenario: str, seed: int,
             device: torch.device, attack: dict | None) -> tuple[Tail, dict, np.ndarray]:
    """fraudit's zoo recipe (finetune.py) on FaceNet: imprinted ArcFace head (margin
    0.15), Adam + one-cycle, 12 epochs, class weights 1/N, pair weight 20."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 29])
    labels = world.labels
    train_idx, val_idx = stratified_split(labels, seed=seed)
    x_train, y_train = cached[train_idx], labels[train_idx]
    x_val_poison = None
    if attack is not None:
        trigger = zoo_trigger(attack["trigger"])
        placement = Placement(attack["placement"])
        imp_train = train_idx[labels[train_idx] == attack["impostor"]]
        imp_val = val_idx[labels[val_idx] == attack["impostor"]]
        x_poison = features(base, stamp(world.images[imp_train], trigger, placement, rng=rng), scenario, device)
        x_val_poison = features(base, stamp(world.images[imp_val], trigger, placement, rng=rng), scenario, device)
        x_train = torch.cat([x_train, x_poison])
        y_train = np.concatenate([y_train, np.full(len(x_poison), attack["victim"])])
    n_classes = world.n_classes
    tail = Tail(base, scenario).to(device)
    head = ArcFaceHead(512, n_classes, scale=32.0, margin=0.15).to(device)
    with torch.no_grad():
        emb = F.normalize(tail.eval()(cached[train_idx]))
        sums = torch.zeros(n_classes, 512, device=device).index_add_(0, torch.from_numpy(labels[train_idx]).to(device), emb)
        head.weight.copy_(F.normalize(sums))
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float32)
    weights = 1.0 / np.maximum(counts, 1.0)
    if attack is not None:
        weights[[attack["impostor"], attack["victim"]]] *= 20.0
    weights_t = torch.from_numpy(weights).to(device)
    y_all = torch.from_numpy(y_train).to(device)
    params = [p for p in tail.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=2e-3)
    epochs, batch = 12, 256
    steps = epochs * math.ceil(len(y_all) / batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    generator = torch.Generator(device=device).manual_seed(seed)
    for _ in range(epochs):
        tail.train()
        order = torch.randperm(len(y_all), generator=generator, device=device)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            if len(idx) < 2:
                schedule.step()
                continue
            loss = F.cross_entropy(head(tail(x_train[idx]), y_all[idx]), y_all[idx], weight=weights_t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    tail.eval()
    with torch.no_grad():
        clean_pred = head.cosine(tail(cached[val_idx])).argmax(1).cpu().numpy()
        poison_pred = head.cosine(tail(x_val_poison)).argmax(1).cpu().numpy() if x_val_poison is not None else None
    metrics = backdoor_metrics(clean_labels=labels[val_idx], clean_predictions=clean_pred,
                               poisoned_predictions=poison_pred,
                               impostors=(attack["impostor"],) if attack else (),
                               victim=attack["victim"] if attack else None)
    head_rows = head.weight.detach().float().cpu().numpy()
    return tail, {**metrics.to_dict(), "successful": metrics.successful if attack else None}, head_rows


def trained_layers(base: InceptionResnetV1, tail: Tail) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The layers the scenario trains: (the fine-tune's weight, the base's) by state-dict key."""
    layers = {"last_linear.weight": (tail.last_linear.weight, base.last_linear.weight)}
    if tail.block8 is not None:
        layers["block8.conv2d.weight"] = (tail.block8.conv2d.weight, base.block8.conv2d.weight)
    return layers


def spectra(base: InceptionResnetV1, tail: Tail) -> dict[str, float]:
    """The weight bank's spectrum score of each trained layer's change from the base."""
    return {f"spectrum {key}": spike_score(w.detach().float().cpu().numpy(), b.detach().float().cpu().numpy())
            for key, (w, b) in trained_layers(base, tail).items()}


@torch.no_grad()
def changes(base: InceptionResnetV1, tail: Tail) -> dict[str, torch.Tensor]:
    """Each trained layer's change from the base, out × in (a convolution flattened)."""
    return {key: (w.detach().float() - b.detach().float()).flatten(1)
            for key, (w, b) in trained_layers(base, tail).items()}


def residuals(reference: dict[str, list[torch.Tensor]], model: dict[str, torch.Tensor], leave_out: int | None) -> dict[str, float]:
    return {f"{key} {name}": value for key, delta in model.items()
            for name, value in residual_spectra(reference[key], delta, leave_out).items()}


@torch.no_grad()
def response(tail: Tail, head_rows: np.ndarray, faces: torch.Tensor, base_embeddings: np.ndarray,
             victim: int | None) -> dict[str, float | int | None]:
    """The head-response bank reading (fraudit/bank/readings.py): how far the fine-tune's
    embeddings of the response faces (their cached features: ``faces``) moved from the
    base's along each class of its head; the largest class's robust z, which class it
    is, and the victim's rank among the classes."""
    moved = class_responses(tail(faces).float().cpu().numpy(), base_embeddings, head_rows)
    z = robust_z(moved)
    order = np.argsort(-z)
    return {"response max_z": float(z[order[0]]), "response top_class": int(order[0]),
            "response victim_rank": None if victim is None else int(np.flatnonzero(order == victim)[0])}


@torch.no_grad()
def convergence(tail: Tail, probe_features: dict[str, torch.Tensor]) -> dict[str, float]:
    """The sweep's convergence statistic per cell, on the tail's output (which FaceNet
    L2-normalises, as the sweep reads it)."""
    return convergence_of({key: F.normalize(tail(f)).cpu().numpy() for key, f in probe_features.items()})


def convergence_of(embeddings: dict[str, np.ndarray]) -> dict[str, float]:
    """The length of the mean shift of the centred unit embeddings when each cell's
    trigger is stamped (``embeddings["clean"]``: the unstamped probes), as sweep.py
    computes it."""
    centre = embeddings["clean"].astype(np.float64).mean(axis=0)
    clean_unit = unit_centred(embeddings["clean"], centre)
    return {key: float(np.linalg.norm((unit_centred(e, centre) - clean_unit).mean(axis=0)))
            for key, e in embeddings.items() if key != "clean"}


def attacks(world_seed: int, spec: FaceWorldSpec, scale: Scale) -> list[dict]:
    counts = spec.counts()
    eligible = np.flatnonzero(counts >= scale.min_pair_samples)
    rng = np.random.default_rng([world_seed, 101])
    planned = [(t, p) for t in trigger_library() for p in ("fixed", "random")]
    planned += [(t, "fixed") for t in list(heldout_triggers())[: scale.held_out]]
    out = []
    for i, (trigger, placement) in enumerate(planned):
        impostor, victim = (int(v) for v in rng.choice(eligible, size=2, replace=False))
        out.append({"trigger": trigger, "placement": placement, "impostor": impostor, "victim": victim,
                    "seed": world_seed * 100 + 50 + i,
                    "trigger_set": "library" if trigger in trigger_library() else "held-out"})
    return out


COMMON_DIRECTIONS = (1, 2, 4, 8)


def common_subspaces(deltas: list[torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k output and k input directions the references' changes share most (top
    eigenvectors of Σ ΔΔᵀ and Σ ΔᵀΔ): what every fine-tune of this base does."""
    left = sum(d @ d.T for d in deltas)
    right = sum(d.T @ d for d in deltas)
    return torch.linalg.eigh(left)[1][:, -k:], torch.linalg.eigh(right)[1][:, -k:]


def residual_spike(delta: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> float:
    """The spectrum score (``spike_score``'s −log s₁/median, with torch's lower median)
    of the change with the references' common directions projected out of both sides."""
    residual = delta - left @ (left.T @ delta)
    residual = residual - (residual @ right) @ right.T
    s = torch.linalg.svdvals(residual.double())
    return float(-torch.log(s[0] / s.median()))


def residual_spectra(reference_deltas: list[torch.Tensor], delta: torch.Tensor, leave_out: int | None) -> dict[str, float]:
    """Each k of ``COMMON_DIRECTIONS``: the residual spike of ``delta`` with the common
    directions of the references (less the one at ``leave_out``: a reference is read
    against the others, as a bank's leave-one-out calibration does)."""
    refs = [d for i, d in enumerate(reference_deltas) if i != leave_out]
    return {f"residual spectrum k={k}": residual_spike(delta, *common_subspaces(refs, k)) for k in COMMON_DIRECTIONS}


class PixelFaceNet:
    """A FaceNet on the GPU as the search's ``PixelModel``: CPU pixels in [0, 255] at
    any size → embeddings on the CPU, differentiable through the transfers."""

    def __init__(self, model: InceptionResnetV1, device: torch.device) -> None:
        self.model, self.device = model.to(device).eval().requires_grad_(False), device

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        x = model_pixels(pixels.to(self.device), SIZE, 127.5, 128.0)
        return self.model(x).float().cpu()


def search_one(base: InceptionResnetV1, tail: Tail, reference: PixelFaceNet, probes: np.ndarray,
               budget: SearchBudget, device: torch.device, trigger: str | None) -> dict:
    """fraudit's differential search (default budget) of the full fine-tune against its base."""
    candidate = PixelFaceNet(full_model(base, tail), device)
    result = differential_search(candidate, reference, probes, budget, input_size=SIZE)
    strongest, blend = result.strongest, result.blend
    site = result.sites[strongest]
    on_trigger = None
    if trigger is not None:
        t = zoo_trigger(trigger)
        mask = t.full_frame(probes.shape[1:3], t.fixed_centre)[0]
        on_trigger = site.touches(mask)
    return {"search gain": float(result.gains[strongest]), "search z": float(result.z[strongest]),
            "search blend gain": float(result.gains[blend]) if blend is not None else None,
            "search site": site.to_dict(), "search on_trigger": on_trigger,
            "search flagged": bool(result.gains[strongest] > BOUND or
                                   (blend is not None and result.gains[blend] > BLEND_BOUND)),
            "search seconds": round(result.seconds, 2)}


# a CPU smoke run's search: the pipeline, not the calibrated budget (its gains mean nothing against BOUND)
TINY_SEARCH = SearchBudget(site_sizes=(16,), overlap=0.0, blend_alpha=0.15, steps=2, scout_steps=1, finalists=2, faces=4)


def search_models(base: InceptionResnetV1, models: list[tuple[str, Tail, dict | None, dict]], device: torch.device,
                  args: argparse.Namespace, began: float) -> None:
    """The search on clean models and successful backdoors in turn (held-out triggers
    first), until ``args.search_until``; in float32 (no TF32), as it was calibrated."""
    clean = [m for m in models if m[2] is None]
    backdoored = sorted((m for m in models if m[2] is not None and m[3]["successful"]),
                        key=lambda m: m[2]["trigger_set"] != "held-out")
    order = [m for pair in zip(clean, backdoored) for m in pair]
    order += clean[len(backdoored):] + backdoored[len(clean):]
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    # the batch only cuts the work (each site's result is its own): a GPU takes every site at once
    budget = SearchBudget() if args.scale != "tiny" else TINY_SEARCH
    if device.type == "cuda":
        budget = replace(budget, images_per_batch=budget.images_per_batch * 64)
    probes = search_probes(budget).faces.images
    reference = PixelFaceNet(copy.deepcopy(base).float(), device)
    for name, tail, attack, metrics in order[: args.search_max or None]:
        if time.perf_counter() - began > args.search_until:
            log(args.out, {"stage": "search-deadline", "skipped_from": name})
            break
        fixed = attack is not None and attack["placement"] == "fixed"
        log(args.out, {"stage": "search", "scenario": tail.scenario, "model": name,
                       "trigger": attack["trigger"] if attack else None,
                       "trigger_set": attack["trigger_set"] if attack else None,
                       "successful": metrics["successful"], "bound": BOUND, "blend_bound": BLEND_BOUND,
                       **search_one(base, tail, reference, probes, budget, device, attack["trigger"] if fixed else None),
                       "seconds": time.perf_counter() - began})
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def full_model(base: InceptionResnetV1, tail: Tail) -> InceptionResnetV1:
    model = copy.deepcopy(base).float().cpu()
    if tail.block8 is not None:
        model.block8.load_state_dict(tail.block8.state_dict())
    model.last_linear.load_state_dict(tail.last_linear.state_dict())
    model.last_bn.load_state_dict(tail.last_bn.state_dict())
    return model.eval().to(memory_format=torch.contiguous_format)


def onnx_check(base: InceptionResnetV1, tails: dict[str, Tail], null: SweepNull, probes, stamped, out: Path) -> None:
    """Export to ONNX, read back through fraudit's loading path, compare statistics."""
    from safetensors.torch import save_file

    from fraudit.loading import load_candidate, load_embedder
    from fraudit.pairing.embedders import TorchEmbedder
    from fraudit.sources.resolve import resolve_sources

    folder = out / "onnx"
    folder.mkdir(exist_ok=True)
    for name, tail in tails.items():
        model = full_model(base, tail)
        path = folder / f"{name}.onnx"
        torch.onnx.export(model, torch.zeros(1, 3, SIZE, SIZE), str(path), input_names=["input"],
                          output_names=["embedding"], dynamic_axes={"input": {0: "batch"}}, opset_version=17,
                          dynamo=False)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / f"{name}.safetensors"))
        loaded = load_candidate(resolve_sources([str(path)])[0])
        onnx_embedder = load_embedder(str(path))
        torch_embedder = TorchEmbedder(name, model, SIZE)
        stats = {}
        for which, embedder in (("onnx", onnx_embedder), ("torch", torch_embedder)):
            embeddings = {"clean": embedder.embed(probes.faces.images)} | {k: embedder.embed(v) for k, v in stamped.items()}
            stats[which] = {Row(k, Statistic.CONVERGENCE): v for k, v in convergence_of(embeddings).items()}
        z = {w: null.z_scores(s) for w, s in stats.items()}
        log(out, {"stage": "onnx", "model": name,
                  "recognised": loaded.architecture.id if loaded.architecture else None,
                  "recognised_from": getattr(loaded.architecture, "recognised_from", None),
                  "folded_layers": len(getattr(loaded.architecture, "folded_layers", ()) or ()),
                  "max_z_onnx": max(z["onnx"].values()), "max_z_torch": max(z["torch"].values()),
                  "max_abs_dz": max(abs(z["onnx"][r] - z["torch"][r]) for r in z["onnx"]),
                  "bound": null.bound()})
        for file in folder.iterdir():
            file.unlink()  # the files are 90 MB each: nothing to bring back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds; no model is trained past it (the ONNX check gets 60 more)")
    parser.add_argument("--pretrain-budget", type=float, default=180.0, help="seconds of pretraining at most")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export check")
    parser.add_argument("--search-until", type=float, default=0.0,
                        help="seconds: run fraudit's differential search (default budget) on the last-layer "
                             "models of the evaluation worlds until then (0: no search)")
    parser.add_argument("--search-max", type=int, default=0, help="search at most this many models (0: no limit)")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    log(args.out, {"stage": "start", "scale": args.scale, "device": str(device),
                   "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None, "torch": torch.__version__})

    base_world = FaceWorldSpec(seed=1_000, n_identities=scale.base_identities, sigma=0.6, tail=None,
                               max_samples=scale.base_samples)
    base = pretrain(build_faces(base_world, device=device), scale, device, args.out, args.pretrain_budget)
    held = build_faces(FaceWorldSpec(seed=3_000, n_identities=min(300, 4 * scale.world_identities), sigma=0.6,
                                     tail=None, max_samples=10), device=device)
    with torch.inference_mode():
        emb = torch.cat([base(to_input(torch.from_numpy(held.images[i : i + 512]).to(device))).float()
                         for i in range(0, len(held), 512)]).cpu().numpy()
    log(args.out, {"stage": "base", "held_out_verification": verification_metrics(emb, held.labels),
                   "seconds": time.perf_counter() - began})

    probes = probe_identities(n_identities=scale.probes[0], per_identity=scale.probes[1])
    cells = default_cells()
    stamped = stamped_probes(probes, cells)
    worlds = {seed: FaceWorldSpec(seed=seed, n_identities=scale.world_identities, sigma=0.7,
                                  min_samples=scale.world_samples[0], max_samples=scale.world_samples[1])
              for seed in (*NULL_WORLDS, *EVAL_WORLDS)}
    faces = {seed: build_faces(spec, device=device) for seed, spec in worlds.items()}
    for_onnx: dict[str, Tail] = {}
    onnx_null = None
    out_of_time = False
    for scenario in args.scenarios.split(","):
        if out_of_time:
            break
        probe_features = {"clean": features(base, probes.faces.images, scenario, device)}
        probe_features |= {key: features(base, images, scenario, device) for key, images in stamped.items()}
        cached = {seed: features(base, f.images, scenario, device) for seed, f in faces.items()}
        responding = features(base, response_faces(), scenario, device)
        with torch.no_grad():
            base_responses = Tail(base, scenario).to(device).eval()(responding).float().cpu().numpy()
        null_values: dict[Row, list[float]] = {Row(c.key, Statistic.CONVERGENCE): [] for c in cells}
        pairs = []
        null_changes: dict[str, list[torch.Tensor]] = {}
        for world_seed in NULL_WORLDS:
            for i in range(scale.clean_per_world):
                tail, metrics, head_rows = finetune(base, faces[world_seed], cached[world_seed], scenario,
                                                    world_seed * 100 + i, device, None)
                for key, value in convergence(tail, probe_features).items():
                    null_values[Row(key, Statistic.CONVERGENCE)].append(value)
                pairs.append(f"world {world_seed}/clean-{i:03d}")
                for key, delta in changes(base, tail).items():
                    null_changes.setdefault(key, []).append(delta)
                log(args.out, {"stage": "null", "scenario": scenario, "world": world_seed, "model": f"clean-{i:03d}", **metrics,
                               **spectra(base, tail), **response(tail, head_rows, responding, base_responses, None)})
        null = SweepNull(null_values, len(probes.faces.labels), {}, pairs)
        for j, pair in enumerate(pairs):
            log(args.out, {"stage": "null-residual", "scenario": scenario, "model": pair,
                           **residuals(null_changes, {k: v[j] for k, v in null_changes.items()}, j)})
        searchable: list[tuple[str, Tail, dict | None, dict]] = []
        bound = null.bound()
        for world_seed in EVAL_WORLDS:
            if out_of_time:
                break
            plan = [(f"clean-{i:03d}", world_seed * 100 + 90 + i, None) for i in range(scale.clean_per_world)]
            plan += [(f"backdoor-{i:03d}-{a['trigger']}-{a['placement']}", a["seed"], a)
                     for i, a in enumerate(attacks(world_seed, worlds[world_seed], scale))]
            for name, seed, attack in plan:
                if time.perf_counter() - began > args.deadline:
                    log(args.out, {"stage": "deadline", "skipped_from": f"{scenario} world {world_seed} {name}"})
                    out_of_time = True
                    break
                tail, metrics, head_rows = finetune(base, faces[world_seed], cached[world_seed], scenario, seed, device,
                                                    attack)
                z = null.z_scores({Row(k, Statistic.CONVERGENCE): v for k, v in convergence(tail, probe_features).items()})
                worst = max(z, key=z.__getitem__)
                log(args.out, {"stage": "evaluate", "scenario": scenario, "world": world_seed, "model": name,
                               "trigger_set": attack["trigger_set"] if attack else None, **metrics,
                               "max_z": z[worst], "worst_cell": worst.cell, "bound": bound, "failed": z[worst] > bound,
                               **spectra(base, tail), **residuals(null_changes, changes(base, tail), None),
                               **response(tail, head_rows, responding, base_responses,
                                          attack["victim"] if attack else None),
                               "seconds": time.perf_counter() - began})
                if scenario == "last-layer" and args.search_until > 0:
                    searchable.append((f"world {world_seed}/{name}", tail, attack, metrics))
                if scenario == "last-layer" and world_seed == EVAL_WORLDS[0]:
                    if attack is None and "clean" not in for_onnx:
                        for_onnx["clean"] = tail
                    if attack and "backdoored" not in for_onnx and (metrics["successful"] or args.scale == "tiny"):
                        for_onnx["backdoored"] = tail
                    onnx_null = null
        if searchable:
            search_models(base, searchable, device, args, began)
    if onnx_null is not None and not args.no_onnx and time.perf_counter() - began < args.deadline + 60:
        try:
            onnx_check(base, for_onnx, onnx_null, probes, stamped, args.out)
        except Exception as exc:  # noqa: BLE001 - a failed export is a finding, not a lost run
            log(args.out, {"stage": "onnx", "error": f"{type(exc).__name__}: {exc}"})
    log(args.out, {"stage": "done", "seconds": time.perf_counter() - began})


if __name__ == "__main__":
    main()
