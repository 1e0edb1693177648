"""``fraudit bank``: build, inspect and evaluate clean-weight banks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fraudit.cli.progress import staged_progress

app = typer.Typer(help="Clean-weight banks for the weight check (thesis ch. 4).", no_args_is_help=True)


@app.command()
def build(
    clean: Annotated[list[Path], typer.Argument(help="Zoo folders (their clean models) or folders of clean checkpoints.")],
    arch: Annotated[str, typer.Option("--arch", help="Architecture id, e.g. fraudit-reference, facenet-inception-resnet-v1.")],
    out: Annotated[Path, typer.Option(help="Bank folder to write.")],
    name: Annotated[str | None, typer.Option(help="Bank name (default: the folder name).")] = None,
    estimator: Annotated[str, typer.Option(help="index-aligned (default) or em-gmm (the thesis' BIC-swept GMM).")] = "index-aligned",
    limit: Annotated[int, typer.Option(min=4, help="Most reference networks to use.")] = 20,
    folds: Annotated[int, typer.Option(min=2, help="Cross-fitting folds for calibration.")] = 3,
) -> None:
    """Fit per-layer clean-weight models on clean networks and calibrate thresholds."""
    from fraudit.bank.bank import EstimatorKind
    from fraudit.bank.build import build_bank
    from fraudit.bank.store import save_bank

    try:
        kind = EstimatorKind(estimator)
    except ValueError:
        Console(stderr=True).print(f"[red]unknown estimator {estimator!r}[/]: index-aligned or em-gmm")
        raise typer.Exit(2) from None
    try:
        with staged_progress(Console(stderr=True)) as progress:
            bank = build_bank(clean, architecture=arch, name=name or out.name, kind=kind, limit=limit, folds=folds, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        Console(stderr=True).print(f"[red]cannot build the bank[/]: {exc}")
        raise typer.Exit(2) from exc
    save_bank(bank, out)
    _print_info(out)


@app.command()
def info(bank: Annotated[Path, typer.Argument(help="A bank folder.")]) -> None:
    """Show a bank's architecture, reference set, layers and calibration."""
    _print_info(bank)


def _print_info(folder: Path) -> None:
    from fraudit.bank.store import bank_header

    try:
        header = bank_header(folder)
    except FileNotFoundError:
        Console(stderr=True).print(f"[red]{folder} is not a bank[/]")
        raise typer.Exit(2) from None
    console = Console()
    console.print(
        f"bank [bold]{header['name']}[/] for [bold]{header['architecture']}[/]: {header['reference_size']} clean reference "
        f"networks, thresholds at FRR {', '.join(f'{100 * f:g}%' for f in header['frr'])}, estimator {header['recipe'].get('estimator')}"
    )
    table = Table()
    for column in ("layer", "reading", "kind", "PCA dims", "components", "clean score (mean ± std)"):
        table.add_column(column)
    for m in header["models"]:
        cal = m["calibration"]
        table.add_row(m["layer"], m["reading"], m["kind"], str(m.get("pca_dims", "—")), str(m.get("components", "—")),
                      "bit-identical to base" if m["kind"] == "frozen" else f"{cal['mean']:.1f} ± {cal['std']:.1f}")
    console.print(table)


@app.command()
def evaluate(
    bank: Annotated[Path, typer.Argument(help="A bank folder.")],
    zoos: Annotated[list[Path], typer.Argument(help="Zoo folders the bank has not seen.")],
    plots: Annotated[Path | None, typer.Option(help="Folder for ROC/DET and per-vector PNGs.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the numbers as JSON.")] = None,
) -> None:
    """AUC per layer/reading and consolidated, TPR at the bank's FRRs, and the L1 baseline."""
    from fraudit.bank import evaluate as ev
    from fraudit.bank.store import load_bank
    from fraudit.formats.safe import load_checked
    from fraudit.zoo.base import BASE_FILE, default_base_dir

    loaded = load_bank(bank)
    base_path = default_base_dir() / BASE_FILE
    base = {k: v.float().numpy() for k, v in load_checked(base_path).items()} if loaded.architecture == "fraudit-reference" else None
    models = ev.score_zoo_models(loaded, zoos, base_weights=base)
    report = ev.summarise(loaded, models)
    report["protocol"] = (
        f"bank fitted and calibrated on {len(loaded.reference)} clean networks only; evaluated on "
        f"{', '.join(z.name for z in zoos)} (the bank's own reference networks excluded)"
    )
    if plots is not None:
        paths = ev.plot(loaded, models, plots)
        clean = next((m for m in models if m.kind == "clean"), None)
        bad = next((m for m in models if m.successful), None)
        if clean and bad:
            zoo_of = {z.name: z for z in zoos}
            pick = lambda m: zoo_of[m.name.split("/")[0]] / "models" / m.name.split("/")[1]  # noqa: E731
            paths.append(ev.vector_picture(loaded, pick(clean), pick(bad), plots / "per_vector.png"))
        report["plots"] = [str(p) for p in paths]
    text = json.dumps(report, indent=2)
    if output:
        output.write_text(text + "\n")
    Console().print_json(text)
