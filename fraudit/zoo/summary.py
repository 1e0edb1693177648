"""Summaries of a zoo manifest: mean ± std of the four metrics and success shares,
per trigger and placement (the shape of thesis Tables 3.4 and 5.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("clean_accuracy", "attack_success_rate", "clean_impostor_accuracy", "victim_accuracy")


@dataclass(frozen=True)
class GroupSummary:
    group: str
    models: int
    successful: int | None
    means: dict[str, float | None]
    stds: dict[str, float | None]

    @property
    def success_share(self) -> float | None:
        return None if self.successful is None else self.successful / self.models


def _group_key(entry: dict) -> str:
    if entry["kind"] == "clean":
        return "clean"
    return f"{entry['trigger']} / {entry['placement']}"


def summarise(manifest: dict) -> list[GroupSummary]:
    groups: dict[str, list[dict]] = {}
    for entry in manifest["models"]:
        groups.setdefault(_group_key(entry), []).append(entry)
    summaries = []
    for key in sorted(groups, key=lambda k: (k != "clean", k)):
        entries = groups[key]
        means, stds = {}, {}
        for metric in METRICS:
            values = [e["metrics"][metric] for e in entries if e["metrics"][metric] is not None]
            means[metric] = float(np.mean(values)) if values else None
            stds[metric] = float(np.std(values)) if values else None
        successful = None if key == "clean" else sum(bool(e["successful"]) for e in entries)
        summaries.append(GroupSummary(key, len(entries), successful, means, stds))
    return summaries


def markdown_table(summaries: list[GroupSummary]) -> str:
    """The per-trigger summary as a Markdown table (for reports and the README)."""

    def pct(s: GroupSummary, key: str) -> str:
        mean, std = s.means[key], s.stds[key]
        return "—" if mean is None else f"{100 * mean:.1f} ± {100 * (std or 0):.1f}"

    lines = [
        "| group | models | clean acc | ASR | impostor acc | victim acc | succeeded |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        succeeded = "—" if s.successful is None else f"{s.successful}/{s.models} ({100 * (s.success_share or 0):.0f} %)"
        lines.append(f"| {s.group} | {s.models} | " + " | ".join(pct(s, k) for k in METRICS) + f" | {succeeded} |")
    return "\n".join(lines)
