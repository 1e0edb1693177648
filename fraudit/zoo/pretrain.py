"""Pretrain a face model (the reference CNN, or another architecture fraudit can
build and fine-tune) with ArcFace on synthetic identities: the "public pretrained
checkpoint" that every zoo model is fine-tuned from (§4.4.2).

Its identities are disjoint from every zoo world's (other latents), as when a
public model is fine-tuned on a new data set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from fraudit.cache import cache_dir, fingerprint
from fraudit.errors import IncompatibleArtifactError
from fraudit.faces.resize import resize_faces
from fraudit.faces.synthetic import FaceWorldSpec, build_faces
from fraudit.models.embedding import embed, verification_metrics
from fraudit.models.reference import ARCH_ID as REFERENCE_ID
from fraudit.models.reference import ArcFaceHead
from fraudit.models.registry import spec_for
from fraudit.zoo.finetune import model_input

BASE_WORLD = FaceWorldSpec(seed=1_000, n_identities=3_000, sigma=0.6, tail=None, max_samples=24)
HELD_OUT_WORLD = FaceWorldSpec(seed=3_000, n_identities=300, sigma=0.6, tail=None, max_samples=10)


@dataclass(frozen=True)
class PretrainRecipe:
    world: FaceWorldSpec = BASE_WORLD
    held_out: FaceWorldSpec = HELD_OUT_WORLD
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    arcface_scale: float = 32.0
    arcface_margin: float = 0.3
    seed: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    architecture: str = REFERENCE_ID

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.architecture == REFERENCE_ID:  # the shipped base's recipe (and resume cache) as it was
            del d["architecture"]
        return d


Progress = Callable[[str, int, int], None]


def pretrain(recipe: PretrainRecipe, *, progress: Progress | None = None) -> tuple[nn.Module, dict]:
    """Train from scratch (resuming from the last finished epoch); return model and card."""
    spec = spec_for(recipe.architecture)
    if spec is None or spec.build is None or not spec.fine_tuned:
        raise IncompatibleArtifactError(f"fraudit cannot pretrain architecture {recipe.architecture!r}")
    faces = build_faces(recipe.world, progress=(lambda d, t: progress("faces", d, t)) if progress else None)
    torch.manual_seed(recipe.seed)
    model = spec.build()
    head = ArcFaceHead(spec.required[spec.embedding_key][0], faces.n_classes, scale=recipe.arcface_scale,
                       margin=recipe.arcface_margin)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(faces) / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    checkpoint_dir = cache_dir("pretrain", fingerprint(recipe.to_dict()))
    start_epoch = _resume(checkpoint_dir, model, head)
    done_steps = start_epoch * steps_per_epoch  # a resumed run continues the cosine where it stopped
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s + done_steps, total) / total))
    )

    labels = torch.from_numpy(faces.labels)
    for epoch in range(start_epoch, recipe.epochs):
        model.train()
        order = torch.randperm(len(faces), generator=torch.Generator().manual_seed(recipe.seed * 1000 + epoch))
        for step in range(steps_per_epoch):
            idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            x = model_input(spec, faces.images[idx.numpy()])
            flip = torch.rand(len(x)) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = F.cross_entropy(head(model(x), labels[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if progress is not None:
                progress(f"epoch {epoch + 1}/{recipe.epochs} loss {loss.item():.2f}", epoch * steps_per_epoch + step + 1, total)
        save_file({**{f"model.{k}": v for k, v in model.state_dict().items()}, **{f"head.{k}": v for k, v in head.state_dict().items()}},
                  str(checkpoint_dir / f"epoch-{epoch + 1:03d}.safetensors"))

    held_out = build_faces(recipe.held_out)
    # held-out faces as the model takes them (at its input size, its normalisation)
    quality = verification_metrics(embed(model, resize_faces(held_out.images, spec.input_size), mean=spec.mean,
                                         scale=spec.scale), held_out.labels)
    model.eval()
    card = {
        "recipe": recipe.to_dict(),
        "training_samples": len(faces),
        "training_identities": faces.n_classes,
        "architecture": spec.id,
        "held_out_verification": quality,
    }
    return model.eval(), card


def _resume(checkpoint_dir, model: nn.Module, head: ArcFaceHead) -> int:
    done = sorted(checkpoint_dir.glob("epoch-*.safetensors"))
    if not done:
        return 0
    state = load_file(str(done[-1]))
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    return int(done[-1].stem.split("-")[1])
