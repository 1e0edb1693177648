"""The JSON report. Its shape is fixed by ``report.schema.json`` beside this file;
``SCHEMA_VERSION`` changes whenever a field changes meaning or disappears."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from fraudit import __version__
from fraudit.audit import AuditResult
from fraudit.detectors.base import FailOn, Status, exit_code
from fraudit.printable import json_safe

SCHEMA_VERSION = "1.0"


def to_json_document(results: Sequence[AuditResult], *, fail_on: FailOn) -> dict[str, Any]:
    verdicts = [r.verdict for r in results]
    return json_safe({
        "schema_version": SCHEMA_VERSION,
        "fraudit_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "fail_on": str(fail_on),
        "exit_code": exit_code(verdicts, fail_on=fail_on),
        "summary": {status.name: verdicts.count(status) for status in Status},
        "results": [r.to_dict() for r in results],
    })


def json_schema() -> dict[str, Any]:
    text = resources.files("fraudit.report").joinpath("report.schema.json").read_text()
    return json.loads(text)
