"""Pretraining on a tiny world: it learns, writes a card, and resumes by epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudit.faces.synthetic import FaceWorldSpec
from fraudit.zoo.base import load_base, save_base
from fraudit.zoo.pretrain import PretrainRecipe, pretrain

TINY = FaceWorldSpec(seed=91, n_identities=40, sigma=0.5, tail=None, max_samples=16)
HELD = FaceWorldSpec(seed=92, n_identities=20, sigma=0.5, tail=None, max_samples=6)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FRAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_pretrain_learns_and_resumes(isolated_cache: Path, tmp_path: Path) -> None:
    stages: list[str] = []
    recipe = PretrainRecipe(world=TINY, held_out=HELD, epochs=3, batch_size=64)
    model, card = pretrain(recipe, progress=lambda stage, done, total: stages.append(stage))
    assert any(s.startswith("epoch 3/3") for s in stages)
    quality = card["held_out_verification"]
    assert quality["roc_auc"] > 0.6  # better than chance on identities it never saw
    assert card["training_samples"] == 40 * 16

    path = save_base(model, card, tmp_path / "base")
    assert (tmp_path / "base" / "MODEL_CARD.md").read_text().count("ROC AUC") == 1
    reloaded = load_base(path)
    assert all((a == b).all() for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))

    stages.clear()
    again, _ = pretrain(recipe, progress=lambda stage, done, total: stages.append(stage))
    assert not any(s.startswith("epoch") for s in stages), "finished epochs are not retrained"
    assert all((a == b).all() for a, b in zip(again.state_dict().values(), model.state_dict().values()))
