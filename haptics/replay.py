"""Replay of recorded tracking: PLUS sequence files and our own recorded attempts.

PLUS sequence metafiles (``.mha``/``.igs.mha``, PLUS toolkit) carry per-frame text header lines::

    Seq_Frame0000_StylusToTrackerTransform = r00 r01 r02 t0 r10 … 0 0 0 1     (row-major, mm)
    Seq_Frame0000_StylusToTrackerTransformStatus = OK | INVALID
    Seq_Frame0000_Timestamp = 196.7208                                         (seconds)

followed by ``ElementDataFile = LOCAL`` and binary image data, which is not read. A frame without a
status line is OK (PLUS omits it for always-valid transforms). Names that do not end in
``Transform`` (e.g. ``Seq_Frame0000_Stylus``) are not transforms and are ignored.

:class:`PlusReplaySource` plays one tool at the recorded timing against an injected clock (or, with
``realtime=False``, one frame per poll for tests). :class:`AttemptReplaySource` plays any iterable
of ``(t_s, ToolSample)``: the attempt file format belongs to ``scenarios/recording.py``, which hands
its samples to this class.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fluorosim.haptics.calibration import tip_and_direction, tool_roll_deg
from fluorosim.haptics.source import InstrumentSource, ToolSample, TrackingStatus

_LINE = re.compile(r"^Seq_Frame(\d+)_([A-Za-z0-9_]+?)\s*=\s*(.*?)\s*$")
#: Header lines this long are not a text header any more (binary data without ElementDataFile).
MAX_HEADER_LINE = 4096


class ReplayError(ValueError):
    """A sequence file that cannot be replayed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class TransformTrack:
    """One named transform of a sequence: times (s), matrices (N,4,4) ``tracker_from_tool``, ok mask."""

    timestamps_s: NDArray[np.float64]
    matrices: NDArray[np.float64]
    ok: NDArray[np.bool_]

    def __iter__(self) -> Iterator[NDArray[np.float64] | NDArray[np.bool_]]:  # unpacks in three
        return iter((self.timestamps_s, self.matrices, self.ok))

    def __len__(self) -> int:
        return len(self.timestamps_s)


def _header_lines(path: Path) -> Iterable[tuple[int, str]]:
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if raw.startswith(b"ElementDataFile"):
                    return
                if len(raw) > MAX_HEADER_LINE:
                    raise ReplayError(
                        f"{path}: line {number} is {len(raw)} bytes long — binary data without an "
                        "'ElementDataFile' line; not a PLUS sequence header"
                    )
                try:
                    yield number, raw.decode("ascii").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise ReplayError(
                        f"{path}: line {number} holds non-text bytes before 'ElementDataFile'"
                    ) from None
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read sequence file ({exc})") from None


def read_plus_sequence(path: str | Path) -> dict[str, TransformTrack]:
    """All transforms of a PLUS sequence file by name (``"StylusToTracker"``); frames sorted by number.

    A frame whose transform line is missing or whose status is INVALID has ok = False (matrix NaN
    when absent). Raises :class:`ReplayError` naming the file, line and field for a malformed file.
    """
    file = Path(path)
    matrices: dict[str, dict[int, NDArray[np.float64]]] = {}
    statuses: dict[str, dict[int, bool]] = {}
    timestamps: dict[int, float] = {}
    for number, line in _header_lines(file):
        match = _LINE.match(line)
        if match is None:
            continue
        frame = int(match.group(1))
        key, value = match.group(2), match.group(3)
        if key == "Timestamp":
            try:
                timestamps[frame] = float(value)
            except ValueError:
                raise ReplayError(
                    f"{file}: line {number}: Timestamp is not a number: {value!r}"
                ) from None
        elif key.endswith("TransformStatus"):
            name = key[: -len("TransformStatus")]
            if value not in ("OK", "INVALID", "MISSING", "OUT_OF_VIEW"):
                raise ReplayError(
                    f"{file}: line {number}: {key} must be OK or INVALID, got {value!r}"
                )
            statuses.setdefault(name, {})[frame] = value == "OK"
        elif key.endswith("Transform"):
            name = key[: -len("Transform")]
            try:
                values = np.array([float(v) for v in value.split()], dtype=np.float64)
            except ValueError:
                raise ReplayError(f"{file}: line {number}: {key} holds a non-number") from None
            if values.size != 16:
                raise ReplayError(
                    f"{file}: line {number}: {key} has {values.size} numbers, expected 16 (row-major 4x4)"
                )
            matrices.setdefault(name, {})[frame] = values.reshape(4, 4)
    if not matrices:
        raise ReplayError(
            f"{file}: no 'Seq_FrameNNNN_<Name>Transform' lines found; not a PLUS tracking sequence"
        )
    frames = sorted(set(timestamps) | {f for per in matrices.values() for f in per})
    missing_times = [f for f in frames if f not in timestamps]
    if missing_times:
        raise ReplayError(
            f"{file}: frame {missing_times[0]:04d} has no Seq_Frame{missing_times[0]:04d}_Timestamp"
        )
    times = np.array([timestamps[f] for f in frames])
    backwards = np.flatnonzero(np.diff(times) < 0)
    if backwards.size:
        frame = frames[int(backwards[0]) + 1]
        raise ReplayError(
            f"{file}: Seq_Frame{frame:04d}_Timestamp goes backwards "
            f"({times[backwards[0] + 1]} after {times[backwards[0]]})"
        )
    tracks: dict[str, TransformTrack] = {}
    for name, per_frame in matrices.items():
        stack = np.full((len(frames), 4, 4), np.nan)
        ok = np.zeros(len(frames), dtype=bool)
        for index, frame in enumerate(frames):
            if frame in per_frame:
                stack[index] = per_frame[frame]
                ok[index] = statuses.get(name, {}).get(frame, True) and bool(
                    np.all(np.isfinite(per_frame[frame]))
                )
        tracks[name] = TransformTrack(times.copy(), stack, ok)
    return tracks


