"""``fraudit scan``: audit files, folders and Hugging Face repos."""

from __future__ import annotations

import enum
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fraudit.audit import AuditConfig, AuditResult, audit_all, default_checks
from fraudit.cli.common import BackendOption, SchedulerOption, err, fail, out, output_file, site_size_list, workers
from fraudit.detectors.base import FailOn, exit_code
from fraudit.detectors.trigger_search import TriggerSearchCheck
from fraudit.models.spec import Preprocessing
from fraudit.parallel import Backend, Workers
from fraudit.printable import printable
from fraudit.report import to_json_document, to_sarif_document
from fraudit.report.console import BatchReport
from fraudit.report.html import render_html
from fraudit.search.differential import SearchBudget
from fraudit.sources import Candidate, Resolved, resolve_sources


class OutputFormat(enum.StrEnum):
    RICH = "rich"
    JSON = "json"
    SARIF = "sarif"
    HTML = "html"


def scan(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Model files, folders (scanned recursively) or Hugging Face repos: "
            "hf://org/name@revision, or org/name with --revision.",
            show_default=False,
        ),
    ],
    revision: Annotated[
        str | None, typer.Option("--revision", "-r", help="Hub revision (branch, tag or commit) for org/name sources.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Hugging Face token for private or gated repos (default: HF_TOKEN or the saved login)."),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Report format.", case_sensitive=False)
    ] = OutputFormat.RICH,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the report to this file; with json, sarif or html the terminal still gets the readable report."
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the HTML report (one self-contained page) to this file, beside --format's report."),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(help="Lowest verdict that fails: fail (exit 1), warn (exit 1) or inconclusive (exit 2)."),
    ] = FailOn.FAIL,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Candidates audited in parallel.")] = 1,
    backend: BackendOption = Backend.LOCAL,
    scheduler: SchedulerOption = None,
    bank: Annotated[
        list[Path] | None,
        typer.Option(help="Weight bank folder (or folder of banks) to use instead of the shipped ones; repeatable."),
    ] = None,
    pair_with: Annotated[
        str | None,
        typer.Option(
            "--pair-with",
            help="Add the pairing check against this trusted model: dlib (the extra 'dlib') or a model source.",
        ),
    ] = None,
    pair_null: Annotated[
        Path | None,
        typer.Option(help="Clean-pair sweep null (from 'fraudit pair null'); default: the shipped one for the architecture."),
    ] = None,
    input_norm: Annotated[
        str | None,
        typer.Option(help="How candidates normalise their input, MEAN/SCALE for (x − MEAN) / SCALE on 0–255 RGB, e.g. 127.5/128 (default: the architecture's; for an ONNX graph InsightFace's 127.5/127.5, assumed)."),
    ] = None,
    input_size: Annotated[
        int | None,
        typer.Option(min=16, max=1024, help="Candidates' input size in pixels (default: the architecture's or the ONNX graph's; needed for a graph with a dynamic size)."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(help="The checkpoint candidates were fine-tuned from (a file or hf://org/name\\[/file]): adds the trigger search, which optimises patches that move a candidate but not its base."),
    ] = None,
    search_steps: Annotated[int, typer.Option(min=1, help="Trigger search: Adam steps per site.")] = SearchBudget.steps,
    search_scout_steps: Annotated[int, typer.Option(min=1, help="Trigger search: Adam steps every site gets before the strongest carry on.")] = SearchBudget.scout_steps,
    search_finalists: Annotated[int, typer.Option(min=1, help="Trigger search: sites of the largest gain after the scouting steps that carry on to --search-steps.")] = SearchBudget.finalists,
    search_faces: Annotated[int, typer.Option(min=4, help="Trigger search: probe faces (one per identity).")] = SearchBudget.faces,
    search_sites: Annotated[
        str, typer.Option(help="Trigger search: patch site sizes in pixels of the 64×64 probe frame, comma-separated ('none': the blend only).")
    ] = ",".join(str(s) for s in SearchBudget.site_sizes),
    search_library: Annotated[
        bool, typer.Option(help="Trigger search: stamp the library's triggers exactly at their cells too (forward passes only).")
    ] = SearchBudget.library,
    search_images: Annotated[
        Path | None, typer.Option(help="Trigger search: save the strongest patch found, stamped on a probe face, as PNG in this folder.")
    ] = None,
) -> None:
    """Audit models and print a verdict per model.

    Exit codes: 0 every verdict passes the --fail-on bar, 1 a FAIL (or WARN under
    --fail-on warn), 2 an ERROR (or INCONCLUSIVE under --fail-on inconclusive).
    """
    pool = workers(backend, jobs, scheduler)
    if pair_null is not None and pair_with is None:
        raise fail("--pair-null is the null of the pairing check: it needs --pair-with TRUSTED")
    missing = [str(p) for p in [*(bank or ()), *([pair_null] if pair_null else [])] if not p.exists()]
    if missing:
        raise fail(f"not found: {', '.join(missing)}")
    for path in (output, html):
        if path is not None:
            output_file(path)
    with err.status("Resolving sources…"):
        items = resolve_sources(sources, revision=revision, token=token)
    preprocessing = _preprocessing(input_norm, input_size)
    search = None
    if base is not None:
        budget = SearchBudget(site_sizes=site_size_list(search_sites), steps=search_steps, scout_steps=search_scout_steps,
                              finalists=search_finalists, faces=search_faces, library=search_library)
        search = TriggerSearchCheck(base=base, budget=budget, images=search_images)
    config = AuditConfig(checks=default_checks(banks=bank or (), pair_with=pair_with, pair_null=pair_null,
                                               search=search),
                         preprocessing=preprocessing)
    results = _audit_with_progress(items, config=config, workers=pool, console=err)
    # one document for the JSON and the page, so both carry the same creation time
    document = to_json_document(results, fail_on=fail_on)

    # The machine-readable report first: a gate must get it even if the terminal fails.
    if output_format is not OutputFormat.RICH:
        text = _document(output_format, results, document, config=config)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    if html is not None:
        html.write_text(render_html(document), encoding="utf-8")
    if output_format is OutputFormat.RICH or output is not None:
        _print_rich(results, output if output_format is OutputFormat.RICH else None)
    for path in (output, html):
        if path is not None:
            err.print(f"Report written to {printable(str(path))}", markup=False, highlight=False)
    raise typer.Exit(code=exit_code([r.verdict for r in results], fail_on=fail_on))


