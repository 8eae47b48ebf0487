"""What a report is: headline figures (each with its formula), a table, and the series a
chart draws. JSON for the API, CSV for the export, SVG for the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NA = "n/a"


@dataclass(frozen=True)
class Figure:
    """One number a reader reads: ``value`` None is shown "n/a" with ``why``."""

    key: str
    label: str
    label_zh: str
    value: float | int | None
    formula: str
    unit: str = ""  # "%", "s", "" (a count)
    why: str = ""  # when value is None: what is missing

    def shown(self) -> str:
        if self.value is None:
            return NA
        if self.unit == "%":
            return f"{self.value:.1f} %"
        if self.unit == "s":
            return f"{self.value:.1f} s"
        if isinstance(self.value, float):
            return f"{self.value:.3f}"
        return str(self.value)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "label_zh": self.label_zh,
                "value": self.value, "shown": self.shown(), "unit": self.unit,
                "formula": self.formula, "why": self.why or None}


@dataclass(frozen=True)
class Report:
    """``columns``/``rows``: the table (the CSV); ``chart``: (label, value) bars to draw,
    ``chart_label`` what the bars count."""

    name: str
    title: str
    title_zh: str
    figures: list[Figure]
    columns: list[str]
    rows: list[list[Any]]
    chart: list[tuple[str, float]] = field(default_factory=list)
    chart_label: str = ""
    notes: list[str] = field(default_factory=list)
    filter: dict[str, str | None] = field(default_factory=dict)
    source: str = "raw"  # "raw" (the call records) or "rollup" (the hourly roll-ups)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "title_zh": self.title_zh,
                "filter": self.filter, "figures": [f.as_json() for f in self.figures],
                "columns": self.columns, "rows": self.rows, "notes": self.notes,
                "source": self.source}

    def figure(self, key: str) -> Figure:
        for f in self.figures:
            if f.key == key:
                return f
        raise KeyError(key)


def pct(part: int | float | None, whole: int | float | None) -> float | None:
    """``part / whole`` in percent, None when there is nothing to divide by."""
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 2)
