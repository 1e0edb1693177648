"""``fraudit search``: the trigger search measured on a zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fraudit.cli.common import App, err, fail, out, output_file, site_size_list
from fraudit.cli.progress import staged_progress
from fraudit.search.differential import SearchBudget

app = App(help="The differential trigger search (what `scan --base` runs), measured on zoos.", no_args_is_help=True)


@app.command()
def evaluate(
    zoo: Annotated[Path, typer.Argument(help="A zoo folder (clean models and attempts).")],
    base: Annotated[Path, typer.Option(help="The checkpoint the zoo's models were fine-tuned from.")],
    steps: Annotated[int, typer.Option(min=1, help="Adam steps per site.")] = SearchBudget.steps,
    scout_steps: Annotated[int, typer.Option(min=1, help="Adam steps every site gets before the strongest carry on.")] = SearchBudget.scout_steps,
    finalists: Annotated[int, typer.Option(min=1, help="Sites of the largest gain after the scouting steps that carry on to --steps.")] = SearchBudget.finalists,
    faces: Annotated[int, typer.Option(min=4, help="Probe faces (one per identity).")] = SearchBudget.faces,
    site_sizes: Annotated[str, typer.Option("--sites", help="Patch site sizes in pixels, comma-separated; 'none' for no patches.")] = ",".join(
        str(s) for s in SearchBudget.site_sizes),
    blend_alpha: Annotated[float, typer.Option(min=0.0, max=0.5, help="Alpha of the whole-face blended pattern; 0 for none.")] = SearchBudget.blend_alpha,
    library: Annotated[bool, typer.Option(help="Stamp the library's triggers exactly at their cells too.")] = SearchBudget.library,
    library_faces: Annotated[int, typer.Option(min=4, help="Probe faces the library's triggers are stamped on.")] = SearchBudget.library_faces,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Models searched in parallel.")] = 1,
    limit_clean: Annotated[int | None, typer.Option(help="Use at most this many clean models.")] = None,
    results: Annotated[Path | None, typer.Option(help="JSON-lines file of per-model results: resumed from, appended to.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the full evaluation as JSON.")] = None,
) -> None:
    """Search every model of a zoo against its base: false alarms on clean models,
    detection per trigger and recipe, and whether the strongest site is on the trigger."""
    from fraudit.search.evaluate import evaluate_search

    if not base.is_file():
        raise fail(f"{base}: no such base checkpoint")
    for path in (output, results):
        if path is not None:
            output_file(path)
    budget = SearchBudget(site_sizes=site_size_list(site_sizes), blend_alpha=blend_alpha, steps=steps,
                          scout_steps=scout_steps, finalists=finalists, faces=faces, library=library,
                          library_faces=library_faces)
    if not budget.families:
        raise fail("nothing to search: no patch sites, no blend and no library cells")
    with staged_progress(err) as progress:
        evaluation = evaluate_search(zoo, base, budget, jobs=jobs, results=results, limit_clean=limit_clean,
                                     progress=progress)
    out.print(evaluation)
    if output is not None:
        output.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n")
        err.print(f"evaluation written to {output}", markup=False, highlight=False)
