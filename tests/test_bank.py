"""The weight bank: readings and estimators against known answers, then a real
bank from the smoke zoo, its verdicts in fraudit scan, and a tampered file refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from typer.testing import CliRunner

from fraudit.bank.bank import EstimatorKind, fit_layer_models, score_network
from fraudit.bank.estimators import IndexAlignedGaussian, PCAGaussianMixture
from fraudit.bank.readings import Reading, read_vectors
from fraudit.cli import app
from fraudit.errors import CorruptFileError

runner = CliRunner()


def test_readings() -> None:
    theta = np.arange(6).reshape(2, 3)  # R=2 outputs, C=3 inputs
    assert read_vectors(theta, Reading.FORWARD).tolist() == [[0, 3], [1, 4], [2, 5]]  # C vectors of length R
    assert read_vectors(theta, Reading.BACKWARD).tolist() == [[0, 1, 2], [3, 4, 5]]  # R vectors of length C
    conv = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    assert read_vectors(conv, Reading.UNCHANGED).shape == (2, 12)


def _aligned_stack(rng: np.random.Generator, networks: int, vectors: int = 30, dim: int = 6) -> tuple[np.ndarray, np.ndarray]:
    means = rng.normal(0, 3, (vectors, dim))
    return means, means + rng.normal(0, 0.5, (networks, vectors, dim))


def test_index_aligned_matches_the_gaussian_it_fitted() -> None:
    rng = np.random.default_rng(0)
    _, X = _aligned_stack(rng, 12)
    model = IndexAlignedGaussian(variance=0.9999999).fit(X)
    candidate = X[0] + 0.1
    expected = [
        multivariate_normal(model.means_[i], model.covariance_).logpdf(model.pca_.transform(candidate[i : i + 1])[0])
        for i in range(len(candidate))
    ]
    assert np.allclose(model.score_samples(candidate), expected)


def test_index_aligned_sees_a_moved_neuron_that_a_mixture_cannot() -> None:
    """Swap two neurons: each still looks like *some* clean neuron, but not its own."""
    rng = np.random.default_rng(1)
    means, X = _aligned_stack(rng, 12)
    new = means + rng.normal(0, 0.5, means.shape)
    swapped = new.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    aligned = IndexAlignedGaussian().fit(X)
    assert aligned.score_samples(swapped)[:2].max() < aligned.score_samples(new)[:2].min() - 10
    mixture = PCAGaussianMixture(components=[30]).fit(X)
    assert abs(mixture.score_samples(swapped).sum() - mixture.score_samples(new).sum()) < 1.0


def test_calibration_is_honest_on_held_out_clean_networks() -> None:
    """Cross-fitted calibration: clean networks never seen score z ≈ N(0, 1), not far above."""
    rng = np.random.default_rng(2)
    means = rng.normal(0, 3, (40, 64))
    nets = [{"w": (means + rng.normal(0, 0.5, means.shape)).T} for _ in range(30)]
    models = fit_layer_models(nets[:15], ["w"], kind=EstimatorKind.INDEX_ALIGNED)
    z = np.array([[s.z for s in score_network(models, n, frr=(0.01,)).layers] for n in nets[15:]])
    assert abs(z.mean()) < 1.0 and z.std() < 2.0
    shifted = {"w": nets[16]["w"] + 0.4}
    assert score_network(models, shifted, frr=(0.01,)).p < 1e-6


@pytest.fixture(scope="module")
def smoke_bank(smoke_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("banks") / "smoke-last-layer"
    result = runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out", str(out), "--limit", "7"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_smoke_bank_passes_held_out_clean_and_fails_backdoor(smoke_zoo: Path, smoke_bank: Path) -> None:
    header = json.loads((smoke_bank / "bank.json").read_text())
    assert header["reference_size"] == 7
    assert "clean-007.safetensors" not in " ".join(header["reference_networks"])
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    backdoor = next(m for m in manifest["models"] if m["successful"])
    result = runner.invoke(app, ["scan", str(smoke_zoo / "models" / "clean-007.safetensors"),
                                 str(smoke_zoo / backdoor["file"]), "--bank", str(smoke_bank), "-f", "json"])
    document = json.loads(result.stdout)
    verdicts = {Path(r["source"]).name: r for r in document["results"]}
    clean = next(c for c in verdicts["clean-007.safetensors"]["checks"] if c["name"] == "weight-bank")
    bad = next(c for c in verdicts[Path(backdoor["file"]).name]["checks"] if c["name"] == "weight-bank")
    assert clean["status"] in ("PASS", "WARN"), clean["summary"]
    assert bad["status"] == "FAIL", bad["summary"]
    assert bad["evidence"]["consolidated"]["p"] < 0.01
    assert bad["evidence"]["reference_size"] == 7 and bad["evidence"]["frr"]["fail"] == 0.01
    assert bad["evidence"]["most_anomalous"]["layer"]
    assert result.exit_code == 1


@pytest.mark.slow
def test_tampered_bank_is_refused(smoke_bank: Path, tmp_path: Path) -> None:
    from fraudit.bank.store import load_bank

    tampered = tmp_path / "tampered"
    shutil.copytree(smoke_bank, tampered)
    data = bytearray((tampered / "bank.safetensors").read_bytes())
    data[-8:] = b"\x00" * 8
    (tampered / "bank.safetensors").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="tampered"):
        load_bank(tampered)


@pytest.mark.slow
def test_bank_info_and_evaluate(smoke_zoo: Path, smoke_bank: Path, tmp_path: Path) -> None:
    info = runner.invoke(app, ["bank", "info", str(smoke_bank)], env={"COLUMNS": "200"})
    assert info.exit_code == 0 and "last_linear.weight" in info.stdout
    report = tmp_path / "eval.json"
    result = runner.invoke(app, ["bank", "evaluate", str(smoke_bank), str(smoke_zoo), "--plots", str(tmp_path / "plots"), "-o", str(report)])
    assert result.exit_code == 0, result.output
    numbers = json.loads(report.read_text())
    assert numbers["clean_evaluated"] == 1  # the 7 reference networks are excluded
    assert (tmp_path / "plots" / "roc_det.png").is_file()


@pytest.mark.slow
def test_a_bank_of_chosen_layers_states_its_worlds(smoke_zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bank"
    result = runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out", str(out),
                                 "--limit", "6", "--layer", "last_linear.weight"])
    assert result.exit_code == 0, result.output
    header = json.loads((out / "bank.json").read_text())
    assert header["layers"] == ["last_linear.weight"]
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    assert header["recipe"]["worlds"] == [manifest["world"]]
    wrong = runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out", str(tmp_path / "b2"),
                                "--layer", "logits.weight"])
    assert wrong.exit_code == 2 and "not audited layers" in wrong.stderr


def test_spike_score_sees_a_rank_one_change_and_not_a_diffuse_one() -> None:
    """The spectrum reading: a diffuse change keeps s₁ near the bulk; poisoning's
    rank-one term (feature direction → victim) makes it stand out, whatever the scale."""
    from fraudit.bank.readings import spike_score

    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (64, 256))
    diffuse = base + rng.normal(0, 0.05, base.shape)
    u, v = rng.normal(0, 1, 64), rng.normal(0, 1, 256)
    spiked = diffuse + 0.05 * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v)) * 40
    assert spike_score(spiked, base) < spike_score(diffuse, base) - 0.5
    # BatchNorm folded in scales each output unit (even flips it): the unit-length reading
    # does not change, and still sees the spike
    scales = rng.uniform(0.2, 5.0, 64) * np.where(rng.random(64) < 0.1, -1, 1)
    unit = spike_score(spiked, base, unit_rows=True)
    assert spike_score(spiked * scales[:, None], base, unit_rows=True) == pytest.approx(unit)
    assert unit < spike_score(diffuse, base, unit_rows=True) - 0.5
    assert spike_score(base, base) == 0.0  # unchanged: nothing to read


def _change_with_spectrum(rng: np.random.Generator, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A change of ``shape`` whose singular values are ``values`` (random directions)."""
    u = np.linalg.qr(rng.normal(size=(shape[0], len(values))))[0]
    v = np.linalg.qr(rng.normal(size=(shape[1], len(values))))[0]
    return (u * values) @ v.T


