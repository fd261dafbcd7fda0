"""Learning-curve and CUSUM figures as PNG bytes (matplotlib's Agg canvas: no GUI backend)."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scenarios.records.learning import LearningCurve


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def learning_curve_png(curve: LearningCurve, pass_mark: float | None = None) -> bytes:
    """Score per attempt with pass/fail markers and the pass mark."""
    figure = Figure(figsize=(6.5, 2.8), dpi=110)
    axes = figure.add_subplot(1, 1, 1)
    numbers = list(range(1, curve.attempts + 1))
    scores = [s if s is not None else float("nan") for s in curve.scores]
    axes.plot(numbers, scores, color="#345", linewidth=1.2)
    for n, score, passed in zip(numbers, scores, curve.passed, strict=True):
        axes.plot(n, score, "o", color="#2a7" if passed else "#c33", markersize=5)
    if pass_mark is not None:
        axes.axhline(
            pass_mark, color="#888", linestyle="--", linewidth=1, label=f"pass mark {pass_mark:.0f}"
        )
        axes.legend(loc="lower right", fontsize=8)
    axes.set_xlabel("attempt")
    axes.set_ylabel("composite score")
    axes.set_ylim(0, 100)
    axes.set_title(
        f"Learning curve — {curve.trainee_id}"
        + (f", {curve.scenario_id}" if curve.scenario_id else ""),
        fontsize=10,
    )
    figure.tight_layout()
    return _png(figure)


def cusum_png(curve: LearningCurve) -> bytes:
    """The binary CUSUM of failures with its decision limits h0 and h1."""
    figure = Figure(figsize=(6.5, 2.8), dpi=110)
    axes = figure.add_subplot(1, 1, 1)
    chart = curve.cusum
    if chart is not None and chart.values:
        numbers = list(range(0, len(chart.values) + 1))
        axes.step(numbers, [0.0, *chart.values], where="post", color="#345")
        axes.axhline(
            chart.h1,
            color="#c33",
            linestyle="--",
            linewidth=1,
            label=f"h1 = {chart.h1:+.2f} (unacceptable)",
        )
        axes.axhline(
            chart.h0,
            color="#2a7",
            linestyle="--",
            linewidth=1,
            label=f"h0 = {chart.h0:+.2f} (competent)",
        )
        axes.legend(loc="upper left", fontsize=8)
    axes.set_xlabel("attempt")
    axes.set_ylabel("CUSUM of failures")
    axes.set_title("CUSUM (Williams 1992, Bolsin & Colson 2000)", fontsize=10)
    figure.tight_layout()
    return _png(figure)
