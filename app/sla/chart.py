"""The weekly attainment chart of /stats, as geometry for an inline SVG.

Pure: numbers in, rectangles and labels out; the template draws them with CSS classes
(the page's Content-Security-Policy allows no inline style), and a table beside the chart
carries the same numbers for readers who do not see it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 30  # margins around the plot
MAX_X_LABELS = 14


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # the CSS class suffix, e.g. "first_response"
    title: str  # what a tooltip says: "2026-W02 · First response: 75% (3 of 4 kept)"
    percent: int


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: float = LEFT
    right: float = WIDTH - RIGHT
    top: float = TOP
    bottom: float = HEIGHT - BOTTOM
    bars: list[Bar] = field(default_factory=list)
    grid: list[Label] = field(default_factory=list)  # horizontal lines with their % label
    weeks: list[Label] = field(default_factory=list)  # x-axis labels
    legend: list[tuple[str, str]] = field(default_factory=list)  # (series, label)

    @property
    def empty(self) -> bool:
        return not self.bars


def attainment_chart(weeks: Sequence[str], series: Sequence[tuple[str, str]],
                     values: Mapping[tuple[str, str], tuple[int, int]]) -> Chart:
    """Grouped bars: per ISO week, one bar per series (metric) as high as its attainment.
    `values` maps (week, series) to (achieved, breached); weeks without decided clocks
    of a series get no bar."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    chart = Chart(legend=list(series))
    for percent in (0, 25, 50, 75, 100):
        chart.grid.append(Label(LEFT, TOP + plot_height * (1 - percent / 100), f"{percent}%"))
    if not weeks:
        return chart
    slot = plot_width / len(weeks)
    gap = max(min(slot * 0.2, 12.0), 1.0)
    bar_width = (slot - gap) / max(len(series), 1)
    every = -(-len(weeks) // MAX_X_LABELS)  # ceiling division
    for i, week in enumerate(weeks):
        x0 = LEFT + i * slot + gap / 2
        if i % every == 0:
            chart.weeks.append(Label(x0 + (slot - gap) / 2, HEIGHT - BOTTOM + 16,
                                     week.split("-")[1]))
        for j, (key, label) in enumerate(series):
            achieved, breached = values.get((week, key), (0, 0))
            decided = achieved + breached
            if not decided:
                continue
            share = achieved / decided
            height = plot_height * share
            chart.bars.append(Bar(
                x=round(x0 + j * bar_width, 2), y=round(TOP + plot_height - height, 2),
                width=round(max(bar_width - 1, 1), 2), height=round(max(height, 1.5), 2),
                series=key, percent=round(share * 100),
                title=f"{week} · {label}: {round(share * 100)}% ({achieved} of {decided} kept)"))
    return chart
