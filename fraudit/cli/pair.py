"""``fraudit pair``: calibrate a candidate against a trusted model, build a sweep
null from clean pairs, run the offline trigger sweep, score images at run time."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fraudit.cli.common import App, err, out, output_file, output_folder
from fraudit.cli.progress import staged_progress
from fraudit.faces.sources import SYNTHETIC
from fraudit.pairing.audit import Direction, PairingSetup
from fraudit.pairing.pair import TranslatorKind
from fraudit.pairing.sweep import DEFAULT_FALSE_ALARM, Statistic
from fraudit.rates import parse_rate

app = App(help="Model pairing: the candidate against a trusted face model (thesis ch. 5).", no_args_is_help=True)

Trusted = Annotated[str, typer.Option("--trusted", help="Trusted model: dlib (extra 'dlib') or a model source.")]
FacesOpt = Annotated[str, typer.Option("--faces", help="Calibration faces: synthetic, an image folder, or hf://datasets/org/name.")]
NFaces = Annotated[int, typer.Option("--n-faces", min=20, help="Calibration faces to use.")]
TranslatorOpt = Annotated[TranslatorKind, typer.Option("--translator", help="Embedding translator.", case_sensitive=False)]
DirectionOpt = Annotated[Direction, typer.Option("--direction", help="Which side is translated.", case_sensitive=False)]
ProbesOpt = Annotated[str, typer.Option("--probes", help="Sweep probe identities: synthetic, or an identity folder (root/<id>/*.jpg).")]
NIdentities = Annotated[int, typer.Option("--identities", min=2, help="Probe identities.")]
PerIdentity = Annotated[int, typer.Option("--per-identity", min=1, help="Probe faces per identity.")]
_defaults = PairingSetup()


# The options that make up a PairingSetup, shared by every command that pairs models:
# (parameter, annotation, default, PairingSetup field).
_SETUP_OPTIONS = (
    ("faces", FacesOpt, SYNTHETIC, "faces"),
    ("n_faces", NFaces, _defaults.n_faces, "n_faces"),
    ("translator", TranslatorOpt, _defaults.translator, "translator"),
    ("direction", DirectionOpt, _defaults.direction, "direction"),
    ("probes", ProbesOpt, SYNTHETIC, "probes"),
    ("identities", NIdentities, _defaults.n_identities, "n_identities"),
    ("per_identity", PerIdentity, _defaults.per_identity, "per_identity"),
)


def with_setup(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the setup options; it receives them as one ``setup`` argument."""
    signature = inspect.signature(command, eval_str=True)  # this module defers its annotations
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
              for name, annotation, default, _ in _SETUP_OPTIONS]
    own = [p for p in signature.parameters.values() if p.name != "setup"]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        setup = PairingSetup(**{field: kwargs.pop(name) for name, _, _, field in _SETUP_OPTIONS})
        command(setup=setup, **kwargs)

    parameters = [*own, *shared]
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__  # Typer must read this signature, not the command's
    return wrapper


@app.command()
@with_setup
def calibrate(
    candidate: Annotated[str, typer.Argument(help="The candidate model: file, folder or Hub repo.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Pair folder to write (pair.json + pair.safetensors).")],
    trusted: Trusted = "dlib",
    *,
    setup: PairingSetup,
) -> None:
    """Fit the translator on unlabelled faces; genuine/ZEI scores and FNMR thresholds on held-out faces."""
    from fraudit.loading import load_embedder
    from fraudit.pairing.audit import pair_models
    from fraudit.pairing.pair import save_pair

    output_folder(out_dir)
    cand, trust = load_embedder(candidate), load_embedder(trusted)
    with staged_progress(err) as progress:
        pair = pair_models(cand, trust, setup, progress=progress,
                           info={"candidate_source": candidate, "trusted_source": trusted})
    save_pair(pair, out_dir)
    out.print(pair)
    err.print(f"pair written to {out_dir}", markup=False, highlight=False)


