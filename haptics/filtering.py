"""Smoothing and loss-of-tracking for instrument samples: One Euro filters and a tracking guard.

One Euro filter: Casiez, Roussel & Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for
Noisy Input in Interactive Systems", CHI 2012. A first-order low-pass whose cutoff rises with
speed, ``cutoff = min_cutoff + beta·|speed|``, the speed itself low-passed at ``d_cutoff``;
``alpha = 1 / (1 + tau/dt)`` with ``tau = 1/(2π·cutoff)``. Tuning per reference/tracking.md: start
at min_cutoff 1 Hz, beta 0, d_cutoff 1 Hz; lower min_cutoff until the held-still tool is steady,
then raise beta until fast moves stop lagging. ``dt`` always comes from DEVICE time.

:class:`TrackingGuard` turns the raw stream into what the session may show: a missing sample is
never a zero pose; the last good pose is held as ``STALE`` for at most :data:`STALE_LIMIT_S` of
device time, then the tool is ``MISSING`` ("lost", no pose); filters are reset on reacquisition;
jumps faster than :data:`MAX_SPEED_MM_S` and bad directions are rejected and counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.haptics.source import ToolSample, TrackingStatus

#: How long the last pose is held as STALE before the tool is shown lost (reference/tracking.md).
STALE_LIMIT_S = 0.250
#: Jumps faster than this are rejected (reference/tracking.md: "≈2 m/s"), mm/s.
MAX_SPEED_MM_S = 2000.0
#: Consecutive mutually consistent rejected samples that are accepted as a real relocation.
RELOCATE_AFTER_SAMPLES = 3


def _alpha(cutoff_hz: float, dt_s: float) -> float:
    tau_s = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau_s / dt_s)


class OneEuroFilter:
    """One Euro filter of a vector signal (any length), timed by the caller's device time."""

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0):
        if min_cutoff_hz <= 0 or d_cutoff_hz <= 0 or beta < 0:
            raise ValueError("One Euro filter needs min_cutoff_hz > 0, d_cutoff_hz > 0, beta >= 0")
        self.min_cutoff_hz = float(min_cutoff_hz)
        self.beta = float(beta)
        self.d_cutoff_hz = float(d_cutoff_hz)
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next value passes through unchanged."""
        self._t_s: float | None = None
        self._x: NDArray[np.float64] | None = None
        self._dx: NDArray[np.float64] | None = None

    @property
    def value(self) -> NDArray[np.float64] | None:
        """The current filtered value (None before the first sample)."""
        return None if self._x is None else self._x.copy()

    def __call__(self, t_s: float, x: ArrayLike) -> NDArray[np.float64]:
        """Filter ``x`` observed at device time ``t_s``; a non-increasing time holds the value."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t_s is None or self._dx is None:
            self._t_s, self._x, self._dx = float(t_s), x.copy(), np.zeros_like(x)
            return x.copy()
        dt_s = float(t_s) - self._t_s
        if dt_s <= 0.0:
            return self._x.copy()
        dx = (x - self._x) / dt_s
        self._dx = self._dx + _alpha(self.d_cutoff_hz, dt_s) * (dx - self._dx)
        cutoff_hz = self.min_cutoff_hz + self.beta * float(np.linalg.norm(self._dx))
        self._x = self._x + _alpha(cutoff_hz, dt_s) * (x - self._x)
        self._t_s = float(t_s)
        return self._x.copy()


