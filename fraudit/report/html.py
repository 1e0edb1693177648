"""The HTML report: one self-contained page a reviewer opens in a browser, attaches
to a ticket or keeps beside the model — inline CSS and images, no network, no
JavaScript.

It is rendered from the JSON document (``to_json_document``), so the page never
says what the JSON does not; Jinja2 escapes every string, and names from files
and hubs arrive already made printable."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from fraudit.printable import printable
from fraudit.report.figures import figures_for

# evidence fields shown as pictures, not as base64 text
_PICTURES = {"patch_png_base64", "stamped_png_base64", "identities_png_base64"}


def render_html(document: dict[str, Any]) -> str:
    """The page of a JSON report document (``fraudit scan --format json``)."""
    environment = Environment(loader=PackageLoader("fraudit.report", "."), autoescape=select_autoescape(default=True),
                              trim_blocks=True, lstrip_blocks=True)
    results = [_result(r) for r in document["results"]]
    counts = ", ".join(f"{n} {s}" for s, n in document["summary"].items() if n)
    title = f"fraudit report: {counts or 'no candidates'}"
    return environment.get_template("report.html.j2").render(doc=document, results=results, title=title)


def _result(result: dict[str, Any]) -> dict[str, Any]:
    shown = {**result, "source": printable(result["source"]), "files": [printable(f) for f in result.get("files") or []],
             "reason": printable(str(result.get("reason", "")))}
    shown["checks"] = [{**c, "summary": printable(c["summary"]), "figures": figures_for(c),
                        "evidence_text": printable_block(_without_pictures(c.get("evidence") or {}))}
                       for c in result.get("checks") or []]
    return shown


def _without_pictures(evidence: dict[str, Any]) -> dict[str, Any]:
    return {k: ("(shown above)" if k in _PICTURES else v) for k, v in evidence.items()}


def printable_block(value: Any) -> str:
    """Evidence as indented JSON, each line printable."""
    return "\n".join(printable(line) for line in json.dumps(value, indent=2, ensure_ascii=False).splitlines())
