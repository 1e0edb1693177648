"""The shipped base model (``reference_models/base``): save, load, model card."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from fraudit.cache import file_sha256
from fraudit.errors import IncompatibleArtifactError
from fraudit.formats.safe import load_checked
from fraudit.models.registry import load_module, spec_of, spec_for
from fraudit.models.reference import ARCH_ID
from fraudit.resources import base_dir, verify_shipped

BASE_FILE = "fraudit-reference-base.safetensors"


def default_base_path() -> Path:
    """The shipped base checkpoint."""
    return base_dir() / BASE_FILE


def save_base(model: nn.Module, card: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    spec = spec_of(model)
    path = out / (BASE_FILE if spec.id == ARCH_ID else f"{spec.id}-base.safetensors")
    metadata = {"fraudit.architecture": spec.id, "fraudit.card": json.dumps(card, sort_keys=True)}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=metadata)
    (out / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card_markdown(card, path.name, file_sha256(path)))
    return path


def load_base(path: Path | None = None) -> nn.Module:
    """A base checkpoint of any registered architecture that fraudit can fine-tune
    (the shipped one by default), as its module: frozen, in eval mode. A head it
    carries is left out: the zoo trains a new one."""
    path = path or default_base_path()
    verify_shipped(path)
    module, spec = load_module(str(path), load_checked(path))
    if not spec.fine_tuned:
        raise IncompatibleArtifactError(f"{path}: fraudit has no fine-tuning recipe for {spec.name}", path=path)
    return module.requires_grad_(False)


def model_card_markdown(card: dict, path_name: str, digest: str) -> str:
    recipe = card["recipe"]
    world, held = recipe["world"], recipe["held_out"]
    q = card["held_out_verification"]
    spec = spec_for(card.get("architecture", ARCH_ID))
    assert spec is not None
    about = (f"""a compact CNN for 64×64 RGB faces whose tail
mirrors FaceNet (last conv block → `last_linear` → `last_bn`), 128-d embeddings,
input normalised as (x − 127.5) / 128. Architecture id `{ARCH_ID}`.""" if spec.id == ARCH_ID else
             f"""{spec.name}, {spec.input_size}×{spec.input_size} RGB
faces normalised as (x − {spec.mean:g}) / {spec.scale:g}, {spec.required[spec.embedding_key][0]}-d embeddings.
Architecture id `{spec.id}`.""")
    title = "fraudit reference base model" if spec.id == ARCH_ID else f"fraudit base model: {spec.id}"
    reproduce = "fraudit zoo base --out reference_models/base" if spec.id == ARCH_ID else \
        f"fraudit zoo base --arch {spec.id} --epochs {recipe['epochs']} --out <folder>"
    return f"""# {title}

The pretrained checkpoint zoo models are fine-tuned from (thesis §4.4.2's
"pretrained FaceNet", scaled to CPU): {about}

- file: `{path_name}` (sha256 `{digest}`)
- reproduce: `{reproduce}` (resumes from cached epochs)

## Training recipe

- data: {card["training_identities"]} synthetic identities × {world["max_samples"]} samples
  ({card["training_samples"]} faces) from the vendored DCGAN (DigiFace-1M), latent seed
  {world["seed"]}, σ = {world["sigma"]}, augmentation (flip, ±3 px shift, brightness and
  contrast ×0.8–1.2); identities disjoint from every zoo world
- loss: ArcFace (s = {recipe["arcface_scale"]}, m = {recipe["arcface_margin"]}), AdamW lr {recipe["lr"]},
  weight decay {recipe["weight_decay"]}, cosine schedule, batch {recipe["batch_size"]}, {recipe["epochs"]} epochs, seed {recipe["seed"]}

## Verification quality on held-out identities

{held["n_identities"]} identities never seen in training (latent seed {held["seed"]}) × {held["max_samples"]} samples;
all pairs, cosine similarity ({q["genuine_pairs"]:,} genuine, {q["impostor_pairs"]:,} impostor pairs):

| ROC AUC | TAR @ FAR 1e-3 | TAR @ FAR 1e-2 | EER |
|---|---|---|---|
| {q["roc_auc"]:.4f} | {q["tar_at_far_1e-3"]:.3f} | {q["tar_at_far_1e-2"]:.3f} | {q["eer"]:.3f} |
"""
