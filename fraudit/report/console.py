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
        worst = max(result.checks, key=lambda c: c.status, default=None)
        reason = result.error or (worst.summary if worst is not None else "")
        arch = result.architecture.id if result.architecture else "—"
        table.add_row(result.source, arch, status_text(result.verdict), reason)
    return table