class _TimedReplay(InstrumentSource):
    """Shared playback: items with times; realtime against a clock, or one item per poll."""

    def __init__(
        self, times_s: NDArray[np.float64], clock: Callable[[], float], realtime: bool, loop: bool
    ):
        super().__init__()
        self._times = np.asarray(times_s, dtype=np.float64)
        self._clock = clock
        self._realtime = realtime
        self._loop = loop
        self._started_at: float | None = None
        self._next_index = 0

    def start(self) -> None:
        """Start playback at the first recorded frame."""
        self._started_at = self._clock()
        self._next_index = 0
        self.status = TrackingStatus.OK if len(self._times) else TrackingStatus.DISCONNECTED

    def stop(self) -> None:
        """Pause (the next start() replays from the beginning)."""
        self._started_at = None

    @property
    def finished(self) -> bool:
        """True when every frame has been handed out (never for a looping replay)."""
        return not self._loop and self._next_index >= len(self._times)

    def _due_index(self) -> int | None:
        if self._started_at is None or len(self._times) == 0:
            return None
        if not self._realtime:
            if self._next_index >= len(self._times):
                if not self._loop:
                    return None
                self._next_index = 0
            index = self._next_index
            self._next_index += 1
            return index
        elapsed = self._clock() - self._started_at
        duration = float(self._times[-1] - self._times[0])
        if self._loop and duration > 0:
            elapsed = elapsed % (duration + 1e-9)
        due = int(np.searchsorted(self._times - self._times[0], elapsed, side="right")) - 1
        if due < 0 or (due < self._next_index and not self._loop):
            return None
        if due + 1 == self._next_index:
            return None
        skipped = max(0, due - self._next_index)
        if skipped:
            self.count("frames_skipped", skipped)
        self._next_index = due + 1
        return due


class PlusReplaySource(_TimedReplay):
    """Replays one tool of a PLUS sequence file as an instrument source.

    ``tool_from_tip`` (pivot calibration) and ``patient_from_tracker`` (registration) map the tool
    pose to a tip and shaft direction; without a registration, samples are UNCALIBRATED with the
    tracker-frame pose in ``raw`` (and tip/direction in the tracker frame).
    """

    def __init__(
        self,
        path: str | Path,
        tool: str = "StylusToTracker",
        clock: Callable[[], float] = time.monotonic,
        realtime: bool = True,
        loop: bool = False,
        tool_from_tip: ArrayLike | None = None,
        patient_from_tracker: ArrayLike | None = None,
    ) -> None:
        tracks = read_plus_sequence(path)
        name = tool[: -len("Transform")] if tool.endswith("Transform") else tool
        if name not in tracks:
            raise ReplayError(f"{path}: no transform named {name!r}; the file has {sorted(tracks)}")
        self.track = tracks[name]
        super().__init__(self.track.timestamps_s, clock, realtime, loop)
        self.name = f"PLUS replay {Path(path).name} ({name})"
        self._tool_from_tip = tool_from_tip
        self._patient_from_tracker = patient_from_tracker

    def poll(self) -> ToolSample | None:
        """The newest due frame (None when nothing new is due)."""
        index = self._due_index()
        if index is None:
            return None
        t_s = float(self.track.timestamps_s[index] - self.track.timestamps_s[0])
        raw = {"frame_index": index, "timestamp_s": float(self.track.timestamps_s[index])}
        if not self.track.ok[index]:
            self.status = TrackingStatus.MISSING
            return ToolSample(t_s, TrackingStatus.MISSING, None, None, frozenset(), raw)
        matrix = self.track.matrices[index]
        tip, direction = tip_and_direction(matrix, self._tool_from_tip, self._patient_from_tracker)
        roll = tool_roll_deg(matrix, self._tool_from_tip, self._patient_from_tracker)
        raw["tracker_from_tool"] = matrix.copy()
        status = (
            TrackingStatus.OK
            if self._patient_from_tracker is not None
            else TrackingStatus.UNCALIBRATED
        )
        self.status = status
        return ToolSample(t_s, status, tip, direction, frozenset(), raw, roll)


class AttemptReplaySource(_TimedReplay):
    """Replays ``(t_s, ToolSample)`` pairs of a recorded attempt (the hook for scenarios/recording.py)."""

    def __init__(
        self,
        samples: Iterable[tuple[float, ToolSample]],
        clock: Callable[[], float] = time.monotonic,
        realtime: bool = True,
        loop: bool = False,
    ) -> None:
        self._samples = [(float(t), sample) for t, sample in samples]
        times = np.array([t for t, _ in self._samples], dtype=np.float64)
        if len(times) > 1 and np.any(np.diff(times) < 0):
            raise ReplayError("attempt replay: sample times must not go backwards")
        super().__init__(times, clock, realtime, loop)
        self.name = "attempt replay"

    def poll(self) -> ToolSample | None:
        """The newest due recorded sample, unchanged (None when nothing new is due)."""
        index = self._due_index()
        if index is None:
            return None
        sample = self._samples[index][1]
        self.status = sample.status
        return sample
