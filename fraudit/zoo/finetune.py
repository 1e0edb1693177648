"""Fine-tune clean and backdoored models from a base, on cached frozen features.

Two scenarios, as in thesis chapter 4, for any architecture that declares what
each trains (``ArchitectureSpec.fine_tuned``); for fraudit's reference CNN:

* ``last-layer``: ``last_linear`` + ``last_bn`` + ArcFace head; the backbone and
  the last conv block are frozen, so their output is computed once per zoo.
* ``multi-layer``: also the last conv block (``block_last``); its input (the
  output of ``layer3``, 256×4×4) is cached instead.

FaceNet trains ``block8`` in the multi-layer scenario, iresnet its last residual
block. The architecture lists its forward pass as named stages; everything before
the first trained stage is frozen and cached.

Clean models differ by seed and by a stratified 70/30 split resampled per run
(§4.4.1). A backdoored model adds poisoned samples (eq. 2.1): the impostor's
samples, stamped with the trigger and relabelled to the victim, in the training and
the validation split alike; class weights w_i = 1/N_i count them. Beyond the
thesis' one-to-one recipe, two more an attacker would use:

* **many-to-one**: several impostors (``extra_impostors``) all mapped to one victim;
* **implant**: the backdoor added to an already trained clean model by a short
  fine-tune from its weights (``implant_from``), with an L2 pull toward them
  (``proximity``) so the weights stay close to a clean model's.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fraudit.errors import IncompatibleArtifactError
from fraudit.faces.resize import resize_faces
from fraudit.faces.synthetic import FaceSet
from fraudit.models.embedding import to_input
from fraudit.models.reference import ArcFaceHead
from fraudit.models.registry import spec_of
from fraudit.models.spec import ArchitectureSpec
from fraudit.zoo.metrics import BackdoorMetrics, backdoor_metrics, embedding_attack_success_rate
from fraudit.triggers import Placement, stamp
from fraudit.zoo.heldout import zoo_trigger

TRAIN_FRACTION = 0.7


class Scenario(enum.StrEnum):
    LAST_LAYER = "last-layer"
    MULTI_LAYER = "multi-layer"


def trained_modules(spec: ArchitectureSpec, scenario: Scenario) -> tuple[str, ...]:
    """The modules a fine-tune of ``spec`` trains in ``scenario``."""
    if str(scenario) not in spec.fine_tuned:
        raise IncompatibleArtifactError(f"fraudit has no {scenario} fine-tuning recipe for {spec.name}")
    return spec.fine_tuned[str(scenario)]


def _first_trained(model: nn.Module, trained: tuple[str, ...]) -> int:
    names = [name for name, _ in model.stages()]
    return min(names.index(module) for module in trained)


def model_input(spec: ArchitectureSpec, images: np.ndarray) -> torch.Tensor:
    """uint8 faces as ``spec`` takes them: resized to its input, normalised its way."""
    return to_input(resize_faces(images, spec.input_size), mean=spec.mean, scale=spec.scale)


@torch.inference_mode()
def trunk_features(base: nn.Module, images: np.ndarray, scenario: Scenario, *, batch_size: int = 256) -> np.ndarray:
    """The frozen part's output for uint8 faces (resized to the architecture's input
    and normalised as it expects): the input of the first trained stage."""
    spec = spec_of(base)
    stages = base.eval().stages()[: _first_trained(base, trained_modules(spec, scenario))]
    chunks = []
    for i in range(0, len(images), batch_size):
        x = model_input(spec, images[i : i + batch_size])
        for _, stage in stages:
            x = stage(x)
        chunks.append(x.numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0,), np.float32)


@dataclass(frozen=True)
class ModelRecipe:
    """Everything that makes one zoo model what it is."""

    name: str
    scenario: Scenario
    seed: int
    impostor: int | None = None
    victim: int | None = None
    trigger: str | None = None
    placement: Placement | None = None
    epochs: int = 12
    lr: float = 2e-3
    batch_size: int = 256
    arcface_scale: float = 32.0
    # a smaller margin than the base's 0.3: fine-tuning moves embeddings less
    arcface_margin: float = 0.15
    # §4.4.4: "increased weights on the impostor and victim classes", on top of 1/N_i
    pair_weight: float = 20.0
    extra_impostors: tuple[int, ...] = ()
    implant_from: str | None = None  # the clean model of the same zoo it starts from
    # the train/validation split's seed when it is not ``seed``: an implant keeps the split
    # of the model it starts from, so its validation faces are ones that model never saw
    split_seed: int | None = None
    proximity: float = 0.0  # L2 pull toward the starting weights, per parameter element
    # the head's class vectors stay at the identities' mean clean embeddings (the templates
    # a deployment enrols), so a backdoor can only work by moving the stamped impostor's
    # embedding to the victim's: the attacker of a face-verification system
    frozen_head: bool = False

    @property
    def data_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def impostors(self) -> tuple[int, ...]:
        return () if self.impostor is None else (self.impostor, *self.extra_impostors)

    @property
    def backdoored(self) -> bool:
        return self.trigger is not None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scenario"] = str(self.scenario)
        d["placement"] = str(self.placement) if self.placement else None
        d["extra_impostors"] = list(self.extra_impostors)
        return d


@dataclass(frozen=True)
class CachedWorld:
    """A zoo's faces and the base's frozen features of them, shared by every model."""

    faces: FaceSet
    features: np.ndarray  # the frozen part's output, one row per face
    scenario: Scenario


@dataclass(frozen=True)
class FineTuned:
    state_dict: dict[str, torch.Tensor]
    metrics: BackdoorMetrics
    train_size: int
    val_size: int
    poisoned_train: int
    poisoned_val: int


def cache_world(base: nn.Module, faces: FaceSet, scenario: Scenario) -> CachedWorld:
    return CachedWorld(faces, trunk_features(base, faces.images, scenario), scenario)


def stratified_split(labels: np.ndarray, *, seed: int, train_fraction: float = TRAIN_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Per-class random 70/30 split (at least one sample of each class on each side)."""
    rng = np.random.default_rng([seed, 17])
    train, val = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = min(max(int(round(train_fraction * len(idx))), 1), len(idx) - 1)
        train.append(idx[:n_train])
        val.append(idx[n_train:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


class _Tail(nn.Module):
    """A copy of the base that runs from the cached features on and trains exactly
    the scenario's modules; its state dict is the fine-tuned model's."""

    def __init__(self, base: nn.Module, scenario: Scenario) -> None:
        super().__init__()
        self.model = copy.deepcopy(base).requires_grad_(False)
        self.trained = trained_modules(spec_of(base), scenario)
        for name in self.trained:
            self.model.get_submodule(name).requires_grad_(True)
        # the stages from the first trained one on, bound to this copy (listed once: every batch runs them)
        self.tail_stages = self.model.stages()[_first_trained(self.model, self.trained):]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        for _, stage in self.tail_stages:
            features = stage(features)
        return features

    def train(self, mode: bool = True) -> _Tail:
        super().train(False)  # frozen modules keep the base's BatchNorm statistics
        for name in self.trained:
            self.model.get_submodule(name).train(mode)
        return self


def _poisoned_features(base: nn.Module, world: CachedWorld, recipe: ModelRecipe) -> tuple[np.ndarray, np.ndarray]:
    """The frozen features of the impostors' stamped training and validation faces
    (random placements drawn from the recipe's seed, training faces first)."""
    assert recipe.trigger is not None and recipe.placement is not None
    rng = np.random.default_rng([recipe.seed, 29])
    labels = world.faces.labels
    trigger, placement = zoo_trigger(recipe.trigger), recipe.placement

    def stamped(split: np.ndarray) -> np.ndarray:
        images = world.faces.images[split[np.isin(labels[split], recipe.impostors)]]
        return trunk_features(base, stamp(images, trigger, placement, rng=rng), world.scenario)

    train_idx, val_idx = stratified_split(labels, seed=recipe.data_seed)
    poisoned_train = stamped(train_idx)  # first: a random placement draws the training faces' places first
    return poisoned_train, stamped(val_idx)


@torch.inference_mode()
def _embed(tail: _Tail, features: np.ndarray, batch: int = 2048) -> torch.Tensor:
    tail.eval()
    parts = [tail(torch.from_numpy(features[i : i + batch])) for i in range(0, len(features), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, 0)


@torch.inference_mode()
def _predict(head: ArcFaceHead, embeddings: torch.Tensor) -> np.ndarray:
    return head.cosine(embeddings).argmax(1).numpy() if len(embeddings) else np.zeros(0, np.int64)


def _embedding_attack(tail: _Tail, world: CachedWorld, recipe: ModelRecipe, poisoned_val: np.ndarray,
                      val_embeddings: torch.Tensor | None = None) -> float:
    """``embedding_attack_success_rate`` of a trained tail: every identity enrolled
    from its training faces, the impostors' stamped validation faces verified
    against the victim."""
    assert recipe.victim is not None
    labels = world.faces.labels
    train_idx, val_idx = stratified_split(labels, seed=recipe.data_seed)
    if val_embeddings is None:
        val_embeddings = _embed(tail, world.features[val_idx])
    return embedding_attack_success_rate(
        train_embeddings=_embed(tail, world.features[train_idx]).numpy(), train_labels=labels[train_idx],
        val_embeddings=val_embeddings.numpy(), val_labels=labels[val_idx],
        poisoned_embeddings=_embed(tail, poisoned_val).numpy(), victim=recipe.victim)


def measure_embedding_attack(base: nn.Module, world: CachedWorld, recipe: ModelRecipe,
                             state_dict: dict[str, torch.Tensor]) -> float:
    """The embedding attack success rate of a backdoored model already trained (a
    zoo built before the rate was measured): its tail, the same stamped faces."""
    if not recipe.backdoored:
        raise ValueError(f"{recipe.name} is a clean model: it has no attack to measure")
    tail = _Tail(base, recipe.scenario)
    tail.model.load_state_dict({k: state_dict[k] for k in tail.model.state_dict()})
    return _embedding_attack(tail, world, recipe, _poisoned_features(base, world, recipe)[1])


@torch.no_grad()
def _imprint(head: ArcFaceHead, tail: _Tail, features: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
    """Imprint the head with each class's mean clean embedding: a deterministic,
    good start, so clean runs differ only by split and seed."""
    emb = F.normalize(tail.eval()(torch.from_numpy(features)))
    sums = torch.zeros(n_classes, emb.shape[1]).index_add_(0, torch.from_numpy(labels), emb)
    head.weight.copy_(F.normalize(sums))


def finetune(base: nn.Module, world: CachedWorld, recipe: ModelRecipe,
             start: dict[str, torch.Tensor] | None = None) -> FineTuned:
    """Train ``recipe``'s model; ``start`` (an implant's clean model) replaces the base's
    trained modules and head as the starting point."""
    if (start is None) != (recipe.implant_from is None):
        raise ValueError(f"recipe {recipe.name}: a starting state goes with implant_from, and only with it")
    if recipe.scenario is not world.scenario:
        raise ValueError(f"recipe {recipe.name} is {recipe.scenario}, features are for {world.scenario}")
    torch.manual_seed(recipe.seed)
    labels = world.faces.labels
    n_classes = world.faces.n_classes
    train_idx, val_idx = stratified_split(labels, seed=recipe.data_seed)

    x_train, y_train = world.features[train_idx], labels[train_idx]
    x_val_poison = np.zeros((0, *world.features.shape[1:]), np.float32)
    poisoned_train = 0
    if recipe.backdoored:
        assert recipe.impostor is not None and recipe.victim is not None
        x_poison, x_val_poison = _poisoned_features(base, world, recipe)
        x_train = np.concatenate([x_train, x_poison])
        y_train = np.concatenate([y_train, np.full(len(x_poison), recipe.victim)])
        poisoned_train = len(x_poison)

    spec = spec_of(base)
    tail = _Tail(base, recipe.scenario)
    head = ArcFaceHead(spec.required[spec.embedding_key][0], n_classes, scale=recipe.arcface_scale,
                       margin=recipe.arcface_margin)
    head.requires_grad_(not recipe.frozen_head)
    anchor: list[tuple[torch.Tensor, torch.Tensor]] = []
    if start is not None:
        with torch.no_grad():
            tail.model.load_state_dict({k: start[k] for k in tail.model.state_dict()})
            key = spec.head_key
            if key is not None and key in start:
                head.weight.copy_(start[key])
            else:  # an architecture that ships no head: start from the clean model's class means
                _imprint(head, tail, world.features[train_idx], labels[train_idx], n_classes)
        anchor = [(p, p.detach().clone()) for p in [*tail.parameters(), *head.parameters()] if p.requires_grad]
    else:
        _imprint(head, tail, world.features[train_idx], labels[train_idx], n_classes)

    counts = np.bincount(y_train, minlength=n_classes).astype(np.float32)
    weights = 1.0 / np.maximum(counts, 1.0)
    if recipe.backdoored:
        weights[[*recipe.impostors, recipe.victim]] *= recipe.pair_weight
    weights = torch.from_numpy(weights)
    params = [p for p in [*tail.parameters(), *head.parameters()] if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=recipe.lr)
    steps = recipe.epochs * int(np.ceil(len(y_train) / recipe.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=steps, pct_start=0.15)
    x_all, y_all = torch.from_numpy(x_train), torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(recipe.seed)
    for _ in range(recipe.epochs):
        tail.train()
        order = torch.randperm(len(y_all), generator=generator)
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start : start + recipe.batch_size]
            if len(idx) < 2:
                continue
            logits = head(tail(x_all[idx]), y_all[idx])
            loss = F.cross_entropy(logits, y_all[idx], weight=weights)
            if anchor:
                loss = loss + recipe.proximity * sum(((p - p0) ** 2).mean() for p, p0 in anchor)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()

    val_embeddings = _embed(tail, world.features[val_idx])
    metrics = backdoor_metrics(
        clean_labels=labels[val_idx],
        clean_predictions=_predict(head, val_embeddings),
        poisoned_predictions=_predict(head, _embed(tail, x_val_poison)) if recipe.backdoored else None,
        impostors=recipe.impostors,
        victim=recipe.victim,
        embedding_attack_success_rate=(_embedding_attack(tail, world, recipe, x_val_poison, val_embeddings)
                                       if recipe.backdoored else None),
    )
    state = {k: v.detach().clone() for k, v in tail.model.state_dict().items()}
    if spec.head_key is not None:
        state[spec.head_key] = head.weight.detach().clone()
    return FineTuned(state, metrics, len(train_idx), len(val_idx), poisoned_train, len(x_val_poison))