def test_the_trend_reading_holds_where_a_steeper_spectrum_moves_the_median_one() -> None:
    """Fine-tuning on less varied data makes the whole change spectrum steeper: s₁ over
    the median moves with it, s₁ over the trend of s₂ … s₁₂ does not. A rank-one term
    (a backdoor's) lifts s₁ alone, and both readings see that."""
    from fraudit.bank.readings import spike_score, trend_spike_score

    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, (64, 256))
    k = np.arange(1, 65)
    shallow = base + _change_with_spectrum(rng, k ** -0.3, base.shape)
    steep = base + _change_with_spectrum(rng, k ** -0.8, base.shape)
    assert spike_score(steep, base) < spike_score(shallow, base) - 0.5
    assert trend_spike_score(steep, base) == pytest.approx(trend_spike_score(shallow, base), abs=0.02)
    spiked_values = k ** -0.3
    spiked_values[0] *= 2.0
    spiked = base + _change_with_spectrum(rng, spiked_values, base.shape)
    assert trend_spike_score(spiked, base) == pytest.approx(trend_spike_score(shallow, base) - np.log(2.0), abs=0.02)
    # the unit-length reading an export's folded layer gets: blind to each unit's scale
    scales = rng.uniform(0.2, 5.0, 64) * np.where(rng.random(64) < 0.1, -1, 1)
    unit = trend_spike_score(spiked, base, unit_rows=True)
    assert trend_spike_score(spiked * scales[:, None], base, unit_rows=True) == pytest.approx(unit)
    assert trend_spike_score(base, base) == 0.0  # unchanged: nothing to read


