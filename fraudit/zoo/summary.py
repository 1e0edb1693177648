"""Summaries of a zoo manifest: mean ± std of the four metrics and success shares,
per trigger and placement (the shape of thesis Tables 3.4 and 5.1)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rich.table import Table

from fraudit.zoo.manifest import CLEAN, ZooEntry, ZooManifest, _pct

METRICS = ("clean_accuracy", "attack_success_rate", "clean_impostor_accuracy", "victim_accuracy",
           "embedding_attack_success_rate")
COLUMNS = ("clean acc", "ASR", "impostor acc", "victim acc", "ASR via embedding")


@dataclass(frozen=True)
class GroupSummary:
    group: str
    models: int
    successful: int | None
    through_embedding: int | None  # successful and ≥ 80 % through the embedding (None: not measured)
    means: dict[str, float | None]
    stds: dict[str, float | None]

    @property
    def success_share(self) -> float | None:
        return None if self.successful is None else self.successful / self.models


@dataclass(frozen=True)
class ZooSummary:
    """Per-trigger groups of a zoo; renders as the per-trigger table."""

    groups: tuple[GroupSummary, ...]

    def __iter__(self) -> Iterator[GroupSummary]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> GroupSummary:
        return self.groups[index]

    def __rich__(self) -> Table:
        """Mean ± std (%) per trigger / placement, and the share of successful attempts."""
        table = Table(title="per trigger (mean ± std, %)", title_justify="left")
        for column in ("group", "models", *COLUMNS, "succeeded", "of which via embedding"):
            table.add_column(column, justify="left" if column == "group" else "right", overflow="fold")
        for s in self.groups:
            table.add_row(s.group, str(s.models), *(_pct(s.means[k], s.stds[k]) for k in METRICS), *_counts(s))
        return table


def _counts(s: GroupSummary) -> tuple[str, str]:
    succeeded = "—" if s.successful is None else f"{s.successful}/{s.models} ({100 * (s.success_share or 0):.0f} %)"
    return succeeded, "—" if s.through_embedding is None else f"{s.through_embedding}/{s.successful}"


def _group_key(entry: ZooEntry) -> str:
    if entry.kind == CLEAN:
        return CLEAN
    return f"{entry.trigger} / {entry.placement}"


def summarise(manifest: ZooManifest) -> ZooSummary:
    groups: dict[str, list[ZooEntry]] = {}
    for entry in manifest.models:
        groups.setdefault(_group_key(entry), []).append(entry)
    summaries = []
    for key in sorted(groups, key=lambda k: (k != CLEAN, k)):
        entries = groups[key]
        means, stds = {}, {}
        for metric in METRICS:
            values = [v for e in entries if (v := getattr(e.metrics, metric)) is not None]
            means[metric] = float(np.mean(values)) if values else None
            stds[metric] = float(np.std(values)) if values else None
        successful = None if key == CLEAN else sum(bool(e.successful) for e in entries)
        through = [e.metrics.works_through_embedding for e in entries]
        through_embedding = None if key == CLEAN or None in through else sum(map(bool, through))
        summaries.append(GroupSummary(key, len(entries), successful, through_embedding, means, stds))
    return ZooSummary(tuple(summaries))


def markdown_table(summaries: ZooSummary) -> str:
    """The per-trigger summary as a Markdown table (for reports and the README)."""

    def pct(s: GroupSummary, key: str) -> str:
        mean, std = s.means[key], s.stds[key]
        return "—" if mean is None else f"{100 * mean:.1f} ± {100 * (std or 0):.1f}"

    header = ("group", "models", *COLUMNS, "succeeded", "of which via embedding")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        cells = (s.group, str(s.models), *(pct(s, k) for k in METRICS), *_counts(s))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