class OneEuroQuaternionFilter:
    """One Euro filter of a unit quaternion (w, x, y, z) with sign continuity.

    ``q`` and ``-q`` are the same rotation; each new sample is flipped into the hemisphere of the
    previous filtered value before filtering, then the result is renormalised.
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0):
        self._filter = OneEuroFilter(min_cutoff_hz, beta, d_cutoff_hz)

    def reset(self) -> None:
        """Forget the history."""
        self._filter.reset()

    def __call__(self, t_s: float, q: ArrayLike) -> NDArray[np.float64]:
        """Filter unit quaternion ``q`` at device time ``t_s``."""
        q = np.asarray(q, dtype=np.float64)
        norm = float(np.linalg.norm(q))
        if not math.isfinite(norm) or norm == 0.0:
            raise ValueError(f"not a quaternion: {q}")
        q = q / norm
        previous = self._filter.value
        if previous is not None and float(np.dot(previous, q)) < 0.0:
            q = -q
        out = self._filter(t_s, q)
        return out / np.linalg.norm(out)


@dataclass(frozen=True)
class FilterSettings:
    """One Euro settings for the tip position and the shaft direction."""

    position_min_cutoff_hz: float = 1.0
    position_beta: float = 0.05  # 1/mm: cutoff rises by 5 Hz at 100 mm/s
    direction_min_cutoff_hz: float = 1.0
    direction_beta: float = 0.5  # per (unit vector / s)
    d_cutoff_hz: float = 1.0


class PoseFilter:
    """One Euro filters of a sample's tip (mm) and direction (renormalised unit vector)."""

    def __init__(self, settings: FilterSettings | None = None) -> None:
        s = settings or FilterSettings()
        self.settings = s
        self.tip = OneEuroFilter(s.position_min_cutoff_hz, s.position_beta, s.d_cutoff_hz)
        self.direction = OneEuroFilter(s.direction_min_cutoff_hz, s.direction_beta, s.d_cutoff_hz)

    def reset(self) -> None:
        """Forget the history (on reacquisition)."""
        self.tip.reset()
        self.direction.reset()

    def __call__(self, sample: ToolSample) -> ToolSample:
        """The sample with its tip and direction filtered (samples without a pose pass through)."""
        if sample.tip_lps_mm is None or sample.direction_lps is None:
            return sample
        tip = self.tip(sample.t_s, sample.tip_lps_mm)
        direction = self.direction(sample.t_s, sample.direction_lps)
        norm = float(np.linalg.norm(direction))
        direction = sample.direction_lps if norm < 1e-9 else direction / norm
        return ToolSample(
            sample.t_s, sample.status, tip, direction, sample.buttons, sample.raw, sample.roll_deg
        )  # not dataclasses.replace: this runs for every sample on the reader thread


def _pose_is_sane(sample: ToolSample) -> bool:
    tip, direction = sample.tip_lps_mm, sample.direction_lps
    if tip is None or direction is None:
        return False
    tip, direction = np.asarray(tip, np.float64), np.asarray(direction, np.float64)
    if not math.isfinite(float(tip.sum()) + float(direction.sum())):  # NaN/inf propagate
        return False
    return abs(math.sqrt(float(direction @ direction)) - 1.0) < 0.05


