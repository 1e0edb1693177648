"""The pictures of the HTML report, drawn from a check's JSON evidence alone (the
JSON stays the source of truth: what the page shows, the document holds).

Each function takes one check's evidence and returns the figures it supports;
evidence without what a figure needs (an INCONCLUSIVE check, an older document)
gives none."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True)
class Figure:
    """An inline PNG and what it shows."""

    png_base64: str
    caption: str
    alt: str
    kind: str = "chart"  # chart | faces (a row of probe faces, shown twice their size) | pattern (a few pixels, enlarged)

    @property
    def src(self) -> str:
        return f"data:image/png;base64,{self.png_base64}"


def evidence_image(evidence: dict[str, Any], key: str) -> str | None:
    """A base64 PNG the check put in its evidence, if it is one: nothing that is not
    plain base64 of a PNG reaches a ``src`` attribute."""
    value = evidence.get(key)
    if not isinstance(value, str) or not _BASE64.match(value):
        return None
    try:
        head = base64.b64decode(value[:16])
    except ValueError:
        return None
    return value if head.startswith(b"\x89PNG") else None


def _pyplot():  # noqa: ANN202 - matplotlib's module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


def weight_bank(evidence: dict[str, Any]) -> list[Figure]:
    """Each reading's score among the clean references' held-out scores, with its
    thresholds; then the consolidated statistic among the references'."""
    panels = []
    for layer in evidence.get("layers") or []:
        reference = [v for v in (_number(x) for x in layer.get("reference") or []) if v is not None]
        score = _number(layer.get("score"))
        if reference and score is not None and np.ptp(reference) > 0:
            panels.append((str(layer.get("layer")), reference, score, layer.get("threshold") or {}, "score (lower: less like clean)"))
    consolidated = evidence.get("consolidated") or {}
    reference_f = [v for v in (_number(x) for x in consolidated.get("reference") or []) if v is not None]
    statistic = _number(consolidated.get("statistic"))
    if reference_f and statistic is not None:
        panels.append(("consolidated (Fisher)", reference_f, statistic, consolidated.get("threshold") or {}, "F (higher: less like clean)"))
    if not panels:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 1.5 * len(panels) + 0.4), squeeze=False)
    for ax, (name, reference, score, thresholds, label) in zip(axes[:, 0], panels):
        rng = np.random.default_rng(0)
        ax.scatter(reference, rng.uniform(-0.3, 0.3, len(reference)), s=14, color="tab:grey", alpha=0.7,
                   label=f"{len(reference)} clean references")
        ax.axvline(score, color="tab:red", linewidth=2, label="candidate")
        for rate, value in thresholds.items():
            if (value := _number(value)) is not None:
                ax.axvline(value, color="black", linestyle="--", linewidth=0.8)
                ax.text(value, 0.45, f" {rate}", fontsize=7, va="top")
        ax.set_ylim(-0.5, 0.5)
        ax.set_yticks([])
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return [Figure(_png(fig), "The candidate (red) among the clean references' held-out scores (grey), with the "
                   "thresholds at each false-rejection rate (dashed).", "weight-bank readings against the clean references")]


def pairing(evidence: dict[str, Any]) -> list[Figure]:
    """Each sweep row's z against the clean-pair null, with the FAIL bound; then the
    most affected probe identities wearing the strongest finding's trigger."""
    sweep = evidence.get("sweep") or {}
    z = {str(k): v for k, v in (sweep.get("z") or {}).items() if _number(v) is not None}
    bound = _number(sweep.get("bound_z"))
    figures = []
    if z and bound is not None:
        rows = sorted(z, key=z.__getitem__)
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 1.0))
        values = [z[r] for r in rows]
        ax.barh(range(len(rows)), values, color=["tab:red" if v > bound else "tab:grey" for v in values])
        ax.axvline(bound, color="black", linestyle="--", linewidth=1)
        ax.text(bound, len(rows) - 0.5, f" FAIL above z = {bound:.2f}", fontsize=7, va="top")
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        ax.set_xlabel("z against clean pairs", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        figures.append(Figure(_png(fig), "Every trigger and placement of the sweep, read by both statistics, against "
                              "the clean pairs' spread; red rows pass the bound.", "trigger sweep rows against the null"))
    if image := evidence_image(evidence, "identities_png_base64"):
        findings = sweep.get("findings") or [{}]
        names = ", ".join(str(n) for n, *_ in findings[0].get("identities") or [])
        figures.append(Figure(image, f"The most affected probe identities ({names}) wearing "
                              f"{findings[0].get('cell', 'the trigger')}.", "most affected probe identities", "faces"))
    return figures


def trigger_search(evidence: dict[str, Any]) -> list[Figure]:
    """Where on the face the search found the most (gain per pixel: the largest of
    the sites covering it), and the pattern found, alone and worn by probe faces."""
    figures = []
    sites = [s for s in evidence.get("site_gains") or [] if isinstance(s, list) and len(s) == 4
             and all(_number(v) is not None for v in s)]
    bound = _number(evidence.get("bound"))
    if sites:
        reach = int(max(max(top, left) + size for top, left, size, _ in sites))
        side = max(int(_number(evidence.get("frame_size")) or 0), reach)
        gains = np.full((side, side), np.nan)
        for top, left, size, gain in sites:
            top, left, size = int(top), int(left), int(size)
            block = gains[top : top + size, left : left + size]
            gains[top : top + size, left : left + size] = np.fmax(block, gain)
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(3.6, 3.2))
        image = ax.imshow(gains, cmap="magma", vmin=0, vmax=max(np.nanmax(gains), bound or 0))
        colorbar = fig.colorbar(image, ax=ax, fraction=0.046)
        if bound is not None:
            colorbar.ax.axhline(bound, color="cyan", linewidth=2)
        colorbar.ax.tick_params(labelsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("gain over the base, per place", fontsize=9)
        fig.tight_layout()
        figures.append(Figure(_png(fig), "How much more the best patch at each place moves the candidate than its "
                              "base, after the steps that place got (the strongest places get the whole budget: "
                              "see what was searched); the cyan line on the scale is the clean fine-tunes' bound.",
                              "trigger search gain over the face"))
    if image := evidence_image(evidence, "stamped_png_base64"):
        figures.append(Figure(image, "What the search found furthest past its bound (with nothing past one: the "
                              "strongest patch), worn by probe faces.",
                              "probe faces wearing the strongest pattern found", "faces"))
    if image := evidence_image(evidence, "patch_png_base64"):
        figures.append(Figure(image, "The pattern alone (enlarged).", "the strongest pattern found", "pattern"))
    return figures


FIGURES: dict[str, Callable[[dict[str, Any]], list[Figure]]] = {
    "weight-bank": weight_bank, "pairing": pairing, "trigger-search": trigger_search}


def figures_for(check: dict[str, Any]) -> list[Figure]:
    """The figures of one check of a JSON document (none for a check without pictures)."""
    draw = FIGURES.get(str(check.get("name")))
    evidence = check.get("evidence")
    return draw(evidence) if draw is not None and isinstance(evidence, dict) else []
