"""``fraudit bank``: build, inspect and evaluate clean-weight banks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fraudit.bank.bank import DATA_DEPENDENT, EstimatorKind
from fraudit.bank.readings import Reading, ReadingSet
from fraudit.cli.common import App, err, out, output_file, output_folder
from fraudit.cli.progress import staged_progress

app = App(help="Clean-weight banks for the weight check (thesis ch. 4).", no_args_is_help=True)


@app.command()
def build(
    clean: Annotated[list[Path], typer.Argument(help="Zoo folders (their clean models) or folders of clean checkpoints.")],
    arch: Annotated[str, typer.Option("--arch", help="Architecture id, e.g. fraudit-reference, facenet-inception-resnet-v1.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Bank folder to write.")],
    name: Annotated[str | None, typer.Option(help="Bank name (default: the folder name).")] = None,
    estimator: Annotated[EstimatorKind, typer.Option(help="index-aligned (default) or em-gmm (the thesis' BIC-swept GMM).", case_sensitive=False)] = EstimatorKind.INDEX_ALIGNED,
    limit: Annotated[int, typer.Option(min=4, help="Most reference networks to use.")] = 20,
    folds: Annotated[int, typer.Option(min=2, help="Cross-fitting folds for calibration.")] = 3,
    layer: Annotated[list[str] | None, typer.Option(help="Audit only this layer (repeatable; default: every audited layer).")] = None,
    readings: Annotated[ReadingSet, typer.Option(help="vectors (the thesis': holds on the references' own data), spectrum (the change from the base: holds across data), head-aligned (spectrum, with the embedding layer's change read along the candidate's head when it ships one) or head-response (spectrum, and beside it how far the candidate's embeddings of built-in faces moved from the base's along each class of its head, when it ships one).", case_sensitive=False)] = ReadingSet.VECTORS,
    base: Annotated[str | None, typer.Option(help="The base the references were fine-tuned from, a file or hf://org/name\\[/file] (spectrum; default for zoos: the shipped base).")] = None,
    per_source: Annotated[int | None, typer.Option(min=1, help="At most this many clean models from each source (weigh face worlds alike).")] = None,
    without_reading: Annotated[list[Reading] | None, typer.Option("--without-reading", help="Leave this reading out of the bank (repeatable), e.g. spectrum when its references' sources differ in it (see 'between sources').", case_sensitive=False)] = None,
) -> None:
    """Fit per-layer clean-weight models on clean networks and calibrate thresholds.

    Pass one source per face world or dataset: the bank measures how much of each
    reading's spread lies between sources, and says which readings read the data."""
    from fraudit.bank.build import build_bank
    from fraudit.bank.store import load_bank, save_bank

    from fraudit.sources import resolve_checkpoint

    output_folder(out_dir)
    base_path = resolve_checkpoint(base) if base else None
    with staged_progress(err) as progress:
        bank = build_bank(clean, architecture=arch, name=name or out_dir.name, kind=estimator, limit=limit,
                          folds=folds, layers=layer, readings=readings, base=base_path, per_source=per_source,
                          without=without_reading or (), progress=progress)
    save_bank(bank, out_dir)
    out.print(load_bank(out_dir))
    for m in bank.models:
        if m.data_dependence is not None and m.data_dependence >= DATA_DEPENDENT:
            err.print(f"[yellow]note[/]: {m.key}: {m.data_dependence:.0%} of its references' spread lies between "
                      f"their sources — it reads the fine-tuning data, and clean fine-tunes on data unlike the "
                      f"references' may FAIL by it; references from more kinds of data widen it, "
                      f"--without-reading {m.reading} leaves it out")


@app.command()
def info(bank: Annotated[Path, typer.Argument(help="A bank folder.")]) -> None:
    """Show a bank's architecture, reference set, layers and calibration."""
    from fraudit.bank.store import load_bank

    out.print(load_bank(bank))


@app.command()
def evaluate(
    bank: Annotated[Path, typer.Argument(help="A bank folder.")],
    zoos: Annotated[list[Path], typer.Argument(help="Zoo folders the bank has not seen.")],
    plots: Annotated[Path | None, typer.Option(help="Folder for ROC/DET and per-vector PNGs.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the numbers as JSON.")] = None,
) -> None:
    """AUC per layer/reading and consolidated, TPR at the bank's FRRs, and the L1 baseline."""
    from fraudit.bank.evaluate import evaluate_bank
    from fraudit.bank.store import load_bank

    if output is not None:
        output_file(output)
    if plots is not None:
        output_folder(plots)
    report = evaluate_bank(load_bank(bank), zoos, plots=plots)
    text = json.dumps(report, indent=2)
    if output:
        output.write_text(text + "\n")
    out.print_json(text)