def test_data_dependence_is_the_share_of_spread_between_sources() -> None:
    """ICC(1): for equal sources it is (F − 1)/(F + n − 1) of the one-way ANOVA's F;
    sources that differ in level read near 1, sources alike near 0, one source nothing."""
    from scipy.stats import f_oneway

    from fraudit.bank.bank import data_dependence

    rng = np.random.default_rng(3)
    sources = np.repeat(np.arange(6), 4)
    alike = rng.normal(0, 1, 24)
    apart = rng.normal(0, 1, 24) + 5 * np.repeat(rng.normal(0, 1, 6), 4)
    for scores in (alike, apart):
        f = f_oneway(*[scores[sources == s] for s in range(6)]).statistic
        assert data_dependence(scores, sources) == pytest.approx(max((f - 1) / (f + 4 - 1), 0.0))
    assert data_dependence(apart, sources) > 0.9 and data_dependence(alike, sources) < 0.3
    assert data_dependence(apart, np.zeros(24, int)) is None  # one source: nothing between
    assert data_dependence(apart[:3], [0, 1, 2]) is None  # no source with two references


def test_a_bank_measures_which_readings_read_the_data_and_can_leave_them_out() -> None:
    """References from sources whose data make the change spectrum steeper or shallower
    (as less or more varied faces do): the spike over the median reads the source, the
    spike over the trend does not; left out, the median reading is not fitted at all."""
    from fraudit.bank.bank import DATA_DEPENDENT
    from fraudit.bank.readings import ReadingSet

    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, (32, 96))
    k = np.arange(1, 33)
    steepness = np.repeat([0.2, 0.4, 0.6, 0.8], 4)
    networks = [{"w": base + _change_with_spectrum(rng, k ** -(a + rng.normal(0, 0.02)), base.shape)}
                for a in steepness]
    sources = np.repeat(np.arange(4), 4).tolist()
    models = fit_layer_models(networks, ["w"], kind=EstimatorKind.INDEX_ALIGNED, readings=ReadingSet.SPECTRUM,
                              base={"w": base}, sources=sources)
    share = {str(m.reading): m.data_dependence for m in models}
    assert share["spectrum"] >= DATA_DEPENDENT > share["spectrum-trend"]
    kept = fit_layer_models(networks, ["w"], kind=EstimatorKind.INDEX_ALIGNED, readings=ReadingSet.SPECTRUM,
                            base={"w": base}, without=[Reading.SPECTRUM])
    assert [str(m.reading) for m in kept] == ["spectrum-trend"] and kept[0].data_dependence is None


def test_the_head_aligned_reading_finds_the_class_a_change_lands_on() -> None:
    """A change mapped onto one class's head row (a victim) stands out among the
    classes; the same change spread over the embedding does not; the reading does not
    depend on the order of the head's rows."""
    from fraudit.bank.readings import class_shares, head_aligned_score

    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, (32, 128))
    head = rng.normal(0, 1, (200, 32))
    diffuse = base + rng.normal(0, 0.05, base.shape)
    victim = head[17] / np.linalg.norm(head[17])
    feature = rng.normal(0, 1, 128)
    poisoned = diffuse + 0.6 * np.outer(victim, feature / np.linalg.norm(feature))
    assert head_aligned_score(poisoned, base, head) < head_aligned_score(diffuse, base, head) - 2
    assert int(np.argmax(class_shares(poisoned, base, head))) == 17
    order = rng.permutation(len(head))
    assert head_aligned_score(poisoned, base, head[order]) == pytest.approx(head_aligned_score(poisoned, base, head))
    assert head_aligned_score(base, base, head) == 0.0  # unchanged: nothing to read


def _bank_checks_with_and_without_head(smoke_zoo: Path, bank: Path, tmp_path: Path) -> tuple[dict, dict[str, dict]]:
    """A successful smoke backdoor scanned against ``bank`` as trained (with its head)
    and with the head removed: (its manifest entry, weight-bank check per variant)."""
    from safetensors.torch import load_file, save_file

    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    backdoor = next(m for m in manifest["models"] if m["successful"])
    with_head = smoke_zoo / backdoor["file"]
    headless = tmp_path / "headless.safetensors"
    save_file({k: v for k, v in load_file(str(with_head)).items() if not k.startswith("head.")}, str(headless))
    checks = {}
    for name, path in (("with head", with_head), ("headless", headless)):
        report = json.loads(runner.invoke(app, ["scan", str(path), "--bank", str(bank), "-f", "json"]).stdout)
        checks[name] = next(c for c in report["results"][0]["checks"] if c["name"] == "weight-bank")
    return backdoor, checks


