"""Command groups whose detectors have not landed yet: they say so and exit 2."""

from __future__ import annotations

import typer

PENDING: dict[str, str] = {
    "pair": "model-pairing detector (calibrate, sweep and score against a trusted model)",
}


def pending_app(name: str, what: str) -> typer.Typer:
    sub = typer.Typer(help=f"The {what}. Not yet available in this version.")

    @sub.callback(invoke_without_command=True)
    def _pending(ctx: typer.Context) -> None:
        typer.echo(f"fraudit {name}: not yet available in this version ({what}).", err=True)
        raise typer.Exit(code=2)

    return sub