def _document(output_format: OutputFormat, results: list[AuditResult], document: dict[str, Any], *,
              config: AuditConfig) -> str:
    """The machine-readable or HTML report as text; ``document`` is the JSON report's."""
    if output_format is OutputFormat.HTML:
        return render_html(document)
    if output_format is OutputFormat.JSON:
        return json.dumps(document, indent=2) + "\n"
    return json.dumps(to_sarif_document(results, checks=config.checks), indent=2) + "\n"


def _audit_with_progress(items: list[Resolved], *, config: AuditConfig, workers: Workers, console: Console) -> list[AuditResult]:
    candidates = sum(isinstance(i, Candidate) for i in items)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        # one model is quick, unless pairing must embed faces with a slow trusted model
        disable=candidates < 2 and not config.runs_models,
    ) as progress:
        where = f" on {workers.describe()}" if workers.backend is Backend.DASK else ""
        task = progress.add_task(f"Auditing{where}", total=len(items))
        return audit_all(items, config=config, workers=workers, on_result=lambda _: progress.advance(task))


def _print_rich(results: list[AuditResult], output: Path | None) -> None:
    report = BatchReport(results)
    if output is None:
        out.print(report)
        return
    with output.open("w", encoding="utf-8") as handle:
        Console(file=handle, width=120).print(report)


def _preprocessing(norm: str | None, size: int | None) -> Preprocessing | None:
    """--input-norm MEAN/SCALE and --input-size, checked here so a typo fails before any audit."""
    if norm is None and size is None:
        return None
    mean = scale = None
    if norm is not None:
        try:
            mean, scale = (float(part) for part in norm.split("/"))
        except ValueError:
            raise fail(f"--input-norm takes MEAN/SCALE, e.g. 127.5/128; got {norm!r}") from None
        if not (math.isfinite(mean) and math.isfinite(scale)) or scale <= 0:
            raise fail(f"--input-norm {norm}: MEAN must be finite and SCALE positive")
    return Preprocessing(input_size=size, mean=mean, scale=scale)
