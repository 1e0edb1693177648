from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may talk to the real Hub or pick up a developer's token.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_TOKEN", None)
os.environ["NO_PROXY"] = "127.0.0.1,localhost"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A path that a malicious payload would create; it must never appear."""
    return tmp_path / "CANARY-payload-ran"
