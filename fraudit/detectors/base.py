"""What every check returns, and how results combine into a verdict."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text


class Status(enum.IntEnum):
    """Outcome of a check, ordered by severity so that a verdict is ``max()``.

    INCONCLUSIVE sits below WARN: a check that could not run is less alarming than
    one that saw something odd, but it is never a PASS.
    """

    PASS = 0
    INCONCLUSIVE = 1
    WARN = 2
    FAIL = 3
    ERROR = 4

    def __str__(self) -> str:
        return self.name

    @property
    def style(self) -> str:
        return _STYLE[self]

    def __rich__(self) -> Text:
        return Text(self.name, style=self.style)


_STYLE = {
    Status.PASS: "bold green",
    Status.INCONCLUSIVE: "bold yellow",
    Status.WARN: "bold dark_orange",
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
}


@dataclass(frozen=True)
class CheckResult:
    """One check's answer: a status, a one-line summary and machine-readable evidence.

    ``headline``: the summary cut to what a batch's table row has room for (the
    figure and the bound it was judged by); empty when the summary is short already."""

    name: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    headline: str = ""

    @property
    def brief(self) -> str:
        return self.headline or self.summary

    def __rich__(self) -> Text:
        return Text.assemble(f"{self.name}: ", self.status.__rich__(), f" {self.summary}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "summary": self.summary,
            **({"headline": self.headline} if self.headline else {}),
            "evidence": self.evidence,
        }


class FailOn(enum.StrEnum):
    """The lowest status that makes ``fraudit scan`` exit non-zero."""

    FAIL = "fail"
    WARN = "warn"
    INCONCLUSIVE = "inconclusive"


def exit_code(statuses: list[Status], *, fail_on: FailOn = FailOn.FAIL) -> int:
    """0 when every verdict clears the bar, 1 for a failing verdict, 2 for errors.

    Errors win over failures: a batch with an unreadable file is incomplete, and a
    gate must not report it as merely failing. INCONCLUSIVE maps to 2 (could not
    decide) and WARN to 1 when the bar is moved down to them.
    """
    code = 0
    for status in statuses:
        if status is Status.ERROR:
            code = max(code, 2)
        elif status is Status.FAIL:
            code = max(code, 1)
        elif status is Status.WARN and fail_on in (FailOn.WARN, FailOn.INCONCLUSIVE):
            code = max(code, 1)
        elif status is Status.INCONCLUSIVE and fail_on is FailOn.INCONCLUSIVE:
            code = max(code, 2)
    return code
