"""Pass marks by the contrasting-groups method (experts vs novices), and cohort summaries.

Contrasting groups: fit a normal distribution to the composite scores of an expert group and of a
novice group; the pass mark is the score where the two densities cross between the group means
(Pedersen et al. 2014 found novices 30 % and experienced 76 % of maximum, pass mark 58 %; see
reference/procedures.md). When the groups are too small the method refuses rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_GROUP_SIZE = 3


@dataclass(frozen=True)
class PassMark:
    """The pass mark and the error rates it gives on the groups it was set from."""

    score: float
    expert_mean: float
    expert_sd: float
    novice_mean: float
    novice_sd: float
    false_fail_experts: float
    false_pass_novices: float


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance)


def contrasting_groups(expert_scores: Sequence[float], novice_scores: Sequence[float]) -> PassMark:
    """The contrasting-groups pass mark from two groups' composite scores."""
    if len(expert_scores) < MIN_GROUP_SIZE or len(novice_scores) < MIN_GROUP_SIZE:
        raise ValueError(
            f"the contrasting-groups method needs at least {MIN_GROUP_SIZE} expert and "
            f"{MIN_GROUP_SIZE} novice attempts (got {len(expert_scores)} and {len(novice_scores)})"
        )
    me, se = _mean_sd(expert_scores)
    mn, sn = _mean_sd(novice_scores)
    if me <= mn:
        raise ValueError(
            f"experts ({me:.1f}) do not score above novices ({mn:.1f}): no pass mark can separate them"
        )
    se, sn = max(se, 1e-6), max(sn, 1e-6)
    cut = normal_intersection(mn, sn, me, se)
    false_fail = sum(1 for s in expert_scores if s < cut) / len(expert_scores)
    false_pass = sum(1 for s in novice_scores if s >= cut) / len(novice_scores)
    return PassMark(cut, me, se, mn, sn, false_fail, false_pass)


def normal_intersection(mean_low: float, sd_low: float, mean_high: float, sd_high: float) -> float:
    """The crossing of two normal densities that lies between their means."""
    if math.isclose(sd_low, sd_high, rel_tol=1e-9):
        return (mean_low + mean_high) / 2
    # log N(x; m1, s1) = log N(x; m2, s2)  →  a x² + b x + c = 0
    a = 1 / (2 * sd_high**2) - 1 / (2 * sd_low**2)
    b = mean_low / sd_low**2 - mean_high / sd_high**2
    c = (mean_high**2 / (2 * sd_high**2) - mean_low**2 / (2 * sd_low**2)) + math.log(
        sd_high / sd_low
    )
    disc = math.sqrt(max(b * b - 4 * a * c, 0.0))
    roots = [(-b + disc) / (2 * a), (-b - disc) / (2 * a)]
    between = [r for r in roots if mean_low <= r <= mean_high]
    return between[0] if between else (mean_low + mean_high) / 2
