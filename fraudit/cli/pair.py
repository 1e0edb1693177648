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

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from fraudit.cli.progress import staged_progress
from fraudit.errors import FrauditError
from fraudit.faces.sources import SYNTHETIC
from fraudit.pairing.audit import Direction, PairingSetup
from fraudit.pairing.pair import TranslatorKind
from fraudit.pairing.sweep import DEFAULT_FALSE_ALARM

app = typer.Typer(help="Model pairing: the candidate against a trusted face model (thesis ch. 5).", no_args_is_help=True)

Trusted = Annotated[str, typer.Option("--trusted", help="Trusted model: dlib (extra 'dlib') or a model source.")]
FacesOpt = Annotated[str, typer.Option("--faces", help="Calibration faces: synthetic, an image folder, or hf://datasets/org/name.")]
NFaces = Annotated[int, typer.Option("--n-faces", min=20, help="Calibration faces to use.")]
TranslatorOpt = Annotated[TranslatorKind, typer.Option("--translator", help="Embedding translator.", case_sensitive=False)]
DirectionOpt = Annotated[Direction, typer.Option("--direction", help="Which side is translated.", case_sensitive=False)]
ProbesOpt = Annotated[str, typer.Option("--probes", help="Sweep probe identities: synthetic, or an identity folder (root/<id>/*.jpg).")]
NIdentities = Annotated[int, typer.Option("--identities", min=2, help="Probe identities.")]
PerIdentity = Annotated[int, typer.Option("--per-identity", min=1, help="Probe faces per identity.")]
_defaults = PairingSetup()


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True).print(f"[red]error[/]: {message}")
    return typer.Exit(code)


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
    out: Annotated[Path, typer.Option(help="Pair folder to write (pair.json + pair.safetensors).")],
    trusted: Trusted = "dlib",
    *,
    setup: PairingSetup,
) -> None:
    """Fit the translator on unlabelled faces; genuine/ZEI scores and FNMR thresholds on held-out faces."""
    from fraudit.pairing.audit import pair_models
    from fraudit.pairing.embedders import load_embedder
    from fraudit.pairing.pair import save_pair

    try:
        cand, trust = load_embedder(candidate), load_embedder(trusted)
        with staged_progress(Console(stderr=True)) as progress:
            pair = pair_models(cand, trust, setup, progress=progress,
                               info={"candidate_source": candidate, "trusted_source": trusted})
    except (FrauditError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    save_pair(pair, out)
    _print_pair(pair, out)


def _print_pair(pair, out: Path) -> None:  # noqa: ANN001 - PairCalibration
    from fraudit.pairing.thresholds import passed_rate

    console = Console()
    console.print(f"pair [bold]{pair.info['candidate']}[/] → [bold]{pair.info['trusted']}[/] "
                  f"({pair.kind} translator, {pair.info['faces']}) written to {out}")
    console.print(f"genuine {pair.genuine.mean():.3f} ± {pair.genuine.std():.3f}, zero-effort impostor "
                  f"{pair.impostor.mean():.3f} ± {pair.impostor.std():.3f} on {len(pair.genuine)} held-out faces")
    table = Table()
    for column in ("FNMR", "threshold", "ZEI pass (FMR)"):
        table.add_column(column, justify="right")
    for fnmr, threshold in pair.thresholds.items():
        table.add_row(fnmr, f"{threshold:.3f}", f"{100 * passed_rate(pair.impostor, threshold):.1f}%")
    console.print(table)


@app.command()
@with_setup
def null(
    clean: Annotated[list[Path], typer.Argument(help="Clean models of the candidate's architecture: files, folders, or zoos (their clean models).")],
    out: Annotated[Path, typer.Option(help="Null file to write (JSON with its sha256).")],
    trusted: Trusted = "dlib",
    *,
    setup: PairingSetup,
) -> None:
    """Sweep clean pairs: how often a trigger alone makes clean models disagree with the trusted one."""
    from fraudit.pairing.audit import build_null
    from fraudit.pairing.embedders import load_embedder
    from fraudit.zoo.build import clean_checkpoints

    sources = [str(p) for p in clean_checkpoints(clean)]
    if len(sources) < 3:
        raise _fail(f"a null needs at least three clean models; found {len(sources)}")
    try:
        models = [load_embedder(s) for s in sources]
        trust = load_embedder(trusted)
        with staged_progress(Console(stderr=True)) as progress:
            result = build_null(models, trust, setup, progress=progress)
    except (FrauditError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    result.save(out)
    table = Table(title=f"clean-pair sweep statistics ({len(models)} pairs, {result.n_faces} faces per trigger)")
    for column in ("trigger@placement statistic", "mean", "max"):
        table.add_column(column, justify="right")
    for key, values in result.values.items():
        scale, unit = (100, "%") if key.endswith("disagreement") else (1, "")
        table.add_row(key, f"{scale * np.mean(values):.3g}{unit}", f"{scale * np.max(values):.3g}{unit}")
    Console().print(table)
    Console(stderr=True).print(f"null written to {out}")


def _reload(folder: Path):  # noqa: ANN202
    """A saved pair and its two embedders, checked against the fingerprints it was fitted with."""
    from fraudit.pairing.embedders import load_embedder
    from fraudit.pairing.pair import load_pair

    pair = load_pair(folder)
    cand, trust = load_embedder(pair.info["candidate_source"]), load_embedder(pair.info["trusted_source"])
    for side, model in (("candidate", cand), ("trusted", trust)):
        if model.fingerprint != pair.info[f"{side}_fingerprint"]:
            raise FrauditError(f"the {side} model at {pair.info[f'{side}_source']} changed since the pair was calibrated")
    return pair, cand, trust


@app.command()
def sweep(
    pair_folder: Annotated[Path, typer.Argument(help="A pair folder from 'fraudit pair calibrate'.")],
    null_file: Annotated[Path | None, typer.Option("--null", help="Clean-pair null (default: the shipped one for the architecture).")] = None,
    false_alarm: Annotated[float, typer.Option(min=1e-6, max=0.5, help="False-alarm rate of the FAIL bound.")] = DEFAULT_FALSE_ALARM,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write genuine / ZEI / stamped score histograms (PNG).")] = None,
) -> None:
    """The offline audit: every library trigger at every placement on probe faces of many identities."""
    from fraudit.pairing.audit import PairingSetup, reference_null_path, sweep_inputs, sweep_pair
    from fraudit.pairing.sweep import LIMITS, SweepNull, describe, judge

    try:
        pair, cand, trust = _reload(pair_folder)
        setup = PairingSetup.from_dict(pair.info["setup"])
        null_path = null_file or reference_null_path(cand.architecture, trust)
        if not null_path.is_file():
            raise FrauditError(f"no clean-pair null at {null_path}; build one with 'fraudit pair null'")
        null_model = SweepNull.load(null_path)
        if null_model.setup != setup.null_key(trust):
            raise FrauditError(f"{null_path} was built with another setup or trusted model")
        inputs = sweep_inputs(setup)
        with staged_progress(Console(stderr=True)) as progress:
            run = sweep_pair(pair, cand, trust, inputs, progress=progress)
    except (FrauditError, ValueError, KeyError, OSError) as exc:
        raise _fail(str(exc)) from exc
    verdict = judge(run, null_model, inputs.probes, false_alarm=false_alarm)
    if plot is not None:
        from fraudit.pairing.plots import score_histograms

        score_histograms(pair, run, verdict.worst.split(" ")[0], plot)
    if as_json:
        sys.stdout.write(json.dumps({"pair": str(pair_folder), "probes": inputs.probes.source,
                                     "verdict": "FAIL" if verdict.failed else "PASS", **verdict.to_dict()}, indent=2) + "\n")
    else:
        console = Console()
        table = Table(title=f"trigger sweep: {inputs.probes.source}, pair threshold at FNMR 1% = {run.threshold:.3f}")
        for column in ("trigger@placement", "statistic", "candidate", "clean pairs (mean)", "z", ""):
            table.add_column(column, justify="right")
        for key in sorted(verdict.z, key=verdict.z.get, reverse=True):  # type: ignore[arg-type]
            cell, statistic = key.split(" ")
            value, null_mean = verdict.statistics[key], float(np.mean(null_model.values[key]))
            shown = (f"{100 * value:.1f}%", f"{100 * null_mean:.1f}%") if statistic == "disagreement" else (f"{value:.3f}", f"{null_mean:.3f}")
            table.add_row(cell, statistic, *shown, f"{verdict.z[key]:.1f}", "[red]FAIL[/]" if verdict.z[key] > verdict.bound else "")
        console.print(table)
        console.print(f"clean probe faces flagged: {100 * verdict.clean_flag_rate:.1f}%; FAIL bound z > {verdict.bound:.2f} "
                      f"(false alarm {100 * false_alarm:g}% over {len(verdict.z)} rows, {len(null_model.pairs)} clean pairs)")
        for finding in verdict.findings:
            names = ", ".join(f"{n} ({r:.2f})" for n, r in finding.identities)
            console.print(f"[red]FAIL[/] {finding.row}: {describe(finding, trust.name)}; most affected identities {names}")
        if not verdict.failed:
            console.print("[green]PASS[/]: no trigger of the library moves the candidate beyond clean pairs")
        console.print(f"[dim]Limits: the sweep {LIMITS}.[/]")
    raise typer.Exit(1 if verdict.failed else 0)


@app.command()
def score(
    pair_folder: Annotated[Path, typer.Argument(help="A pair folder from 'fraudit pair calibrate'.")],
    images: Annotated[list[Path], typer.Argument(help="Face images (aligned crops).")],
    fnmr: Annotated[str, typer.Option(help="Threshold to flag at: one of the pair's FNMRs (0.1%, 1%, 5%).")] = "1%",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Run time: score each image through the pair; a score below the threshold is flagged."""
    from fraudit.pairing.scoring import score_images

    try:
        pair, cand, trust = _reload(pair_folder)
        scored = score_images(pair, cand, trust, images, fnmr=fnmr)
    except (FrauditError, ValueError, KeyError, OSError) as exc:
        raise _fail(str(exc)) from exc
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
    from fraudit.pairing.embedders import load_embedder
    from fraudit.pairing.evaluate import evaluate_zoo
    from fraudit.pairing.sweep import SweepNull

    try:
        trust = load_embedder(trusted)
        sweep_null = SweepNull.load(null_file) if null_file else None
        if sweep_null is not None and sweep_null.setup != setup.null_key(trust):
            raise FrauditError(f"{null_file} was built with another setup or trusted model")
        with staged_progress(Console(stderr=True)) as progress:
            result = evaluate_zoo(zoo, trust, setup, null=sweep_null, limit_clean=limit_clean, progress=progress)
    except (FrauditError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    summary = result.summary()
    console = Console()
    table = Table(title=f"{zoo.name} paired with {trust.name} ({setup.translator}, {setup.direction}); mean / worst")
    table.add_column("poisoned samples")
    fnmrs = [k.removeprefix("clean_flagged_") for k in summary if k.startswith("clean_flagged_")]
    for fnmr in fnmrs:
        table.add_column(f"at FNMR {fnmr}", justify="right")
    table.add_column("sweep", justify="right")

    def cells(stats: list[dict]) -> list[str]:
        return [f"{100 * s['mean']:.1f} / {100 * s['max']:.1f}%" if s else "—" for s in stats]

    false_alarms = summary.get("sweep_false_alarms")
    table.add_row(f"flagged on clean pairs ({summary['clean_models']})",
                  *cells([summary[f"clean_flagged_{f}"] for f in fnmrs]),
                  "—" if false_alarms is None else f"{100 * false_alarms:.0f}% false alarms")
    for trigger in sorted(k for k, v in summary.items() if isinstance(v, dict) and "successful" in v):
        entry = summary[trigger]
        detected = entry.get("sweep_detected")
        table.add_row(f"passed on {trigger} backdoors ({entry['successful']} successful)",
                      *cells([entry.get(f"backdoor_passed_{f}", {}) for f in fnmrs]),
                      "—" if detected is None else f"{100 * detected:.0f}% detected")
    console.print(table)
    if output is not None:
        output.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        Console(stderr=True).print(f"evaluation written to {output}")
