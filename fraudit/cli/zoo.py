"""``fraudit zoo``: build and inspect the clean / backdoored test zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudit.cli.common import App, BackendOption, SchedulerOption, err, fail, out, output_file, output_folder, workers
from fraudit.cli.progress import staged_progress
from fraudit.parallel import Backend
from fraudit.zoo.presets import PRESETS, RESERVED_SEEDS

app = App(help="Build the test zoo of clean and backdoored face models (thesis ch. 3–4).", no_args_is_help=True)


@app.command()
def base(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the base model, its card and model card.")] = Path("reference_models/base"),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 10,
    arch: Annotated[str, typer.Option("--arch", help="Architecture to pretrain: fraudit-reference (the shipped base) or fraudit-mobileface.")] = "fraudit-reference",
) -> None:
    """Pretrain a base face model with ArcFace on synthetic identities (resumable)."""
    from fraudit.zoo.base import save_base
    from fraudit.zoo.pretrain import PretrainRecipe, pretrain

    output_folder(out_dir)
    with staged_progress(err) as progress:
        model, card = pretrain(PretrainRecipe(epochs=epochs, architecture=arch), progress=progress)
    path = save_base(model, card, out_dir)
    q = card["held_out_verification"]
    out.print(f"Saved {path}: held-out ROC AUC {q['roc_auc']:.4f}, TAR@FAR1e-3 {q['tar_at_far_1e-3']:.3f}",
              markup=False, highlight=False)


@app.command()
def build(
    preset: Annotated[str, typer.Option(help=f"One of: {', '.join(PRESETS)}.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Zoo folder (created; finished models are kept and skipped).")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Models trained in parallel.")] = 1,
    backend: BackendOption = Backend.LOCAL,
    scheduler: SchedulerOption = None,
    seed: Annotated[int, typer.Option(help="Zoo seed: model seeds, splits and impostor/victim pairs.")] = 0,
    base_model: Annotated[str | None, typer.Option("--base", help="Base checkpoint of any architecture fraudit can fine-tune, a file or hf://org/name\\[/file] (default: the shipped one).")] = None,
    world_seed: Annotated[int | None, typer.Option(help="Fine-tune on another synthetic face world (other identities).")] = None,
    identities: Annotated[int | None, typer.Option(min=20, help="Identities of that world (default: the preset's).")] = None,
    samples: Annotated[str | None, typer.Option("--samples-per-identity", help="Faces per identity of that world: N (every identity N) or MIN-MAX (a heavy tail between, as the presets'; default: the preset's).")] = None,
    variation: Annotated[float | None, typer.Option(min=0.0, help="Within-identity variation σ of that world's faces (default: the preset's).")] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="Flip, shift and brightness/contrast jitter of that world's faces (default: the preset's).")] = None,
    clean_only: Annotated[bool, typer.Option(help="Build only the preset's clean models.")] = False,
    n_clean: Annotated[int | None, typer.Option(min=0, help="Clean models to build (default: the preset's).")] = None,
    faces: Annotated[str | None, typer.Option(help="Fine-tune on your own labelled faces instead: an identity folder (<identity>/<image>) or hf://datasets/org/name laid out so.")] = None,
) -> None:
    """Fine-tune a preset's clean and backdoored models (resumable, with progress)."""
    from fraudit.formats.safe import load_checked
    from fraudit.sources import resolve_checkpoint
    from fraudit.zoo.build import build_zoo
    from fraudit.zoo.summary import summarise

    pool = workers(backend, jobs, scheduler)
    if preset not in PRESETS:
        raise fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    world_options = (world_seed, identities, samples, variation, augment)
    if faces is not None and any(option is not None for option in world_options):
        raise fail("--faces replaces the synthetic world: drop --world-seed, --identities, --samples-per-identity, "
                   "--variation and --augment")
    if world_seed in RESERVED_SEEDS:
        raise fail(f"world seed {world_seed} is reserved ({RESERVED_SEEDS[world_seed]}); choose another")
    chosen = PRESETS[preset].on_world(seed=world_seed, n_identities=identities, samples=faces_per_identity(samples),
                                      sigma=variation, augment=augment)
    if clean_only:
        chosen = chosen.clean_only()
    if n_clean is not None:
        chosen = chosen.with_clean(n_clean)
    base_path = None
    if base_model is not None:
        base_path = resolve_checkpoint(base_model)
        load_checked(base_path)  # a missing, unsafe or unreadable base fails now, not after the faces
    output_folder(out_dir)
    with staged_progress(err) as progress:
        manifest = build_zoo(chosen, out_dir, seed=seed, workers=pool, base_path=base_path, faces_source=faces,
                             progress=progress)
    out.print(summarise(manifest))


def faces_per_identity(text: str | None) -> tuple[int, int] | None:
    """``--samples-per-identity``: N or MIN-MAX, at least 2 (a split needs a face on each side)."""
    if text is None:
        return None
    parts = text.split("-")
    try:
        low, high = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise fail(f"--samples-per-identity {text!r}: give N or MIN-MAX, e.g. 30 or 15-60") from None
    if len(parts) > 2 or not 2 <= low <= high:
        raise fail(f"--samples-per-identity {text!r}: give N or MIN-MAX with 2 ≤ MIN ≤ MAX")
    return low, high


@app.command()
def measure(
    zoo: Annotated[Path, typer.Argument(help="A zoo folder (with manifest.json).")],
    base_model: Annotated[str | None, typer.Option("--base", help="The base the zoo was fine-tuned from, a file or hf://org/name\\[/file] (default: the shipped one).")] = None,
) -> None:
    """Measure each backdoor's attack through the embedding (1:1 verification against the
    victim's enrolled template at FMR 1e-3) for a zoo built before fraudit recorded it."""
    from fraudit.sources import resolve_checkpoint
    from fraudit.zoo.measure import measure_zoo
    from fraudit.zoo.summary import summarise

    base_path = resolve_checkpoint(base_model) if base_model is not None else None
    with staged_progress(err) as progress:
        manifest = measure_zoo(zoo, base_path=base_path, progress=progress)
    out.print(summarise(manifest))


@app.command("list")
def list_(
    zoo: Annotated[Path, typer.Argument(help="A zoo folder (with manifest.json).")],
    markdown: Annotated[bool, typer.Option(help="Print only the per-trigger summary, as Markdown.")] = False,
) -> None:
    """Print the zoo's models with their four metrics, and per-trigger summaries."""
    from fraudit.zoo.manifest import ZooManifest
    from fraudit.zoo.summary import markdown_table, summarise

    manifest = ZooManifest.read(zoo)
    if markdown:
        typer.echo(markdown_table(summarise(manifest)))
        return
    out.print(manifest)
    out.print(summarise(manifest))


@app.command()
def show(
    model: Annotated[Path, typer.Argument(help="A backdoored zoo model (.safetensors).")],
    out_file: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("zoo-model.png"),
) -> None:
    """Draw clean and poisoned samples of the model's impostor and its victim, with predictions."""
    from fraudit.zoo.show import show_model

    output_file(out_file)
    path = show_model(model, out_file)
    out.print(f"Wrote {path}", markup=False, highlight=False)
