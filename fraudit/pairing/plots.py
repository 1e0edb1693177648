"""Figure 5.3's picture for one pair: genuine, zero-effort-impostor and stamped
(poisoned) score histograms, with the thresholds at each FNMR."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fraudit.pairing.pair import PairCalibration
from fraudit.pairing.sweep import SweepRun
from fraudit.rates import format_rate


def score_histograms(pair: PairCalibration, run: SweepRun, cell: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(-1, 1, 81)
    for scores, label, colour in ((pair.genuine, "genuine (same face)", "tab:green"),
                                  (pair.impostor, "zero-effort impostor", "tab:grey"),
                                  (run.scores[cell], f"stamped: {cell}", "tab:red")):
        ax.hist(scores, bins=bins, density=True, alpha=0.5, label=label, color=colour)
    for fnmr, threshold in pair.thresholds.items():
        ax.axvline(threshold, linestyle="--", linewidth=1, color="black")
        ax.text(threshold, ax.get_ylim()[1] * 0.95, f" FNMR {format_rate(fnmr)}", rotation=90, va="top", fontsize=7)
    ax.set_xlabel(f"cosine in {pair.info.get('trusted', 'trusted')} space ({pair.kind} translator)")
    ax.set_ylabel("density")
    candidate = Path(str(pair.info.get("candidate", "candidate"))).name
    ax.set_title(f"{candidate} paired with {pair.info.get('trusted', 'trusted')}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