def test_a_head_response_bank_read_on_other_faces_is_refused(tmp_path: Path) -> None:
    """The base's embeddings in a head-response bank are of fraudit's response faces; a
    bank that says it read other faces (or whose base embeddings were swapped) would
    compare a candidate on these faces with a base on those: refused, not used."""
    from fraudit.bank.store import load_bank

    shipped = Path(__file__).resolve().parent.parent / "reference_models" / "banks" / "fraudit-reference-last-layer"
    other = tmp_path / "other-faces"
    shutil.copytree(shipped, other)
    header = json.loads((other / "bank.json").read_text())
    entry = next(m for m in header["models"] if m["kind"] == "head-response")
    entry["response_faces"] = {**entry["response_faces"], "n": 300}
    (other / "bank.json").write_text(json.dumps(header))
    with pytest.raises(CorruptFileError, match="head-response reading on faces"):
        load_bank(other)
    entry["response_faces"] = {"seed": 3000, "n": 600}
    entry["base_sha256"] = "0" * 64  # embeddings that are not the ones recorded
    (other / "bank.json").write_text(json.dumps(header))
    with pytest.raises(CorruptFileError, match="head-response reading.s base embeddings are missing"):
        load_bank(other)


def test_the_head_response_reading_finds_the_class_the_embeddings_moved_along() -> None:
    """Embeddings of the faces moved along one class's head row (a victim) stand out
    among the classes; a move spread over the embedding does not; the order of the
    head's rows does not matter; an unmoved network reads as nothing."""
    from fraudit.bank.readings import class_responses, head_response_score

    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, (300, 32))
    head = rng.normal(0, 1, (200, 32))
    diffuse = base + rng.normal(0, 0.05, base.shape)
    victim = head[17] / np.linalg.norm(head[17])
    poisoned = diffuse + rng.normal(0, 0.5, (300, 1)) * victim  # each face pulled by its own amount
    assert head_response_score(poisoned, base, head) < head_response_score(diffuse, base, head) - 2
    assert int(np.argmax(class_responses(poisoned, base, head))) == 17
    order = rng.permutation(len(head))
    assert head_response_score(poisoned, base, head[order]) == pytest.approx(head_response_score(poisoned, base, head))
    assert head_response_score(base, base, head) == 0.0


@pytest.mark.slow
def test_a_head_response_bank_runs_the_candidate_on_its_faces(smoke_zoo: Path, tmp_path: Path) -> None:
    """Built from a zoo, a head-response bank keeps the embedding layer's spectrum and,
    beside it, the response reading with the base's embeddings of the response faces
    (which its JSON names); a candidate with its head is read both ways, one without
    by the spectrum alone; a FAIL led by the response names the class that moved."""
    from fraudit.bank.response import faces_record
    from fraudit.bank.store import load_bank

    out = tmp_path / "response"
    made = runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out", str(out),
                               "--readings", "head-response", "--limit", "6"])
    assert made.exit_code == 0, made.output
    bank = load_bank(out)
    assert sorted((m.layer, m.kind) for m in bank.models) == [
        ("block_last.0.weight", "frozen"), ("last_linear.weight", "head-response"), ("last_linear.weight", "spectrum"),
        ("last_linear.weight", "spectrum-trend")]
    header = json.loads((out / "bank.json").read_text())
    assert header["recipe"]["response_faces"] == faces_record()
    assert next(m for m in header["models"] if m["kind"] == "head-response")["shape"] == [faces_record()["n"], 128]

    backdoor, checks = _bank_checks_with_and_without_head(smoke_zoo, out, tmp_path)
    read = {name: [layer["layer"] for layer in c["evidence"]["layers"]] for name, c in checks.items()}
    assert {"last_linear.weight:spectrum", "last_linear.weight:head-response"} <= set(read["with head"])
    assert "last_linear.weight:spectrum" in read["headless"] and not any(r.endswith("head-response")
                                                                          for r in read["headless"])
    response_z = next(layer["z"] for layer in checks["with head"]["evidence"]["layers"]
                      if layer["layer"].endswith("head-response"))
    assert response_z < -3, checks["with head"]["summary"]  # the victim's class moved beyond every reference's
    assert checks["with head"]["status"] == "FAIL"
    assert checks["with head"]["evidence"]["most_anomalous"]["layer"] == "last_linear.weight:head-response"
    assert "embeddings moved most along class" in checks["with head"]["summary"]
    assert checks["with head"]["evidence"]["spike_points_at"]["classes"][0][0] == backdoor["victim"]


@pytest.mark.slow
def test_a_head_aligned_bank_reads_along_the_head_and_falls_back_without_it(smoke_zoo: Path, tmp_path: Path) -> None:
    """Built from a zoo, a head-aligned bank keeps both readings of the embedding layer;
    a candidate with its head is read along it, one without by the spectrum."""
    from fraudit.bank.store import load_bank

    out = tmp_path / "head"
    made = runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out", str(out),
                               "--readings", "head-aligned", "--limit", "6"])
    assert made.exit_code == 0, made.output
    bank = load_bank(out)
    kinds = sorted((m.layer, m.kind) for m in bank.models)
    assert kinds == [("block_last.0.weight", "frozen"), ("last_linear.weight", "head-aligned"),
                     ("last_linear.weight", "spectrum"), ("last_linear.weight", "spectrum-trend")]
    assert bank.read_keys == ["block_last.0.weight", "head.weight", "last_linear.weight"]

    backdoor, checks = _bank_checks_with_and_without_head(smoke_zoo, out, tmp_path)
    readings = {}
    for name, check in checks.items():
        readings[name] = [layer["layer"] for layer in check["evidence"]["layers"]]
        if name == "with head":  # the victim's class takes the change
            assert check["status"] == "FAIL", check["summary"]
            points = check["evidence"]["spike_points_at"]
            assert points["measure"] == "robust z" and points["classes"][0][0] == backdoor["victim"]
    assert "last_linear.weight:head-aligned" in readings["with head"]
    assert "last_linear.weight:spectrum" in readings["headless"] and not any(
        r.endswith("head-aligned") for r in readings["headless"])


