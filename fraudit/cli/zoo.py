"""``fraudit zoo``: build and inspect the clean / backdoored test zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fraudit.cli.progress import staged_progress
from fraudit.zoo.presets import PRESETS

app = typer.Typer(help="Build the test zoo of clean and backdoored face models (thesis ch. 3–4).", no_args_is_help=True)


@app.command()
def base(
    out: Annotated[Path, typer.Option(help="Folder for the base model, its card and model card.")] = Path("reference_models/base"),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 10,
) -> None:
    """Pretrain the reference face model with ArcFace on synthetic identities (resumable)."""
    from fraudit.zoo.base import save_base
    from fraudit.zoo.pretrain import PretrainRecipe, pretrain

    console = Console(stderr=True)
    with staged_progress(console) as progress:
        model, card = pretrain(PretrainRecipe(epochs=epochs), progress=progress)
    path = save_base(model, card, out)
    q = card["held_out_verification"]
    Console().print(
        f"Saved {path}: held-out ROC AUC {q['roc_auc']:.4f}, TAR@FAR1e-3 {q['tar_at_far_1e-3']:.3f}"
    )


@app.command()
def build(
    preset: Annotated[str, typer.Option(help=f"One of: {', '.join(PRESETS)}.")],
    out: Annotated[Path, typer.Option(help="Zoo folder (created; finished models are kept and skipped).")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Models trained in parallel.")] = 1,
    seed: Annotated[int, typer.Option(help="Zoo seed: model seeds, splits and impostor/victim pairs.")] = 0,
    base_model: Annotated[Path | None, typer.Option("--base", help="Base checkpoint (default: the shipped one).")] = None,
) -> None:
    """Fine-tune a preset's clean and backdoored models (resumable, with progress)."""
    from fraudit.report.console import zoo_summary_table
    from fraudit.zoo.build import build_zoo
    from fraudit.zoo.summary import summarise

    if preset not in PRESETS:
        Console(stderr=True).print(f"[red]unknown preset {preset!r}[/]; choose one of {', '.join(PRESETS)}")
        raise typer.Exit(2)
    console = Console(stderr=True)
    with staged_progress(console) as progress:
        manifest = build_zoo(PRESETS[preset], out, seed=seed, jobs=jobs, base_path=base_model, progress=progress)
    Console().print(zoo_summary_table(summarise(manifest)))


@app.command("list")
def list_(
    zoo: Annotated[Path, typer.Argument(help="A zoo folder (with manifest.json).")],
    markdown: Annotated[bool, typer.Option(help="Print only the per-trigger summary, as Markdown.")] = False,
) -> None:
    """Print the zoo's models with their four metrics, and per-trigger summaries."""
    from fraudit.report.console import zoo_summary_table, zoo_table
    from fraudit.zoo.build import MANIFEST, read_manifest
    from fraudit.zoo.summary import markdown_table, summarise

    if not (zoo / MANIFEST).is_file():
        Console(stderr=True).print(f"[red]{zoo} has no {MANIFEST}[/]: not a zoo folder")
        raise typer.Exit(2)
    manifest = read_manifest(zoo)
    if markdown:
        typer.echo(markdown_table(summarise(manifest)))
        return
    console = Console()
    console.print(zoo_table(manifest))
    console.print(zoo_summary_table(summarise(manifest)))


@app.command()
def show(
    model: Annotated[Path, typer.Argument(help="A backdoored zoo model (.safetensors).")],
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("zoo-model.png"),
) -> None:
    """Draw clean and poisoned samples of the model's impostor and its victim, with predictions."""
    from fraudit.zoo.show import show_model

    try:
        path = show_model(model, out)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        Console(stderr=True).print(f"[red]cannot draw {model}[/]: {exc}")
        raise typer.Exit(2) from exc
    Console().print(f"Wrote {path}")
