"""Plain-text and markdown tables of metrics, for the terminal and the reports."""

from __future__ import annotations

from collections.abc import Mapping

from helo.models.metrics import LOWER_IS_BETTER, METRICS

ARROWS = {m: ("↓" if LOWER_IS_BETTER[m] else "↑") for m in METRICS}


def metrics_table(
    rows: Mapping[str, Mapping[str, float]], first: str = "model", extra: tuple[str, ...] = ()
) -> str:
    """A markdown table: one row per entry, one column per metric (arrow = better)."""
    header = [first, *[f"{m} {ARROWS[m]}" for m in METRICS], *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for name, values in rows.items():
        cells = [name, *[f"{values[m]:.4f}" for m in METRICS]]
        cells += [_cell(values.get(key)) for key in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
