"""Property-based fuzzing of format sniffing and pickle scanning: whatever the bytes,
reading a file raises nothing but fraudit's own errors (or returns a reading that
says what is wrong), never runs anything, and stays within a small memory bound."""

from __future__ import annotations

import pickle
import struct
import tracemalloc
from pathlib import Path

import pytest
from helpers import malicious
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudit.errors import FrauditError
from fraudit.formats import read_file
from fraudit.formats.detect import detect_format
from fraudit.formats.pickle_walk import walk_bytes

SEEDS = [
    pickle.dumps({"w": [1, 2.5, "x", b"y", (None, True)]}, protocol=p) for p in range(6)
] + [
    malicious.stack_global_via_memo(Path("/nonexistent/canary")),
    malicious.protocol0_text(Path("/nonexistent/canary")),
    struct.pack("<Q", 40) + b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}' + b"\x00" * 4,
    b"PK\x03\x04" + b"\x00" * 60,
    b"\x08\x07\x12\x04test:\x00",  # the start of an ONNX ModelProto
]

mutated = st.builds(
    lambda seed, cuts, flips: _mutate(seed, cuts, flips),
    st.sampled_from(SEEDS),
    st.lists(st.integers(0, 200), max_size=3),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8),
)
anything = st.one_of(st.binary(max_size=2048), mutated)


def _mutate(seed: bytes, cuts: list[int], flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(seed)
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    for cut in cuts:
        if cut < len(data):
            del data[cut : cut + 7]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=anything)
def test_pickle_walk_never_raises_and_stays_small(data: bytes) -> None:
    tracemalloc.start()
    try:
        walk = walk_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert walk.complete or walk.error
    assert peak < 16 * 1024 * 1024


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=anything)
def test_reading_any_bytes_gives_a_reading_or_a_fraudit_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "candidate.bin"
    path.write_bytes(data)
    try:
        detect_format(path)
    except FrauditError:
        pass
    reading = read_file(path, "candidate.bin")  # never raises: it reports
    assert reading.format is not None or reading.error
    if reading.scan is not None and reading.scan.offending:
        assert reading.unsafe


def test_the_walker_matches_the_unpickler_on_what_completes() -> None:
    """Where the real unpickler loads a pickle, the walk completes too (no false alarms)."""
    for seed in SEEDS[:6]:
        assert walk_bytes(seed).complete
        pickle.loads(seed)
    assert walk_bytes(SEEDS[5]).globals == []  # protocol 5 spells bytes without _codecs.encode


@pytest.mark.parametrize("depth", [10_000])
def test_a_deeply_nested_pickle_is_bounded(depth: int) -> None:
    data = b"\x80\x04" + b"(" * depth + b"l" * depth + b"."
    walk = walk_bytes(data)
    assert walk.complete  # MARK/LIST nest iteratively, not recursively


@pytest.fixture(scope="module")
def dlib_network(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[int]]:
    """A real dlib network file, and where its structure sits (layer names and what follows)."""
    import re

    from helpers.dlib_files import random_state, write_dlib_resnet

    data = write_dlib_resnet(tmp_path_factory.mktemp("dlib") / "net.dat", random_state(seed=1)).read_bytes()
    names = rb"(con_4|affine_|relu_|max_pool_2|avg_pool_2|add_prev_|fc_2|input_rgb_image_sized)"
    return data, [0] + [m.start() for m in re.finditer(names, data)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.lists(st.tuples(st.integers(0, 10_000), st.integers(-8, 60), st.integers(0, 255)), min_size=1,
                      max_size=4),
       cut=st.booleans())
def test_a_damaged_dlib_network_is_refused_by_fraudit_errors_only(
        tmp_path: Path, dlib_network: tuple[bytes, list[int]], where: list[tuple[int, int, int]], cut: bool) -> None:
    """Bytes flipped (or cut) in the wrappers, names, settings and lengths: the reader
    returns weights or raises fraudit's own error, and never allocates what a length claims."""
    from fraudit.formats.dlib_dnn import read_dlib_dnn

    data, marks = dlib_network
    damaged = bytearray(data)
    for mark, offset, value in where:
        position = max(0, marks[mark % len(marks)] + offset)
        if cut:
            del damaged[position : position + 3]
        else:
            damaged[position] = value
    path = tmp_path / "net.dat"
    path.write_bytes(bytes(damaged))
    tracemalloc.start()
    try:
        read_dlib_dnn(path)
    except FrauditError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 4 * len(data)
