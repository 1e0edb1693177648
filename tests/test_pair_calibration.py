"""Calibrating a pair on embeddings with a known relation; storing and reloading it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ortho_group

from fraudit.errors import CorruptFileError
from fraudit.pairing.pair import TranslatorKind, calibrate, load_pair, save_pair


def _pair_embeddings(n: int = 1500, dim: int = 32, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    faces = rng.normal(size=(n, dim))
    probe = faces + 2.0
    reference = faces @ ortho_group.rvs(dim, random_state=1) + noise * rng.normal(size=(n, dim)) + 5.0
    return probe, reference


@pytest.mark.parametrize("kind", list(TranslatorKind))
def test_genuine_far_above_impostor(kind: TranslatorKind) -> None:
    probe, reference = _pair_embeddings()
    pair = calibrate(probe, reference, kind=kind)
    assert pair.genuine.mean() > 0.9 and abs(pair.impostor.mean()) < 0.1
    assert set(pair.thresholds) == {0.001, 0.01, 0.05}
    assert pair.thresholds[0.001] <= pair.thresholds[0.01] <= pair.thresholds[0.05]
    assert np.mean(pair.impostor >= pair.threshold(0.01)) < 0.01


def test_roundtrip_and_tamper(tmp_path: Path) -> None:
    probe, reference = _pair_embeddings()
    pair = calibrate(probe, reference, kind=TranslatorKind.ROTATION, info={"faces": "synthetic"})
    save_pair(pair, tmp_path / "p")
    loaded = load_pair(tmp_path / "p")
    assert np.allclose(loaded.score(probe[:50], reference[:50]), pair.score(probe[:50], reference[:50]))
    assert loaded.info["faces"] == "synthetic"
    assert loaded.thresholds == pytest.approx(pair.thresholds)  # rates survive the JSON labels
    data = bytearray((tmp_path / "p" / "pair.safetensors").read_bytes())
    data[-4:] = b"\x00\x00\x00\x00"
    (tmp_path / "p" / "pair.safetensors").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        load_pair(tmp_path / "p")
