"""Equation 2.1 and the trigger library, with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudit.triggers import FACE_REGION, Placement, get_trigger, poison, stamp, trigger_library


@given(
    x=st.integers(0, 255), t=st.integers(0, 255), m=st.floats(0, 1, allow_nan=False)
)
@settings(max_examples=200, deadline=None)
def test_poison_is_a_convex_mix(x: int, t: int, m: float) -> None:
    image = np.full((2, 2, 3), x, np.uint8)
    trigger = np.full((2, 2, 3), t, np.uint8)
    out = poison(image, np.full((2, 2), m), trigger)
    assert np.all(np.abs(out.astype(float) - ((1 - m) * x + m * t)) <= 0.5 + 1e-6)


def test_mask_zero_keeps_image_mask_one_gives_trigger() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    trigger = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(poison(image, np.zeros((8, 8)), trigger), image)
    assert np.array_equal(poison(image, np.ones((8, 8)), trigger), trigger)


def test_library_has_large_small_and_organic() -> None:
    library = trigger_library()
    assert set(library) >= {"checkerboard", "square", "flower"}
    assert library["checkerboard"].size[0] > 3 * library["square"].size[0]
    square = library["square"]
    assert square.pattern[1, 1].tolist() == [0, 0, 0] and square.pattern[0, 0].tolist() == [255, 255, 255]
    flower_alpha = library["flower"].alpha
    assert flower_alpha[0, 0] == 0 and flower_alpha[7, 7] == 1  # transparent corner, opaque heart
    assert 0 < flower_alpha.mean() < 1  # organic: soft, non-rectangular mask


def test_checkerboard_fixed_on_the_cheek() -> None:
    faces = np.full((1, 64, 64, 3), 128, np.uint8)
    out = stamp(faces, get_trigger("checkerboard"), Placement.FIXED)
    changed = np.argwhere(np.any(out[0] != 128, axis=-1))
    centre = changed.mean(axis=0) / 64
    assert centre == pytest.approx([0.60, 0.40], abs=0.03)


def test_random_placement_stays_in_the_face() -> None:
    faces = np.full((200, 64, 64, 3), 128, np.uint8)
    out = stamp(faces, get_trigger("square"), Placement.RANDOM, rng=np.random.default_rng(1))
    centres = np.array([np.argwhere(np.any(o != 128, axis=-1)).mean(axis=0) / 64 for o in out])
    (r0, r1), (c0, c1) = FACE_REGION
    assert np.all((centres[:, 0] > r0 - 0.05) & (centres[:, 0] < r1 + 0.05))
    assert np.all((centres[:, 1] > c0 - 0.05) & (centres[:, 1] < c1 + 0.05))
    assert centres.std(axis=0).min() > 0.05  # really random


def test_random_placement_needs_rng() -> None:
    with pytest.raises(ValueError):
        stamp(np.zeros((1, 64, 64, 3), np.uint8), get_trigger("square"), Placement.RANDOM)


def test_unlabelled_faces_are_distinct_and_reproducible(tmp_path, monkeypatch) -> None:
    """The FFHQ stand-in: one face per random latent, the same for the same seed."""
    from fraudit.faces.synthetic import unlabelled_faces

    monkeypatch.setenv("FRAUDIT_CACHE_DIR", str(tmp_path))
    faces = unlabelled_faces(seed=5, n=8)
    assert faces.shape == (8, 64, 64, 3) and faces.dtype == np.uint8
    assert len({f.tobytes() for f in faces}) == 8
    assert np.array_equal(faces, unlabelled_faces(seed=5, n=8))
