from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Generated faces and checkpoints go to a throwaway cache, never the user's.
os.environ.setdefault("FRAUDIT_CACHE_DIR", tempfile.mkdtemp(prefix="fraudit-test-cache-"))
# No test may talk to the real Hub or pick up a developer's token.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_TOKEN", None)
os.environ["NO_PROXY"] = "127.0.0.1,localhost"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A path that a malicious payload would create; it must never appear."""
    return tmp_path / "CANARY-payload-ran"


@pytest.fixture(scope="session")
def smoke_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke preset, built once per test session through the real CLI."""
    from typer.testing import CliRunner

    from fraudit.cli import app

    out = tmp_path_factory.mktemp("zoo") / "smoke"
    result = CliRunner().invoke(app, ["zoo", "build", "--preset", "smoke", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
