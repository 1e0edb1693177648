"""The ``fraudit`` command line: argument parsing and rendering, no audit logic."""

from __future__ import annotations

import typer

from fraudit import __version__
from fraudit.cli import bank, pair, scan, search, zoo
from fraudit.cli.common import App

app = App(
    name="fraudit",
    help="Audit face-recognition models for backdoors and unsafe files before deployment.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.command(name="scan")(scan.scan)
app.add_typer(zoo.app, name="zoo")
app.add_typer(bank.app, name="bank")
app.add_typer(pair.app, name="pair")
app.add_typer(search.app, name="search")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fraudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Audit face-recognition models for backdoors and unsafe files before deployment."""


def main() -> None:
    app()
