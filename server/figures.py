"""The figures of the chief's dashboard (web/dashboard.py) and the public transparency report
(web/transparency.py): counts per local day, hits by list kind, outcomes, searches by reason.

Charts are SVG drawn on the server: this module works out the geometry, `_chart.html` draws it.
No chart library, nothing to download, readable without JavaScript; every chart's numbers are
also in a table. Days are the department's local days (settings.time_zone): midnight to
midnight on its clocks, 23 or 25 hours long when daylight saving time starts or ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from contract.alerts import OPEN_STATUSES, OUTCOME_CHOICES
from contract.alerts import OUTCOME_LEGEND as OUTCOMES
from server.clock import day_starts, shown
from server.hotlists import LIST_KINDS
from server.store import queries_admin

DAYS = 30
TOP_REASONS = 8
NO_REASON, OTHER_REASONS = "(no reason given)", "all other reasons"  # the reasons chart's own buckets
KIND_NAMES = {kind: kind.replace("_", " ") for kind in LIST_KINDS}
CHART_WIDTH = 360  # viewBox units: about one unit per CSS pixel on a phone, so labels stay readable


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    value: int
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    x: float
    total: int
    segments: list[Segment]
    labelled: bool


@dataclass(frozen=True, slots=True)
class ColumnChart:
    width: int
    height: int
    baseline: float
    left: float
    bar_width: float
    columns: list[Column]
    ticks: list[tuple[float, int]]


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    label: str
    short: str
    value: int
    y: float
    width: float


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    label_width: float
    row_height: float
    bars: list[Bar]


def nice_top(value: int) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ that is at least `value`: round numbers on the gridlines."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def column_chart(labels: list[str], series: dict[str, list[int]], height: int = 190) -> ColumnChart:
    """Columns, one per label, each stacking the series' values in order (bottom first)."""
    left, bottom, top_pad = 34.0, 22.0, 10.0
    baseline, plot = height - bottom, height - bottom - top_pad
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = nice_top(max(totals, default=0))
    step = (CHART_WIDTH - left - 4) / max(len(labels), 1)
    columns = []
    for i, label in enumerate(labels):
        y, segments = baseline, []
        for key, values in series.items():
            if values[i]:
                h = values[i] / top * plot
                y -= h
                segments.append(Segment(key, values[i], round(y, 2), round(h, 2)))
        # Label every seventh day counting back from the last, so today is always named.
        labelled = (len(labels) - 1 - i) % 7 == 0
        columns.append(Column(label, round(left + i * step + step * 0.12, 2), totals[i], segments, labelled))
    gridlines = [0, top // 2, top] if top % 2 == 0 else [0, top]
    ticks = [(round(baseline - v / top * plot, 2), v) for v in gridlines]
    return ColumnChart(CHART_WIDTH, height, baseline, left, round(step * 0.76, 2), columns, ticks)


def bar_chart(items: list[tuple[str, str, int]]) -> BarChart:
    """Horizontal bars for (key, label, value) items, longest value = full width."""
    label_width, value_width, row_height = 132.0, 40.0, 30.0
    top = max((value for _, _, value in items), default=0) or 1
    span = CHART_WIDTH - label_width - value_width
    bars = [Bar(key, label, label if len(label) <= 18 else label[:17] + "…", value, i * row_height,
                round(value / top * span, 2)) for i, (key, label, value) in enumerate(items)]
    return BarChart(CHART_WIDTH, int(max(len(bars), 1) * row_height), label_width, row_height, bars)


async def dashboard_numbers(reader, now: int, zone: tzinfo) -> dict:
    bounds = day_starts(now, zone, DAYS)  # local midnights: DAYS days, then the end of today
    since, until = bounds[0], bounds[-1]
    reads = [0] * DAYS
    for row in await queries_admin.reads_per_day(reader, bounds):
        reads[row["day"]] = row["n"]
    by_kind: dict[str, list[int]] = {}
    for row in await queries_admin.hits_per_day_by_kind(reader, bounds):
        by_kind.setdefault(row["kind"], [0] * DAYS)[row["day"]] = row["n"]
    hits = {kind: by_kind[kind] for kind in sorted(by_kind, key=_kind_order)}
    statuses = {row["status"]: row["n"] for row in await queries_admin.hit_outcomes(reader, since, until)}
    outcomes = {key: statuses.get(key, 0) for key in OUTCOME_CHOICES}
    outcomes["open"] = sum(statuses.get(key, 0) for key in OPEN_STATUSES)
    reasons = [(row["reason"] or NO_REASON, row["n"])
               for row in await queries_admin.searches_by_reason(reader, since, until)]
    if len(reasons) > TOP_REASONS:  # a long tail of one-off reasons would drown the chart
        reasons = reasons[:TOP_REASONS - 1] + [(OTHER_REASONS, sum(n for _, n in reasons[TOP_REASONS - 1:]))]
    return {"days": [shown(d, zone, "date") for d in bounds[:-1]], "reads": reads, "hits": hits,
            "outcomes": outcomes, "reasons": reasons}


def _kind_order(kind: str) -> int:
    return LIST_KINDS.index(kind) if kind in LIST_KINDS else len(LIST_KINDS)


def charts(numbers: dict) -> dict:
    days, hits = numbers["days"], numbers["hits"]
    short = [d[5:] for d in days]
    hit_totals = [sum(values[i] for values in hits.values()) for i in range(len(days))]
    return {
        "reads": column_chart(short, {"reads": numbers["reads"]}),
        "hits": column_chart(short, hits),
        "hit_totals": hit_totals,
        "outcomes": bar_chart([(key, OUTCOMES[key], n) for key, n in numbers["outcomes"].items()]),
        "reasons": bar_chart([("search", reason, n) for reason, n in numbers["reasons"]]),
    }


def summaries(numbers: dict, hit_totals: list[int]) -> dict[str, str]:
    """One sentence per chart, read out by screen readers (the SVG's <desc>)."""
    reads, days = numbers["reads"], numbers["days"]
    busiest = max(range(len(reads)), key=reads.__getitem__)
    hits = ", ".join(f"{sum(values)} {KIND_NAMES.get(kind, kind)}" for kind, values in numbers["hits"].items())
    reasons = numbers["reasons"]
    return {
        "reads": f"{sum(reads)} reads; the busiest day was {days[busiest]} with {reads[busiest]}." if sum(reads)
        else "No reads.",
        "hits": f"{sum(hit_totals)} hits: {hits}." if hits else "No hits.",
        "outcomes": ", ".join(f"{n} {OUTCOMES[key].lower()}" for key, n in numbers["outcomes"].items()) + ".",
        "searches": f"{sum(n for _, n in reasons)} searches; the most common reason: {reasons[0][0]} ({reasons[0][1]})."
        if reasons else "No searches.",
    }
