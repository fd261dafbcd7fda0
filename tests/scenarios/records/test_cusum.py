"""CUSUM against hand-computed values (procedures.md) and the contrasting-groups pass mark."""

import math

import pytest

from fluorosim.scenarios.records.cusum import CusumParameters, binary_cusum, lc_cusum
from fluorosim.scenarios.records.passmark import contrasting_groups, normal_intersection


def test_reference_parameters():
    params = CusumParameters(0.10, 0.20, 0.1, 0.1)
    # P = ln 2 = 0.693147, Q = ln(0.9/0.8) = 0.117783, s = Q/(P+Q) = 0.145246
    assert params.s == pytest.approx(0.117783 / 0.810930, abs=1e-6)
    assert round(params.s, 3) == 0.145
    # h1 = ln(9)/0.810930 = 2.709511
    assert params.h1 == pytest.approx(2.709511, abs=1e-5)
    assert params.h0 == pytest.approx(-2.709511, abs=1e-5)


def test_binary_cusum_by_hand():
    s = CusumParameters().s
    chart = binary_cusum([True, False, False, True])
    expected = [1 - s, 1 - 2 * s, 1 - 3 * s, 2 - 4 * s]
    assert chart.values == pytest.approx(expected)
    assert chart.competent_at is None and chart.unacceptable_at is None
    # 19 straight successes: −19 s = −2.7597 ≤ h0 = −2.7095 (18 give −2.614, not yet)
    assert binary_cusum([False] * 19).competent_at == 19
    # three failures: 3 (1 − s) = 2.564 < 2.7095; four: 3.419 ≥ h1
    assert binary_cusum([True] * 4).unacceptable_at == 4


def test_lc_cusum_resets_at_zero_and_signals():
    params = CusumParameters()
    success = math.log(0.9 / 0.8)
    chart = lc_cusum([True, False, False], params)
    assert chart.values == pytest.approx([0.0, success, 2 * success])
    limit = math.log(0.9 / 0.1)
    needed = math.ceil(limit / success)  # 19 consecutive successes
    assert lc_cusum([False] * needed, params).competent_at == needed
    assert lc_cusum([False] * (needed - 1), params).competent_at is None


def test_parameters_validated():
    with pytest.raises(ValueError, match="p0 < p1"):
        CusumParameters(0.3, 0.2)


def test_contrasting_groups():
    assert normal_intersection(30, 10, 76, 10) == pytest.approx(53)
    experts = [70, 76, 82, 74, 78]
    novices = [25, 30, 35, 28, 32]
    mark = contrasting_groups(experts, novices)
    assert 35 < mark.score < 70
    assert mark.false_fail_experts == 0 and mark.false_pass_novices == 0
    # unequal spreads: the crossing moves toward the tighter group
    assert normal_intersection(30, 15, 76, 5) > 53
    with pytest.raises(ValueError, match="at least 3"):
        contrasting_groups([80, 90], [20, 30, 40])
