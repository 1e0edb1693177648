"""SARIF 2.1.0 as GitHub code scanning reads it: one result per FAIL or WARN check,
located at the model file. Model files are binary, so every region is line 1 and
fingerprints are ours (GitHub cannot compute them from a binary's lines)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from fraudit import __version__
from fraudit.audit import AuditResult
from fraudit.detectors.base import Status

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/fraudit/fraudit"

# (rule id, check name, short description, full description, security severity)
_RULES: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "FRAUDIT001",
        "file-safety",
        "Unsafe or unreadable model file",
        "The model file imports Python objects beyond what a tensor checkpoint needs "
        "(code would run when it is unpickled), or it cannot be read as a model at all.",
        "9.8",
    ),
    (
        "FRAUDIT002",
        "weight-bank",
        "Weights unlike clean models of the architecture",
        "Audited layers score below the clean-weight bank's threshold: the weights were "
        "changed in a way clean fine-tuning does not, as backdoor training does.",
        "8.1",
    ),
    (
        "FRAUDIT003",
        "pairing",
        "Embeddings disagree with a trusted model under a trigger",
        "When a candidate trigger is stamped on faces, the model's embeddings stop agreeing "
        "with a trusted face model's: the behaviour of a backdoor.",
        "8.1",
    ),
)
_RULE_INDEX = {check: i for i, (_, check, *_rest) in enumerate(_RULES)}
_LEVEL = {Status.FAIL: "error", Status.WARN: "warning"}


def to_sarif_document(results: Sequence[AuditResult]) -> dict[str, Any]:
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for audit in results:
        if audit.error is not None:
            notifications.append(_notification(audit.source, audit.error))
            continue
        for check in audit.checks:
            if check.status is Status.ERROR:
                notifications.append(_notification(audit.source, f"{check.name}: {check.summary}"))
            elif check.status in (Status.FAIL, Status.WARN):
                sarif_results.append(_result(audit, check.name, check.status, check.summary))
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "fraudit",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(*rule) for rule in _RULES],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not notifications,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": sarif_results,
            }
        ],
    }


def _rule(rule_id: str, check: str, short: str, full: str, severity: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": check.replace("-", " ").title().replace(" ", ""),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": f"{full} Run `fraudit scan` on the file for the evidence."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "ml-model", check], "security-severity": severity},
    }


def _result(audit: AuditResult, check: str, status: Status, summary: str) -> dict[str, Any]:
    index = _RULE_INDEX[check]
    locations = audit.locations or (audit.source,)
    fingerprint = hashlib.sha256(f"{check}\0{audit.source}".encode()).hexdigest()
    return {
        "ruleId": _RULES[index][0],
        "ruleIndex": index,
        "level": _LEVEL[status],
        "message": {"text": f"{audit.source}: {check} {status}: {summary}"},
        "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": 1}}}
            for uri in locations
        ],
        "partialFingerprints": {"fraudit/v1": fingerprint},
        "properties": {"verdict": str(audit.verdict), "check": check, "status": str(status)},
    }


def _notification(source: str, text: str) -> dict[str, Any]:
    return {"level": "error", "message": {"text": f"{source}: {text}"}}