class TrackingGuard:
    """Filter, hold and reject: what the session may show of a raw sample stream.

    Feed every raw sample to :meth:`update` (device time ``t_s``) and call :meth:`tick` with the
    current device time when nothing arrives. Output statuses: ``OK`` (fresh, filtered pose),
    ``STALE`` (last good pose held, ≤ ``stale_limit_s`` old), ``MISSING`` (lost, no pose; the last
    pose is in ``raw["last_tip_lps_mm"]``/``raw["last_direction_lps"]``), or the source's own
    ``UNCALIBRATED``/``OUT_OF_VOLUME``/``DISCONNECTED`` passed through after the hold.
    ``counters`` counts ``jump_rejected``, ``bad_pose_rejected``, ``reacquired``, ``lost``.
    """

    def __init__(
        self,
        filter_settings: FilterSettings | None = None,
        stale_limit_s: float = STALE_LIMIT_S,
        max_speed_mm_s: float = MAX_SPEED_MM_S,
        relocate_after: int = RELOCATE_AFTER_SAMPLES,
        filter_factory: Callable[[], PoseFilter] | None = None,
    ) -> None:
        self.stale_limit_s = float(stale_limit_s)
        self.max_speed_mm_s = float(max_speed_mm_s)
        self.relocate_after = int(relocate_after)
        self.filter = filter_factory() if filter_factory else PoseFilter(filter_settings)
        self.counters: dict[str, int] = {
            "jump_rejected": 0,
            "bad_pose_rejected": 0,
            "reacquired": 0,
            "lost": 0,
        }
        self.last_good: ToolSample | None = None  # last accepted raw sample
        self.last_output: ToolSample | None = None
        self._last_problem: ToolSample | None = None
        self._candidates: list[ToolSample] = []
        self._lost = True

    def reset(self) -> None:
        """Forget everything (a new device or a reconnect)."""
        self.filter.reset()
        self.last_good = None
        self.last_output = None
        self._last_problem = None
        self._candidates = []
        self._lost = True

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _speed_ok(self, a: ToolSample, b: ToolSample) -> bool:
        assert a.tip_lps_mm is not None and b.tip_lps_mm is not None
        dt_s = b.t_s - a.t_s
        distance_mm = float(np.linalg.norm(np.asarray(b.tip_lps_mm) - np.asarray(a.tip_lps_mm)))
        if dt_s <= 0.0:
            return distance_mm <= 1e-6
        return distance_mm / dt_s <= self.max_speed_mm_s

    def update(self, sample: ToolSample) -> ToolSample:
        """Process one raw sample; returns the sample to show."""
        if sample.status == TrackingStatus.OK:
            if not _pose_is_sane(sample):
                self._count("bad_pose_rejected")
                return self.tick(sample.t_s, sample)
            jumped = self.last_good is not None and not self._speed_ok(self.last_good, sample)
            if jumped and not self._lost:
                return self._rejected_jump(sample)
            self._candidates = []
            return self._accept(sample)
        return self.tick(sample.t_s, sample)

    def _rejected_jump(self, sample: ToolSample) -> ToolSample:
        self._count("jump_rejected")
        if self._candidates and self._speed_ok(self._candidates[-1], sample):
            self._candidates.append(sample)
        else:
            self._candidates = [sample]
        if len(self._candidates) >= self.relocate_after:  # consistently elsewhere: it moved
            self._candidates = []
            self._lost = True
            return self._accept(sample)
        return self.tick(sample.t_s, sample)

    def _accept(self, sample: ToolSample) -> ToolSample:
        if self._lost:
            self.filter.reset()
            if self.last_good is not None:
                self._count("reacquired")
            self._lost = False
        self.last_good = sample
        self._last_problem = None
        out = self.filter(sample)
        self.last_output = out
        return out

    def tick(self, t_s: float, problem: ToolSample | None = None) -> ToolSample:
        """The sample to show at device time ``t_s`` when no good sample arrived.

        ``problem`` is the latest non-OK raw sample (its status is reported once the hold ends).
        """
        if problem is not None:
            self._last_problem = problem
        problem = self._last_problem
        last = self.last_output
        if last is not None and not self._lost and self.last_good is not None:
            age_s = t_s - self.last_good.t_s
            if age_s <= self.stale_limit_s:
                if age_s <= 0.0 and problem is None:
                    return last
                raw = dict(last.raw, stale_age_s=age_s)
                if problem is not None:
                    raw["device_status"] = problem.raw.get("device_status", problem.status.value)
                out = replace(last, t_s=t_s, status=TrackingStatus.STALE, raw=raw)
                self.last_output = out
                return out
            self._lost = True
            self._count("lost")
        status = TrackingStatus.MISSING
        buttons: frozenset[str] = frozenset()
        raw = {}
        if problem is not None:
            buttons = problem.buttons
            raw = dict(problem.raw)
            if problem.status in (
                TrackingStatus.UNCALIBRATED,
                TrackingStatus.OUT_OF_VOLUME,
                TrackingStatus.DISCONNECTED,
            ):
                status = problem.status
        if last is not None and last.tip_lps_mm is not None:
            raw["last_tip_lps_mm"] = last.tip_lps_mm
            raw["last_direction_lps"] = last.direction_lps
        return ToolSample(t_s, status, None, None, buttons, raw)
