"""One Euro filters and the tracking guard: steadiness, bounded lag, stale → lost, jump rejection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluorosim.haptics.filtering import (
    FilterSettings,
    OneEuroFilter,
    OneEuroQuaternionFilter,
    TrackingGuard,
)
from fluorosim.haptics.source import ToolSample, TrackingStatus

DOWN = np.array([0.0, 0.0, -1.0])


def ok(t_s: float, tip, direction=DOWN) -> ToolSample:
    return ToolSample(t_s, TrackingStatus.OK, np.asarray(tip, float), np.asarray(direction, float))


def test_first_value_passes_through_and_constant_stays_constant():
    f = OneEuroFilter(1.0, 0.0, 1.0)
    assert f(0.0, [1.0, 2.0]) == pytest.approx([1.0, 2.0])
    for i in range(1, 50):
        assert f(i * 0.01, [1.0, 2.0]) == pytest.approx([1.0, 2.0])


def test_alpha_matches_the_paper_formula_for_one_step():
    # beta = 0: one step is an exponential smoother with alpha = 1/(1 + tau/dt), tau = 1/(2π fc)
    f = OneEuroFilter(min_cutoff_hz=2.0, beta=0.0)
    f(0.0, [0.0])
    out = f(0.01, [1.0])
    tau = 1.0 / (2 * math.pi * 2.0)
    assert out[0] == pytest.approx(1.0 / (1.0 + tau / 0.01))


def test_a_still_tool_with_noise_gets_steadier():
    rng = np.random.default_rng(1)
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=0.05)
    noisy = 10.0 + rng.normal(0.0, 0.3, size=(1000, 3))  # 0.3 mm jitter at 100 Hz
    out = np.array([f(i * 0.01, x) for i, x in enumerate(noisy)])
    raw_sd = noisy[200:].std(axis=0)
    filtered_sd = out[200:].std(axis=0)
    assert np.all(filtered_sd < raw_sd / 3)
    assert np.allclose(out[200:].mean(axis=0), 10.0, atol=0.1)


def test_still_noise_reduction_matches_the_exponential_smoother_variance():
    # beta = 0: y = y + a(x - y) on white noise has var(y)/var(x) = a / (2 - a)
    rng = np.random.default_rng(2)
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=0.0)
    noisy = rng.normal(0.0, 1.0, size=(20000, 1))
    out = np.array([f(i * 0.01, x) for i, x in enumerate(noisy)])[500:, 0]
    a = 1.0 / (1.0 + (1.0 / (2 * math.pi)) / 0.01)
    assert out.std() == pytest.approx(math.sqrt(a / (2 - a)), rel=0.1)


def test_a_step_is_followed_within_a_bounded_lag():
    f = OneEuroFilter(min_cutoff_hz=1.0, beta=0.05)
    t = np.arange(0, 1.0, 0.004)  # 250 Hz
    x = np.where(t < 0.2, 0.0, 50.0)  # a 50 mm step at 0.2 s
    out = np.array([f(ti, [xi])[0] for ti, xi in zip(t, x, strict=True)])
    settled = t[(t >= 0.2) & (np.abs(out - 50.0) < 1.0)]
    assert settled.size and settled[0] - 0.2 <= 0.1  # within 1 mm of the step after ≤ 100 ms
    slow = OneEuroFilter(min_cutoff_hz=1.0, beta=0.0)  # beta is what removes the lag
    out_slow = np.array([slow(ti, [xi])[0] for ti, xi in zip(t, x, strict=True)])
    assert out_slow[t.searchsorted(0.3)] < 45.0


def test_dt_comes_from_the_timestamps_not_the_call_rate():
    a, b = OneEuroFilter(1.0, 0.0), OneEuroFilter(1.0, 0.0)
    a(0.0, [0.0])
    b(0.0, [0.0])
    assert a(0.1, [1.0])[0] > b(0.01, [1.0])[0]
    assert b(0.01, [5.0])[0] == b.value[0]  # a repeated timestamp holds the value


def test_quaternion_filter_keeps_sign_continuity():
    f = OneEuroQuaternionFilter(1.0, 0.0)
    q = np.array([math.cos(0.1), 0.0, 0.0, math.sin(0.1)])
    f(0.0, q)
    for i in range(1, 20):
        out = f(i * 0.01, -q if i % 2 else q)  # the same rotation, alternating sign
        assert out == pytest.approx(q)
        assert np.linalg.norm(out) == pytest.approx(1.0)


def test_guard_holds_stale_for_250_ms_of_device_time_then_lost():
    guard = TrackingGuard(FilterSettings())
    for i in range(10):
        out = guard.update(ok(i * 0.01, [1.0, 2.0, 3.0]))
    assert out.status == TrackingStatus.OK
    last_t = 0.09
    stale = guard.tick(last_t + 0.20)
    assert stale.status == TrackingStatus.STALE
    assert stale.tip_lps_mm == pytest.approx([1.0, 2.0, 3.0])
    assert guard.tick(last_t + 0.25).status == TrackingStatus.STALE
    lost = guard.tick(last_t + 0.2501)
    assert lost.status == TrackingStatus.MISSING
    assert lost.tip_lps_mm is None and lost.direction_lps is None  # never a zero pose
    assert lost.raw["last_tip_lps_mm"] == pytest.approx([1.0, 2.0, 3.0])
    assert guard.counters["lost"] == 1


def test_device_miss_lines_hold_then_lose_and_reacquire_resets_the_filter():
    guard = TrackingGuard(FilterSettings(position_min_cutoff_hz=0.5, position_beta=0.0))
    for i in range(20):
        guard.update(ok(i * 0.01, [0.0, 0.0, 0.0]))
    miss = ToolSample(0.2, TrackingStatus.MISSING, None, None)
    assert guard.update(miss).status == TrackingStatus.STALE
    assert guard.update(ToolSample(0.5, TrackingStatus.MISSING, None, None)).status == (
        TrackingStatus.MISSING
    )
    back = guard.update(ok(0.6, [30.0, 0.0, 0.0]))  # far away, after the loss: no jump check
    assert back.status == TrackingStatus.OK
    assert back.tip_lps_mm == pytest.approx([30.0, 0.0, 0.0])  # filter was reset, no lag
    assert guard.counters["reacquired"] == 1 and guard.counters["jump_rejected"] == 0


def test_jump_faster_than_2_m_per_s_is_rejected():
    guard = TrackingGuard()
    for i in range(10):
        guard.update(ok(i * 0.01, [0.0, 0.0, 0.0]))
    out = guard.update(ok(0.10, [50.0, 0.0, 0.0]))  # 50 mm in 10 ms = 5 m/s
    assert out.status == TrackingStatus.STALE
    assert out.tip_lps_mm == pytest.approx([0.0, 0.0, 0.0])
    assert guard.counters["jump_rejected"] == 1
    out = guard.update(ok(0.11, [1.0, 0.0, 0.0]))  # 1 mm in 20 ms = 0.05 m/s: fine
    assert out.status == TrackingStatus.OK


def test_a_real_relocation_is_accepted_after_consistent_samples():
    guard = TrackingGuard(relocate_after=3)
    guard.update(ok(0.0, [0.0, 0.0, 0.0]))
    statuses = [guard.update(ok(0.01 * i, [100.0, 0.0, 0.0])).status for i in (1, 2, 3)]
    assert statuses == [TrackingStatus.STALE, TrackingStatus.STALE, TrackingStatus.OK]
    assert guard.last_output.tip_lps_mm == pytest.approx([100.0, 0.0, 0.0])


def test_bad_direction_is_rejected():
    guard = TrackingGuard()
    guard.update(ok(0.0, [0.0, 0.0, 0.0]))
    out = guard.update(ok(0.01, [0.0, 0.0, 0.0], direction=[0.0, 0.0, 0.0]))
    assert out.status == TrackingStatus.STALE
    out = guard.update(ok(0.02, [np.nan, 0.0, 0.0]))
    assert out.status == TrackingStatus.STALE
    assert guard.counters["bad_pose_rejected"] == 2


def test_out_of_volume_is_reported_after_the_hold():
    guard = TrackingGuard()
    guard.update(ok(0.0, [0.0, 0.0, 0.0]))
    oov = ToolSample(0.3, TrackingStatus.OUT_OF_VOLUME, None, None, raw={"seq": 9})
    out = guard.update(oov)
    assert out.status == TrackingStatus.OUT_OF_VOLUME and out.tip_lps_mm is None
