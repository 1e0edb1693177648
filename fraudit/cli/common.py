"""What every command shares: the consoles, the one error handler, and the
``Typer`` subclass that puts every command behind it."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fraudit.errors import FrauditError
from fraudit.parallel import Backend, Workers
from fraudit.printable import printable

# One console for results (stdout) and one for progress and messages (stderr).
# Rich resolves sys.stdout / sys.stderr at print time, so test runners that swap
# them still see the output.
out = Console()
err = Console(stderr=True)

# The exit code of every error a user can meet, in every command (FAIL is 1).
ERROR_EXIT = 2

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise."""
    err.print(f"[red]error[/]: {escape(printable(message))}", soft_wrap=True, highlight=False)
    return typer.Exit(ERROR_EXIT)


def describe_os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def guarded(command: F) -> F:
    """Run ``command`` with every error mapped to one line on stderr and exit 2:
    fraudit's own errors and OS errors by their message, anything else (a bug) as an
    internal error, with its traceback only under ``FRAUDIT_DEBUG=1``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FrauditError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(describe_os_error(exc)) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in fraudit: still one line and exit 2
            if os.environ.get("FRAUDIT_DEBUG"):
                raise
            raise fail(f"internal error: {type(exc).__name__}: {exc} (FRAUDIT_DEBUG=1 shows the traceback)") from None

    return wrapper  # type: ignore[return-value]


class App(typer.Typer):
    """A Typer app whose every command runs behind ``guarded``."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().command(*args, **kwargs)

        def decorator(function: F) -> F:
            register(guarded(function))
            return function

        return decorator


def output_folder(path: Path) -> Path:
    """Create an output folder before any work, so an unwritable ``--out`` fails in
    a second rather than after minutes of training or fitting."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_file(path: Path) -> Path:
    """Check that a file can be written (its folder made) before any work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    return path


def site_size_list(text: str) -> tuple[int, ...]:
    """A trigger search's patch site sizes, ``8,12`` (``none`` for none), checked before any work."""
    if text.strip().lower() == "none":
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise fail(f"site sizes are pixels, e.g. 8,12 (or none); got {text!r}") from None
    if any(not 3 <= size <= 48 for size in sizes):
        raise fail(f"site sizes {text}: each must be 3 to 48 px")
    return sizes


BackendOption = Annotated[Backend, typer.Option(
    "--backend", case_sensitive=False,
    help="Where the parallel work runs: local processes (--jobs of them) or a Dask cluster "
    "(--scheduler's, or a local one of --jobs processes).")]
SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --backend dask).")]


def workers(backend: Backend, jobs: int, scheduler: str | None) -> Workers:
    """--backend, --jobs and --scheduler, checked together."""
    if scheduler is not None and backend is not Backend.DASK:
        raise fail("--scheduler is a Dask scheduler's address: it needs --backend dask")
    return Workers(backend, jobs, scheduler)