@pytest.mark.slow
def test_spectrum_bank_reads_the_change_from_the_base(smoke_zoo: Path, tmp_path: Path) -> None:
    """Built from a zoo, a spectrum bank takes the zoo's base, leaves out the head the
    base does not have (and says why), survives a save/load, and scores the backdoor
    of the zoo lower than every clean model it never saw."""
    from fraudit.bank.store import load_bank
    from fraudit.cache import file_sha256
    from fraudit.zoo.base import default_base_path

    out = tmp_path / "spectrum"
    result = runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out", str(out),
                                 "--readings", "spectrum", "--limit", "6"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    header = json.loads((out / "bank.json").read_text())
    assert header["recipe"]["readings"] == "spectrum"
    assert header["recipe"]["base_sha256"] == file_sha256(default_base_path())
    assert "head.weight" in header["recipe"]["layers_left_out"] and "head.weight" not in header["layers"]
    kinds = {(m["layer"], m["kind"]) for m in header["models"]}
    assert kinds == {("block_last.0.weight", "frozen"), ("last_linear.weight", "spectrum"),
                     ("last_linear.weight", "spectrum-trend")}

    bank = load_bank(out)
    spectrum = next(m for m in bank.models if m.kind == "spectrum")
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    held_out = [m["file"] for m in manifest["models"] if m["kind"] == "clean"][6:]
    backdoor = next(m["file"] for m in manifest["models"] if m["successful"])
    from safetensors.numpy import load_file

    def score(file: str) -> float:
        return float(spectrum.vector_scores(load_file(str(smoke_zoo / file))["last_linear.weight"])[0])

    assert held_out and score(backdoor) < min(score(f) for f in held_out)

    # a spectrum bank of other zoos needs the base they came from
    folder = tmp_path / "loose"
    folder.mkdir()
    for i in range(4):
        shutil.copy(smoke_zoo / "models" / f"clean-00{i}.safetensors", folder / f"m{i}.safetensors")
    no_base = runner.invoke(app, ["bank", "build", str(folder), "--arch", "fraudit-reference", "--out",
                                  str(tmp_path / "nb"), "--readings", "spectrum"])
    assert no_base.exit_code != 0 and "--base" in no_base.output
    with_base = runner.invoke(app, ["bank", "build", str(folder), "--arch", "fraudit-reference", "--out",
                                    str(tmp_path / "wb"), "--readings", "spectrum", "--base", str(default_base_path())])
    assert with_base.exit_code == 0, with_base.output

    # two sources: each reading's share of spread between them is measured, shown and kept;
    # a reading left out is not in the bank, and the recipe says so
    other = tmp_path / "other"
    other.mkdir()
    for i in range(4, 7):
        shutil.copy(smoke_zoo / "models" / f"clean-00{i}.safetensors", other / f"m{i}.safetensors")
    two = runner.invoke(app, ["bank", "build", str(folder), str(other), "--arch", "fraudit-reference", "--out",
                              str(tmp_path / "two"), "--readings", "spectrum", "--base", str(default_base_path()),
                              "--without-reading", "spectrum"], env={"COLUMNS": "200"})
    assert two.exit_code == 0, two.output
    header = json.loads((tmp_path / "two" / "bank.json").read_text())
    assert header["recipe"]["readings_left_out"] == ["spectrum"]
    trained = [m for m in header["models"] if m["kind"] != "frozen"]
    assert [m["reading"] for m in trained] == ["spectrum-trend"]
    share = trained[0]["calibration"]["data_dependence"]
    assert 0.0 <= share <= 1.0 and load_bank(tmp_path / "two").models[-1].data_dependence == pytest.approx(share)
    assert "between sources" in two.stdout and "readings left out at build: spectrum" in two.stdout
    scanned = runner.invoke(app, ["scan", str(smoke_zoo / "models" / "clean-007.safetensors"), "--bank",
                                  str(tmp_path / "two"), "-f", "json"])
    check = next(c for c in json.loads(scanned.stdout)["results"][0]["checks"] if c["name"] == "weight-bank")
    assert "spectrum readings (left out: spectrum)" in check["summary"], check["summary"]
    assert check["evidence"]["domain"]["readings_left_out"] == ["spectrum"]
    header["models"][-1]["calibration"]["data_dependence"] = "high"  # an edited header is refused, not printed
    (tmp_path / "two" / "bank.json").write_text(json.dumps(header))
    with pytest.raises(CorruptFileError, match="data_dependence"):
        load_bank(tmp_path / "two")
    foreign = runner.invoke(app, ["bank", "build", str(folder), str(other), "--arch", "fraudit-reference", "--out",
                                  str(tmp_path / "foreign"), "--readings", "spectrum", "--base",
                                  str(default_base_path()), "--without-reading", "head-response"])
    assert foreign.exit_code == 2 and "not a reading of a spectrum bank" in foreign.stderr


