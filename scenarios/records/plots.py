"""Learning-curve, CUSUM and LC-CUSUM figures as PNG bytes (matplotlib's Agg canvas: no GUI backend).

Every chart puts attempts on a whole-number axis: position *n* is the trainee's *n*-th finished
attempt at the procedure, and its tick is labelled with that attempt's record ID, the number the
report's attempt table shows, so a reader can go from a point on a curve to its row.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fluorosim.scenarios.records.cusum import CusumChart
from fluorosim.scenarios.records.learning import CURVE_METRICS, LearningCurve

PASS_COLOUR = "#2a7a4a"
FAIL_COLOUR = "#c0392b"
LINE_COLOUR = "#34495e"
#: At most this many tick labels on an attempt axis (beyond it every k-th attempt is labelled).
MAX_TICK_LABELS = 25


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _attempt_axis(axes, attempt_ids: Sequence[int], with_start: bool = False) -> None:
    """Whole-number ticks at 1..n labelled with the attempt IDs (and 0 = start for CUSUMs)."""
    n = len(attempt_ids)
    step = max(1, -(-n // MAX_TICK_LABELS))
    positions = list(range(1, n + 1, step))
    labels = [str(attempt_ids[p - 1]) for p in positions]
    if with_start:
        positions, labels = [0, *positions], ["start", *labels]
    axes.set_xticks(positions, labels, fontsize=7)
    axes.set_xlim(-0.5 if with_start else 0.5, n + 0.5)
    axes.set_xlabel("attempt ID (in the order attempted)", fontsize=8)
    axes.tick_params(axis="y", labelsize=7)


def learning_curve_png(curve: LearningCurve, pass_mark: float | None = None) -> bytes:
    """Score per attempt, green passes and red fails, with the pass-mark line."""
    figure = Figure(figsize=(6.6, 2.6), dpi=130)
    axes = figure.add_subplot(1, 1, 1)
    numbers = list(range(1, curve.attempts + 1))
    scores = [s if s is not None else float("nan") for s in curve.scores]
    axes.plot(numbers, scores, color=LINE_COLOUR, linewidth=1.2)
    for n, score, passed in zip(numbers, scores, curve.passed, strict=True):
        axes.plot(n, score, "o", color=PASS_COLOUR if passed else FAIL_COLOUR, markersize=5)
    if pass_mark is not None:
        axes.axhline(pass_mark, color="#555", linestyle="--", linewidth=1)
        axes.text(
            0.6,
            pass_mark + 1.5,
            f"pass mark {pass_mark:.0f}",
            fontsize=7,
            color="#555",
            va="bottom",
        )
    _attempt_axis(axes, curve.attempt_ids)
    axes.set_ylabel("composite score", fontsize=8)
    axes.set_ylim(0, 100)
    axes.grid(axis="y", color="#ddd", linewidth=0.5)
    figure.tight_layout()
    return _png(figure)


def _cusum_png(
    chart: CusumChart | None,
    attempt_ids: Sequence[int],
    limits: list[tuple[float, str, str]],
    ylabel: str,
    floor: float | None = None,
) -> bytes:
    """A cumulative sum as a step chart from 0 at the start, with dashed (value, colour, label)
    limit lines; the y range covers the limits and the values (from ``floor`` when given)."""
    figure = Figure(figsize=(6.6, 2.4), dpi=130)
    axes = figure.add_subplot(1, 1, 1)
    if chart is not None and chart.values:
        numbers = list(range(0, len(chart.values) + 1))
        axes.step(numbers, [0.0, *chart.values], where="post", color=LINE_COLOUR)
        for value, colour, label in limits:
            axes.axhline(value, color=colour, linestyle="--", linewidth=1)
            axes.text(0, value, f" {label}", fontsize=7, va="bottom")
        values = [v for v, _, _ in limits] + list(chart.values)
        low = floor if floor is not None else min(values) - 0.5
        axes.set_ylim(low, max(values) + 0.5)
    _attempt_axis(axes, attempt_ids, with_start=True)
    axes.set_ylabel(ylabel, fontsize=8)
    figure.tight_layout()
    return _png(figure)


def cusum_png(curve: LearningCurve) -> bytes:
    """The binary CUSUM of failures with its decision limits h0 (competent) and h1 (unacceptable)."""
    chart = curve.cusum
    limits = (
        [
            (chart.h1, FAIL_COLOUR, f"h1 = {chart.h1:+.2f}: unacceptable"),
            (chart.h0, PASS_COLOUR, f"h0 = {chart.h0:+.2f}: competent"),
        ]
        if chart
        else []
    )
    return _cusum_png(chart, curve.attempt_ids, limits, "CUSUM of failures")


def lc_cusum_png(curve: LearningCurve) -> bytes:
    """The LC-CUSUM (Biau & Porcher 2010): competence is declared where it reaches its limit h."""
    chart = curve.lc_cusum
    limits = [(chart.h1, PASS_COLOUR, f"h = {chart.h1:.2f}: competent")] if chart else []
    return _cusum_png(chart, curve.attempt_ids, limits, "LC-CUSUM", floor=-0.2)


def series_png(curve: LearningCurve) -> bytes:
    """Time, shots, dose and fluoroscopy time per attempt, one small chart each."""
    figure = Figure(figsize=(6.5, 3.6), dpi=100)
    numbers = list(range(1, curve.attempts + 1))
    for index, (name, title) in enumerate(CURVE_METRICS.items(), start=1):
        axes = figure.add_subplot(2, 2, index)
        values = [np.nan if v is None else v for v in curve.series.get(name, [])]
        axes.plot(numbers[: len(values)], values, "o-", color="#345", markersize=3, linewidth=1)
        axes.set_title(title, fontsize=8)
        axes.set_xlim(0.5, max(1, curve.attempts) + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.tick_params(labelsize=7)
    figure.tight_layout()
    return _png(figure)


def attempt_metrics_png(events: list[dict[str, Any]]) -> bytes:
    """Shots and images taken so far against attempt time, with breaches (red) and step changes
    (grey) marked: the attempt's metrics over time, from its recorded events."""
    figure = Figure(figsize=(7.0, 2.2), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    end_s = max((float(e.get("t_s") or 0.0) for e in events), default=0.0)
    for kind, colour, label in (("frame", "#5dade2", "images"), ("shot", "#345", "shots")):
        times = [float(e.get("t_s") or 0.0) for e in events if e.get("kind") == kind]
        axes.step(
            [0.0, *times, end_s],
            [0, *range(1, len(times) + 1), len(times)],
            where="post",
            color=colour,
            label=label,
        )
    for e in events:
        if e.get("kind") == "breach":
            axes.axvline(float(e.get("t_s") or 0.0), color="#c33", linewidth=1.5)
        elif e.get("kind") == "step":
            axes.axvline(float(e.get("t_s") or 0.0), color="#999", linestyle="--", linewidth=1)
    axes.set_xlabel("attempt time (s)  — red: breach, grey: step done", fontsize=8)
    axes.set_ylabel("count so far", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    return _png(figure)
