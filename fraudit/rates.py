"""Rates (FRR, FNMR, false-alarm) are floats everywhere in fraudit; this is the one
place that turns them into the labels people read ("1%", "0.1%") and back."""

from __future__ import annotations


def format_rate(rate: float) -> str:
    """0.01 → "1%", 0.001 → "0.1%"."""
    return f"{100 * rate:g}%"


def parse_rate(text: str | float) -> float:
    """"1%" → 0.01; a bare number is a fraction ("0.01" → 0.01); a float is returned as is."""
    if isinstance(text, float):
        return text
    value = text.strip()
    try:
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ValueError(f"not a rate: {text!r} (write 1% or 0.01)") from None
