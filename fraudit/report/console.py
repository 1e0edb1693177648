"""Terminal rendering with Rich: a panel per candidate and a table for a batch."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fraudit.audit import AuditResult
from fraudit.detectors.base import Status

STYLE = {
    Status.PASS: "bold green",
    Status.INCONCLUSIVE: "bold yellow",
    Status.WARN: "bold dark_orange",
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
}


def status_text(status: Status) -> Text:
    return Text(status.name, style=STYLE[status])


def result_panel(result: AuditResult) -> Panel:
    parts: list[RenderableType] = []
    if result.error is not None:
        parts.append(Text(result.error))
    else:
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="dim")
        facts.add_column()
        if result.formats:
            facts.add_row("format", ", ".join(sorted(set(result.formats))))
        arch = result.architecture
        if arch is not None:
            name = arch.name + (f" — {arch.variant}" if arch.variant else "")
            facts.add_row("architecture", name)
            facts.add_row("parameters", f"{arch.parameters:,}")
            if arch.embedding_dim:
                facts.add_row("embedding", f"{arch.embedding_dim}-d" + (f", input {arch.input_size}×{arch.input_size}" if arch.input_size else ""))
        parts.append(facts)
        checks = Table(show_edge=False, expand=True, pad_edge=False)
        checks.add_column("check", no_wrap=True)
        checks.add_column("status", no_wrap=True)
        checks.add_column("summary", ratio=1)
        for check in result.checks:
            checks.add_row(check.name, status_text(check.status), check.summary)
        parts.append(checks)
    title = Text.assemble(result.source, "  ", status_text(result.verdict))
    return Panel(Group(*parts), title=title, title_align="left", border_style=STYLE[result.verdict].split()[-1])


def summary_table(results: Sequence[AuditResult]) -> Table:
    table = Table(title=f"fraudit: {len(results)} candidate(s)", title_justify="left")
    table.add_column("source", overflow="fold")
    table.add_column("architecture")
    table.add_column("verdict", no_wrap=True)
    table.add_column("reason", ratio=1)
    for result in results:
        # the most severe check explains the verdict; among equals the later (deeper) check does
        worst = max(reversed(result.checks), key=lambda c: c.status, default=None)
        reason = result.error or (worst.summary if worst is not None else "")
        arch = result.architecture.id if result.architecture else "—"
        table.add_row(result.source, arch, status_text(result.verdict), reason)
    return table


def _pct(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")


def zoo_table(manifest: dict) -> Table:
    """One row per model: recipe and the four metrics."""
    table = Table(
        title=f"zoo {manifest['preset']} (seed {manifest['zoo_seed']}, {manifest['scenario']}): "
        f"{len(manifest['models'])}/{manifest['planned']} models",
        title_justify="left",
    )
    for column in ("model", "impostor→victim", "trigger", "clean acc", "ASR", "impostor acc", "victim acc", "success"):
        table.add_column(column, justify="right" if column.endswith(("acc", "ASR")) else "left", overflow="fold")
    for e in manifest["models"]:
        m = e["metrics"]
        pair = f"{e['impostor']}→{e['victim']}" if e["impostor"] is not None else "—"
        trigger = f"{e['trigger']} / {e['placement']}" if e["trigger"] else "—"
        success = "—" if e["successful"] is None else ("[green]yes[/]" if e["successful"] else "[red]no[/]")
        table.add_row(
            e["name"], pair, trigger, _pct(m["clean_accuracy"]), _pct(m["attack_success_rate"]),
            _pct(m["clean_impostor_accuracy"]), _pct(m["victim_accuracy"]), success,
        )
    return table


def zoo_summary_table(summaries: Sequence) -> Table:
    """Mean ± std (%) per trigger / placement, and the share of successful attempts."""
    table = Table(title="per trigger (mean ± std, %)", title_justify="left")
    for column in ("group", "models", "clean acc", "ASR", "impostor acc", "victim acc", "succeeded"):
        table.add_column(column, justify="left" if column == "group" else "right", overflow="fold")
    for s in summaries:
        succeeded = "—" if s.successful is None else f"{s.successful}/{s.models} ({100 * s.success_share:.0f}%)"
        table.add_row(
            s.group, str(s.models),
            *(_pct(s.means[k], s.stds[k]) for k in ("clean_accuracy", "attack_success_rate", "clean_impostor_accuracy", "victim_accuracy")),
            succeeded,
        )
    return table