@pytest.mark.slow
def test_a_spectrum_bank_takes_its_base_from_the_hub(smoke_zoo: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`--base hf://org/name`: the real huggingface_hub download, from a local server."""
    import hashlib

    import huggingface_hub.constants as constants
    from helpers.hub_server import FakeRepo, HubServer

    from fraudit.cache import file_sha256
    from fraudit.zoo.base import default_base_path

    folder = tmp_path / "loose"
    folder.mkdir()
    for i in range(4):
        shutil.copy(smoke_zoo / "models" / f"clean-00{i}.safetensors", folder / f"m{i}.safetensors")
    commit = hashlib.sha1(b"base").hexdigest()
    files = {"base.safetensors": default_base_path().read_bytes(), "README.md": b"# base"}
    with HubServer([FakeRepo("acme/face-base", commits={commit: files}, refs={"main": commit})]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        made = runner.invoke(app, ["bank", "build", str(folder), "--arch", "fraudit-reference", "--out",
                                   str(tmp_path / "hb"), "--readings", "spectrum", "--base", "hf://acme/face-base"])
        missing = runner.invoke(app, ["bank", "build", str(folder), "--arch", "fraudit-reference", "--out",
                                      str(tmp_path / "hm"), "--readings", "spectrum", "--base", "hf://acme/no-such-base"])
    assert made.exit_code == 0, made.output
    header = json.loads((tmp_path / "hb" / "bank.json").read_text())
    assert header["recipe"]["base_sha256"] == file_sha256(default_base_path())
    assert missing.exit_code == 2 and "not found" in missing.stderr


@pytest.mark.slow
def test_a_spectrum_bank_refuses_a_base_that_does_not_match_its_arrays(smoke_zoo: Path, tmp_path: Path) -> None:
    from fraudit.bank.store import load_bank

    out = tmp_path / "spectrum"
    assert runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out", str(out),
                               "--readings", "spectrum", "--limit", "5"]).exit_code == 0
    header = json.loads((out / "bank.json").read_text())
    entry = next(m for m in header["models"] if m["kind"] == "spectrum")
    entry["base_sha256"] = "0" * 64
    (out / "bank.json").write_text(json.dumps(header))
    with pytest.raises(CorruptFileError, match="base weights"):
        load_bank(out)


def test_a_candidate_trained_on_another_number_of_identities_is_outside_the_bank(tmp_path: Path) -> None:
    """The shipped banks' references were fine-tuned on 1,000 identities; a candidate
    whose head has 300 rows was trained on a data size they never covered (measured:
    such clean models all FAIL), so no bank applies: INCONCLUSIVE with the reason."""
    from safetensors.torch import load_file, save_file

    example = Path(__file__).resolve().parent.parent / "reference_models" / "examples" / "clean.safetensors"
    tensors = load_file(str(example))
    assert tensors["head.weight"].shape[0] == 1000
    tensors["head.weight"] = tensors["head.weight"][:300].clone()
    path = tmp_path / "fewer-identities.safetensors"
    save_file(tensors, str(path))
    report = json.loads(runner.invoke(app, ["scan", str(path), "-f", "json"]).stdout)
    check = next(c for c in report["results"][0]["checks"] if c["name"] == "weight-bank")
    assert check["status"] == "INCONCLUSIVE"
    assert "its head was trained on 300 identities, the references' on 1000" in check["summary"]
    inside = json.loads(runner.invoke(app, ["scan", str(example), "-f", "json"]).stdout)
    evidence = next(c for c in inside["results"][0]["checks"] if c["name"] == "weight-bank")["evidence"]
    assert evidence["domain"]["head_classes"] == [1000]


def test_a_candidate_that_cannot_run_is_read_by_its_weights_alone(tmp_path: Path) -> None:
    """The response needs the network to run; a checkpoint without its BatchNorm
    statistics cannot, and is then read by the spectrum of the same bank — not handed
    to a less specific bank — with the reason in the evidence."""
    from safetensors.torch import load_file, save_file

    example = Path(__file__).resolve().parent.parent / "reference_models" / "examples" / "backdoored.safetensors"
    path = tmp_path / "no-statistics.safetensors"
    save_file({k: v for k, v in load_file(str(example)).items()
               if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}, str(path))
    report = json.loads(runner.invoke(app, ["scan", str(path), "-f", "json"]).stdout)
    check = next(c for c in report["results"][0]["checks"] if c["name"] == "weight-bank")
    # the spectrum's two readings alone: its spike over the trend of the next values FAILs it
    assert check["evidence"]["bank"] == "fraudit-reference-last-layer" and check["status"] == "FAIL"
    assert "no head response was read" in check["evidence"]["caveat"]
    assert [layer["layer"] for layer in check["evidence"]["layers"]] == [
        "block_last.0.weight:unchanged", "last_linear.weight:spectrum", "last_linear.weight:spectrum-trend"]
    assert any("head-response not read" in e for e in check["evidence"]["bank_errors"])


@pytest.mark.slow
def test_among_equally_specific_banks_the_strictest_judges(smoke_zoo: Path, tmp_path: Path) -> None:
    """Two banks for the same base and recipe: adding a lax one must not pass a model
    the other fails. (The example without its head: with it, its 1,000 identities
    put it outside the smoke bank's 100-identity domain, and only one bank applies.)"""
    from safetensors.torch import load_file, save_file

    banks = tmp_path / "banks"
    shutil.copytree(Path(__file__).resolve().parent.parent / "reference_models" / "banks" / "fraudit-reference-last-layer",
                    banks / "shipped")
    lax = runner.invoke(app, ["bank", "build", str(smoke_zoo), "--arch", "fraudit-reference", "--out",
                              str(banks / "smoke"), "--readings", "spectrum", "--limit", "6"])
    assert lax.exit_code == 0, lax.output
    example = tmp_path / "backdoored-headless.safetensors"
    shipped_example = Path(__file__).resolve().parent.parent / "reference_models" / "examples" / "backdoored.safetensors"
    save_file({k: v for k, v in load_file(str(shipped_example)).items() if not k.startswith("head.")}, str(example))
    p = {}
    for name in ("shipped", "smoke"):
        result = runner.invoke(app, ["scan", str(example), "--bank", str(banks / name), "-f", "json"])
        check = next(c for c in json.loads(result.stdout)["results"][0]["checks"] if c["name"] == "weight-bank")
        p[name] = check["evidence"]["consolidated"]["p"]
    result = runner.invoke(app, ["scan", str(example), "--bank", str(banks), "-f", "json"])
    check = next(c for c in json.loads(result.stdout)["results"][0]["checks"] if c["name"] == "weight-bank")
    assert sorted(check["evidence"]["banks_tried"]) == ["fraudit-reference-last-layer", "smoke"]
    # the smoke world's bank alone would PASS it; the shipped one, with no head response, FAILs it
    assert p["smoke"] > 0.05 > 0.01 > p["shipped"], p
    assert check["evidence"]["consolidated"]["p"] == min(p.values()) and check["status"] == "FAIL"


def test_a_verdict_the_spectrum_leads_alone_says_what_else_it_can_mean() -> None:
    """A clean fine-tune on fewer or less varied faces than the references' moves the
    spectrum and not the head response (measured, README); a FAIL led by the spectrum
    while the response is ordinary says so, and what the references' data was."""
    from fraudit.bank.bank import LayerScore, NetworkScore
    from fraudit.bank.store import load_bank
    from fraudit.detectors.weight_bank import _spectrum_alone
    from fraudit.resources import banks_dir

    bank = load_bank(banks_dir() / "fraudit-reference-last-layer")

    def score(spectrum_z: float, response_z: float) -> NetworkScore:
        from scipy.stats import norm

        layers = [LayerScore(f"last_linear.weight:{kind}", 0.0, z, float(norm.cdf(z)), {}, [])
                  for kind, z in (("spectrum", spectrum_z), ("head-response", response_z))]
        return NetworkScore(layers, 0.0, 1e-12, {})

    caveat = _spectrum_alone(bank, score(-8.9, -0.7), 0.05)
    assert caveat is not None and "z = -8.9" in caveat and "head response z = -0.7" in caveat
    assert "15–299 faces per identity, variation 0.5–0.9)" in caveat  # augmented and not: no word on it
    # the shipped bank measured how much of that reading is the references' data
    assert "(97% of this reading's spread over the references lies between their face worlds)" in caveat
    assert _spectrum_alone(bank, score(-8.9, -7.9), 0.05) is None  # the response moved too: the backdoored example
    assert _spectrum_alone(bank, score(-0.5, -7.9), 0.05) is None  # led by the response
    headless = NetworkScore(score(-8.9, 0.0).layers[:1], 0.0, 1e-12, {})  # an export: no head, no response
    assert "no head response was read" in (_spectrum_alone(bank, headless, 0.05) or "")


def test_a_spectrum_the_head_response_contradicts_is_a_warn_not_a_fail() -> None:
    """The FAIL rule: a consolidated p below the FAIL threshold led by the spectrum while
    the head response read beside it is ordinary is a WARN (with the caveat and the rule
    in the evidence); a response out of range too, or no response read, keeps the FAIL."""
    from scipy.stats import norm

    from fraudit.bank.bank import LayerScore, NetworkScore
    from fraudit.bank.store import load_bank
    from fraudit.detectors.base import Status
    from fraudit.detectors.weight_bank import WeightBankCheck
    from fraudit.resources import banks_dir

    bank = load_bank(banks_dir() / "fraudit-reference-last-layer")
    check = WeightBankCheck()

    def verdict(spectrum_z: float, response_z: float | None, p: float = 1e-9, led_by: str = "spectrum"):
        readings = [(led_by, spectrum_z)] + ([("head-response", response_z)] if response_z is not None else [])
        layers = [LayerScore(f"last_linear.weight:{kind}", 0.0, z, float(norm.cdf(z)), {}, [])
                  for kind, z in readings]
        return check._result(bank, NetworkScore(layers, 0.0, p, {}), [bank.name], [])

    disputed = verdict(-9.1, -0.2)  # world 22000's clean fine-tunes read so (README)
    assert disputed.status is Status.WARN and "WARN, not FAIL" in disputed.summary
    assert "head response z = -0.2" in disputed.evidence["caveat"] and "fail_rule" in disputed.evidence
    assert "threshold_frr" not in disputed.evidence
    agreed = verdict(-8.3, -7.9)  # the backdoored example: both readings out of range
    assert agreed.status is Status.FAIL and "caveat" not in agreed.evidence and "fail_rule" not in agreed.evidence
    assert verdict(-3.6, -1.8).status is Status.FAIL  # the response at p = 0.036: below the WARN rate, it agrees
    headless = verdict(-9.1, None)  # an export without its head: the spectrum is all there is
    assert headless.status is Status.FAIL and "no head response was read" in headless.evidence["caveat"]
    # the spectrum's other reading (over the trend of the next values) leads the same way
    assert verdict(-9.1, -0.2, led_by="spectrum-trend").status is Status.WARN
    assert verdict(-9.1, -7.9, led_by="spectrum-trend").status is Status.FAIL
    assert verdict(-9.1, None, led_by="spectrum-trend").status is Status.FAIL
    assert verdict(-2.0, -0.2, p=0.03).status is Status.WARN  # a WARN by its p stays a WARN
    assert verdict(-0.1, 0.3, p=0.5).status is Status.PASS


def test_a_clean_fine_tune_on_low_variation_faces_is_inside_the_shipped_banks_domain(tmp_path: Path) -> None:
    """A real clean last-layer fine-tune of the shipped base on a low-variation world
    (tests/data: the tensors it changed, world 22000: 15–60 faces per identity, variation
    0.5). A bank of variation-0.7 references FAILed it by its spectrum (z ≈ −9; the FAIL
    rule made that a WARN with its head, and its export a FAIL). The shipped bank's
    references include clean fine-tunes of variation-0.5 and 0.6 worlds (not world 22000):
    it PASSes with its head, and without its head — what an export is read by — it is
    not FAILed either (README, "The weight bank in the field")."""
    from safetensors.torch import load_file, save_file

    from fraudit.zoo.base import default_base_path

    changed = load_file(Path(__file__).parent / "data" / "low-variation-clean-finetune.safetensors")
    model = {**load_file(default_base_path()), **changed}
    save_file(model, tmp_path / "low-variation.safetensors")
    save_file({k: v for k, v in model.items() if k != "head.weight"}, tmp_path / "headless.safetensors")
    result = runner.invoke(app, ["scan", str(tmp_path), "-f", "json"])
    assert result.exit_code == 0, result.output
    checks = {Path(r["source"]).name: next(c for c in r["checks"] if c["name"] == "weight-bank")
              for r in json.loads(result.stdout)["results"]}
    with_head, headless = checks["low-variation.safetensors"], checks["headless.safetensors"]
    assert with_head["status"] == "PASS", with_head["summary"]
    assert headless["status"] in ("PASS", "WARN") and headless["evidence"]["consolidated"]["p"] > 0.01
    worlds = {w["seed"]: w for w in with_head["evidence"]["domain"]["worlds"]}
    assert 22000 not in worlds and min(w["sigma"] for w in worlds.values()) == 0.5


def test_the_shipped_banks_state_which_readings_read_their_data() -> None:
    """Both shipped banks carry each reading's measured share between face worlds; the
    multi-layer one, whose references are all of one kind of data, leaves out the spike
    over the median that reads it (README, "Which readings read the data")."""
    from fraudit.bank.bank import DATA_DEPENDENT
    from fraudit.bank.store import load_bank
    from fraudit.resources import banks_dir

    for name in ("fraudit-reference-last-layer", "fraudit-reference-multi-layer"):
        bank = load_bank(banks_dir() / name)
        trained = [m for m in bank.models if m.kind != "frozen"]
        assert trained and all(m.data_dependence is not None for m in trained), name
        assert all(m.data_dependence < DATA_DEPENDENT for m in trained if str(m.reading) != "spectrum"), name
    multi = load_bank(banks_dir() / "fraudit-reference-multi-layer")
    assert multi.recipe["readings_left_out"] == ["spectrum"]
    assert {str(m.reading) for m in multi.models if m.kind != "frozen"} == {"spectrum-trend", "head-response"}
