"""The terminal report: a panel per candidate (``AuditResult`` renders itself) and,
for a batch, a summary table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from fraudit.audit import AuditResult
from fraudit.printable import printable


@dataclass(frozen=True)
class BatchReport:
    """Every candidate's panel, then one summary row per candidate when there are several."""

    results: Sequence[AuditResult]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.results
        if len(self.results) > 1:
            yield summary_table(self.results)


def summary_table(results: Sequence[AuditResult]) -> Table:
    table = Table(title=f"fraudit: {len(results)} candidate(s)", title_justify="left")
    table.add_column("source", overflow="fold")
    table.add_column("architecture")
    table.add_column("verdict", no_wrap=True)
    table.add_column("reason", ratio=1)
    for result in results:
        arch = result.architecture.id if result.architecture else "—"
        table.add_row(Text(printable(result.source)), arch, result.verdict, Text(printable(result.brief)))
    return table