@app.command()
@with_setup
def null(
    clean: Annotated[list[Path], typer.Argument(help="Clean models of the candidate's architecture: files, folders, or zoos (their clean models).")],
    out_file: Annotated[Path, typer.Option("--out", help="Null file to write (JSON with its sha256).")],
    trusted: Trusted = "dlib",
    *,
    setup: PairingSetup,
) -> None:
    """Sweep clean pairs: how often a trigger alone makes clean models disagree with the trusted one."""
    from fraudit.loading import load_embedder
    from fraudit.pairing.audit import build_null
    from fraudit.zoo.manifest import clean_checkpoints

    output_file(out_file)
    models = [load_embedder(str(p)) for p in clean_checkpoints(clean)]
    trust = load_embedder(trusted)
    with staged_progress(err) as progress:
        result = build_null(models, trust, setup, progress=progress)
    result.save(out_file)
    table = Table(title=f"clean-pair sweep statistics ({len(models)} pairs, {result.n_faces} faces per trigger)")
    for column in ("trigger@placement statistic", "mean", "max"):
        table.add_column(column, justify="right")
    for row in result.values:
        scale, unit = (100, "%") if row.statistic is Statistic.DISAGREEMENT else (1, "")
        table.add_row(row.key, f"{scale * result.mean(row):.3g}{unit}", f"{scale * result.max(row):.3g}{unit}")
    out.print(table)
    err.print(f"null written to {out_file}", markup=False, highlight=False)


@app.command()
def sweep(
    pair_folder: Annotated[Path, typer.Argument(help="A pair folder from 'fraudit pair calibrate'.")],
    null_file: Annotated[Path | None, typer.Option("--null", help="Clean-pair null (default: the shipped one for the architecture).")] = None,
    false_alarm: Annotated[float, typer.Option(min=1e-6, max=0.5, help="False-alarm rate of the FAIL bound.")] = DEFAULT_FALSE_ALARM,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write genuine / ZEI / stamped score histograms (PNG).")] = None,
) -> None:
    """The offline audit: every library trigger at every placement on probe faces of many identities."""
    from fraudit.loading import load_pair_models
    from fraudit.pairing.audit import audit_pair

    if plot is not None:
        output_file(plot)
    saved = load_pair_models(pair_folder)
    with staged_progress(err) as progress:
        audit = audit_pair(saved.candidate, saved.trusted, saved.setup, null_path=null_file, pair=saved.pair,
                           false_alarm=false_alarm, progress=progress)
    if plot is not None:
        from fraudit.pairing.plots import score_histograms

        score_histograms(saved.pair, audit.run, audit.verdict.worst.cell, plot)
    if as_json:
        sys.stdout.write(json.dumps({"pair": str(pair_folder), "probes": audit.probes.source,
                                     "verdict": "FAIL" if audit.failed else "PASS", **audit.verdict.to_dict()}, indent=2) + "\n")
    else:
        out.print(audit)
    raise typer.Exit(1 if audit.failed else 0)


@app.command()
def score(
    pair_folder: Annotated[Path, typer.Argument(help="A pair folder from 'fraudit pair calibrate'.")],
    images: Annotated[list[Path], typer.Argument(help="Face images (aligned crops).")],
    fnmr: Annotated[float, typer.Option(parser=parse_rate, metavar="RATE",
                                        help="Threshold to flag at: one of the pair's FNMRs (0.1%, 1%, 5%).")] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Run time: score each image through the pair; a score below the threshold is flagged."""
    from fraudit.loading import load_pair_models
    from fraudit.pairing.scoring import score_images

    saved = load_pair_models(pair_folder)
    scored = score_images(saved.pair, saved.candidate, saved.trusted, images, fnmr=fnmr)
    for row in scored:
        if as_json:
            sys.stdout.write(json.dumps(row) + "\n")
        else:
            flag = "FLAGGED" if row["flagged"] else "ok"
            typer.echo(f"{row['image']}\t{row['score']:.4f}\t{row['threshold']:.4f}\t{flag}")
    raise typer.Exit(1 if any(r["flagged"] for r in scored) else 0)


@app.command()
@with_setup
def evaluate(
    zoo: Annotated[Path, typer.Argument(help="A zoo folder (clean models and attempts).")],
    trusted: Trusted = "dlib",
    null_file: Annotated[Path | None, typer.Option("--null", help="Sweep null from clean models of another zoo; without it the sweep is skipped.")] = None,
    *,
    setup: PairingSetup,
    limit_clean: Annotated[int | None, typer.Option(help="Use at most this many clean models.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the full evaluation as JSON.")] = None,
) -> None:
    """Thesis Tables 5.2 / 5.3 on a zoo: poisoned samples flagged on clean pairs, passed on backdoored pairs."""
    from fraudit.loading import load_embedder
    from fraudit.pairing.evaluate import evaluate_zoo
    from fraudit.pairing.sweep import SweepNull

    if output is not None:
        output_file(output)
    trust = load_embedder(trusted)
    sweep_null = SweepNull.load(null_file) if null_file else None
    with staged_progress(err) as progress:
        result = evaluate_zoo(zoo, trust, setup, null=sweep_null, limit_clean=limit_clean, progress=progress)
    out.print(result)
    if output is not None:
        output.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        err.print(f"evaluation written to {output}", markup=False, highlight=False)
