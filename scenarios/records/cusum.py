"""CUSUM charts of attempt failures for learning curves and credentialing.

Binary CUSUM (Williams et al. 1992; Bolsin & Colson 2000), as given in reference/procedures.md:
with acceptable and unacceptable failure rates p0 < p1 and error rates α, β,
P = ln(p1/p0), Q = ln((1−p0)/(1−p1)), s = Q/(P+Q); each success adds −s and each failure 1−s;
h1 = ln((1−β)/α)/(P+Q) (crossing upward signals unacceptable performance) and
h0 = −ln((1−α)/β)/(P+Q) (crossing downward signals competence). With p0/p1 = 0.10/0.20 and
α = β = 0.1: s = 0.145, h0/h1 = −2.71/+2.71.

LC-CUSUM (Biau & Porcher 2010) for a learning curve: the null hypothesis is *not yet competent*
(failure rate p1); S_n = max(0, S_{n−1} + W_n) with W = ln((1−p0)/(1−p1)) for a success and
ln(p0/p1) for a failure; competence is declared when S_n ≥ h. Here h defaults to Wald's bound
ln((1−β)/α); a programme may set its own (Biau & Porcher choose h by simulation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CusumParameters:
    """A programme's choice of acceptable/unacceptable failure rates and error rates."""

    p0: float = 0.10
    p1: float = 0.20
    alpha: float = 0.10
    beta: float = 0.10

    def __post_init__(self) -> None:
        if not 0 < self.p0 < self.p1 < 1:
            raise ValueError(f"CUSUM needs 0 < p0 < p1 < 1, got p0={self.p0}, p1={self.p1}")
        if not (0 < self.alpha < 1 and 0 < self.beta < 1):
            raise ValueError(f"CUSUM needs 0 < alpha, beta < 1, got {self.alpha}, {self.beta}")

    @property
    def p(self) -> float:
        return math.log(self.p1 / self.p0)

    @property
    def q(self) -> float:
        return math.log((1 - self.p0) / (1 - self.p1))

    @property
    def s(self) -> float:
        """The per-success decrement."""
        return self.q / (self.p + self.q)

    @property
    def h1(self) -> float:
        """Upper decision limit (unacceptable performance)."""
        return math.log((1 - self.beta) / self.alpha) / (self.p + self.q)

    @property
    def h0(self) -> float:
        """Lower decision limit (competence), negative."""
        return -math.log((1 - self.alpha) / self.beta) / (self.p + self.q)


@dataclass(frozen=True)
class CusumChart:
    """The cumulative sum after each attempt and where it first crossed a limit (1-based, or None)."""

    values: list[float]
    h0: float
    h1: float
    competent_at: int | None
    unacceptable_at: int | None


def binary_cusum(failures: Sequence[bool], params: CusumParameters | None = None) -> CusumChart:
    """The binary CUSUM of a sequence of attempt outcomes (True = failed)."""
    params = params or CusumParameters()
    total = 0.0
    values: list[float] = []
    competent_at = unacceptable_at = None
    for index, failed in enumerate(failures, start=1):
        total += (1 - params.s) if failed else -params.s
        values.append(total)
        if competent_at is None and total <= params.h0:
            competent_at = index
        if unacceptable_at is None and total >= params.h1:
            unacceptable_at = index
    return CusumChart(values, params.h0, params.h1, competent_at, unacceptable_at)


def lc_cusum(
    failures: Sequence[bool], params: CusumParameters | None = None, h: float | None = None
) -> CusumChart:
    """The LC-CUSUM of a learning curve; ``h1`` of the chart is the competence limit ``h``."""
    params = params or CusumParameters()
    limit = math.log((1 - params.beta) / params.alpha) if h is None else h
    success_weight = math.log((1 - params.p0) / (1 - params.p1))
    failure_weight = math.log(params.p0 / params.p1)
    total = 0.0
    values: list[float] = []
    competent_at = None
    for index, failed in enumerate(failures, start=1):
        total = max(0.0, total + (failure_weight if failed else success_weight))
        values.append(total)
        if competent_at is None and total >= limit:
            competent_at = index
    return CusumChart(values, 0.0, limit, competent_at, None)
