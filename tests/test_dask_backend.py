"""Scans and zoo builds on a real Dask cluster (``distributed.LocalCluster``, worker
processes on this machine) give what the local backend gives."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudit.cli import app

distributed = pytest.importorskip("distributed", reason="the test extra installs dask[distributed]")

EXAMPLES = Path(__file__).parents[1] / "reference_models" / "examples"
runner = CliRunner()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    import dask

    # the scheduler gives up on a task at the first worker that dies under it (Dask's
    # default retries it on 3 more): fraudit's own rerun is then what the test sees
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _verdicts(document: dict) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    return [(r["source"], r["verdict"], [(c["name"], c["status"], c["summary"]) for c in r["checks"]])
            for r in document["results"]]


def test_a_batch_scan_on_dask_matches_the_local_one(scheduler: str, tmp_path: Path) -> None:
    """Same verdicts, checks and summaries, in input order; a file that breaks its audit
    is that candidate's ERROR and the batch goes on."""
    folder = tmp_path / "models"
    folder.mkdir()
    for i in range(3):
        shutil.copy(EXAMPLES / "backdoored.safetensors", folder / f"b{i}.safetensors")
        shutil.copy(EXAMPLES / "clean.safetensors", folder / f"c{i}.safetensors")
    (folder / "broken.safetensors").write_bytes(b"\xff" * 64)
    sources = [str(folder), str(tmp_path / "missing.safetensors")]
    reports = {}
    for name, options in (("local", ["--jobs", "2"]), ("dask", ["--backend", "dask", "--scheduler", scheduler])):
        result = runner.invoke(app, ["scan", *sources, *options, "-f", "json", "-o", str(tmp_path / f"{name}.json")])
        assert result.exit_code == 2, result.output  # an unreadable file and a missing path: ERROR
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert _verdicts(reports["dask"]) == _verdicts(reports["local"])
    verdicts = [r["verdict"] for r in reports["dask"]["results"]]
    assert verdicts.count("FAIL") == 3 and verdicts.count("PASS") == 3 and verdicts.count("ERROR") == 2


@pytest.mark.parametrize("backend", ["local", "dask"])
def test_a_worker_that_dies_is_that_candidates_error(backend: str, scheduler: str, tmp_path: Path) -> None:
    from helpers.crashing_check import CrashingCheck

    from fraudit.audit import AuditConfig, audit_all
    from fraudit.detectors.file_safety import FileSafetyCheck
    from fraudit.parallel import Backend, Workers
    from fraudit.sources import resolve_sources

    for name in ("a-ok", "b-crash", "c-ok"):
        shutil.copy(EXAMPLES / "clean.safetensors", tmp_path / f"{name}.safetensors")
    workers = Workers(jobs=2) if backend == "local" else Workers(Backend.DASK, 2, scheduler)
    results = audit_all(resolve_sources([str(tmp_path)]), workers=workers,
                        config=AuditConfig(checks=(FileSafetyCheck(), CrashingCheck())))
    assert [Path(r.source).stem for r in results] == ["a-ok", "b-crash", "c-ok"]
    assert [str(r.verdict) for r in results] == ["PASS", "ERROR", "PASS"], [r.error for r in results]
    assert results[1].error is not None and results[1].error.startswith("audit process failed")


def test_a_local_dask_cluster_is_started_when_no_scheduler_is_named(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(EXAMPLES), "--backend", "dask", "--jobs", "2", "-f", "json"])
    assert result.exit_code == 1, result.output
    assert [r["verdict"] for r in json.loads(result.stdout)["results"]] == ["FAIL", "PASS"]


def test_an_unreachable_scheduler_is_one_clear_error() -> None:
    result = runner.invoke(app, ["scan", str(EXAMPLES), "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["scan", str(EXAMPLES), "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2 and "needs --backend dask" in result.output


@pytest.mark.slow
def test_a_zoo_built_on_dask_matches_the_local_one(scheduler: str, tmp_path: Path) -> None:
    """The manifest (every model's recipe and metrics) and the weights: the same seeds
    and data, so the same models up to the float summation order of torch's threads."""
    import torch
    from safetensors.torch import load_file

    manifests = {}
    for name, options in (("local", ["--jobs", "2"]), ("dask", ["--backend", "dask", "--scheduler", scheduler])):
        out = tmp_path / name
        result = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--n-clean", "2", "--out", str(out), *options])
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "manifest.json").read_text())
        manifest.pop("updated")
        for model in manifest["models"]:
            model.pop("seconds")
        manifests[name] = manifest
    assert manifests["dask"] == manifests["local"]
    assert len(manifests["dask"]["models"]) == 4
    for model in manifests["local"]["models"]:
        local = load_file(tmp_path / "local" / "models" / f"{model['name']}.safetensors")
        remote = load_file(tmp_path / "dask" / "models" / f"{model['name']}.safetensors")
        assert local.keys() == remote.keys()
        assert all(torch.allclose(local[k].float(), remote[k].float(), rtol=1e-4, atol=1e-6) for k in local)
