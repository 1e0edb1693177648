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
from fraudit.detectors import file_safety, pairing, weight_bank
from fraudit.detectors.check import Check, SarifRule
from fraudit.printable import json_safe, uri

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/fraudit/fraudit"
_LEVEL = {Status.FAIL: "error", Status.WARN: "warning"}
# fraudit's own rules are always listed, so rule indices are stable across runs
# whichever checks a run enabled; a check added through the protocol adds its own.
_BUILTIN_RULES = ((file_safety.NAME, file_safety.RULE), (weight_bank.NAME, weight_bank.RULE),
                  (pairing.NAME, pairing.RULE))


def to_sarif_document(results: Sequence[AuditResult], *, checks: Sequence[Check] = ()) -> dict[str, Any]:
    """``checks`` are the checks the audit ran: each contributes its rule."""
    rules = dict(_BUILTIN_RULES) | {check.name: check.rule for check in checks}
    rule_index = {name: i for i, name in enumerate(rules)}
    ordered = list(rules.items())
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for audit in results:
        if audit.error is not None:
            notifications.append(_notification(audit.source, audit.error))
            continue
        if audit.skipped is not None:
            notifications.append(_notification(audit.source, f"skipped: {audit.skipped}", level="warning"))
            continue
        if audit.caveat is not None:
            notifications.append(_notification(audit.source, audit.caveat, level="note"))
        for check in audit.checks:
            if check.status is Status.ERROR:
                notifications.append(_notification(audit.source, f"{check.name}: {check.summary}"))
            elif check.status in (Status.FAIL, Status.WARN):
                index = rule_index[check.name]
                sarif_results.append(_result(audit, ordered[index][1], index, check.name, check.status, check.summary))
    failed = any(n["level"] == "error" for n in notifications)
    return json_safe({
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
                        "rules": [_rule(rule, name) for name, rule in ordered],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not failed,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": sarif_results,
            }
        ],
    })


def _rule(rule: SarifRule, check: str) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": check.replace("-", " ").title().replace(" ", ""),
        "shortDescription": {"text": rule.short},
        "fullDescription": {"text": rule.full},
        "help": {"text": f"{rule.full} Run `fraudit scan` on the file for the evidence."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "ml-model", check], "security-severity": rule.security_severity},
    }


def _result(audit: AuditResult, rule: SarifRule, index: int, check: str, status: Status, summary: str) -> dict[str, Any]:
    locations = audit.locations or (audit.source,)
    fingerprint = hashlib.sha256(f"{check}\0{audit.source}".encode("utf-8", "surrogateescape")).hexdigest()
    return {
        "ruleId": rule.id,
        "ruleIndex": index,
        "level": _LEVEL[status],
        "message": {"text": f"{audit.source}: {check} {status}: {summary}"},
        "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": uri(location)}, "region": {"startLine": 1}}}
            for location in locations
        ],
        "partialFingerprints": {"fraudit/v1": fingerprint},
        "properties": {"verdict": str(audit.verdict), "check": check, "status": str(status)},
    }


def _notification(source: str, text: str, *, level: str = "error") -> dict[str, Any]:
    return {"level": level, "message": {"text": f"{source}: {text}"}}
