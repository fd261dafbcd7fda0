"""The instrument-source interface every device implements, and the samples it yields.

A source (STP/1 serial, NDI, OpenIGTLink, replay, scripted, mouse) is started, polled for its newest
sample, stopped and closed; it is a context manager. ``poll()`` never blocks on a device: serial and
network sources read on their own thread and hand the newest sample over. A missing sample is never
a zero pose: when tracking is lost the sample carries the status and the last pose is flagged, not
invented.

Poses are in the LPS patient frame (mm) once calibration and registration are applied; a source that
is not yet registered reports ``UNCALIBRATED`` with the pose in its own tracker frame in ``raw``.
"""

from __future__ import annotations

import enum
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from fluorosim.models.pose import ToolPose


class TrackingStatus(enum.Enum):
    """What the newest sample of a source can be trusted for."""

    OK = "OK"
    STALE = "STALE"  # last pose held, younger than the stale limit (250 ms)
    MISSING = "MISSING"  # the device reports the tool not seen, or lost longer than the limit
    OUT_OF_VOLUME = "OUT_OF_VOLUME"
    UNCALIBRATED = "UNCALIBRATED"
    DISCONNECTED = "DISCONNECTED"


@dataclass(frozen=True)
class ToolSample:
    """One timestamped instrument sample in the patient frame."""

    t_s: float
    status: TrackingStatus
    tip_lps_mm: NDArray[np.float64] | None
    direction_lps: NDArray[np.float64] | None  # unit vector from handle toward tip
    buttons: frozenset[str] = frozenset()
    raw: dict[str, Any] = field(default_factory=dict)
    roll_deg: float = 0.0  # turn about the shaft (models.pose); 0 for a source that cannot tell

    @property
    def has_pose(self) -> bool:
        """True when a usable pose is present (OK or held STALE)."""
        return (
            self.status in (TrackingStatus.OK, TrackingStatus.STALE)
            and self.tip_lps_mm is not None
            and self.direction_lps is not None
        )

    @property
    def pose(self) -> ToolPose | None:
        """Tip, direction and roll as the one pose type (None when the sample carries no pose)."""
        if self.tip_lps_mm is None or self.direction_lps is None:
            return None
        return ToolPose(self.tip_lps_mm, self.direction_lps, self.roll_deg)


class SampleSource(Protocol):
    """What the session and the GUI need of an instrument source: start, poll, stop, close.

    Every :class:`InstrumentSource` is one; so is any object with these methods (a scripted or
    replayed stream in a test).
    """

    def start(self) -> None: ...
    def poll(self) -> ToolSample | None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class InstrumentSource(ABC):
    """Start, poll, stop, close; a context manager; counters for the diagnostics view."""

    #: Short human name shown in the device picker, e.g. "STP/1 on /dev/ttyACM0".
    name: str = "instrument"

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.status: TrackingStatus = TrackingStatus.DISCONNECTED
        self.message: str = ""  # last user-facing problem ("port /dev/ttyUSB0 is busy"), or ""

    @abstractmethod
    def start(self) -> None:
        """Open the device and begin producing samples; a user-caused failure sets ``message``."""

    @abstractmethod
    def poll(self) -> ToolSample | None:
        """The newest sample since the last poll (None when nothing new). Never blocks."""

    @abstractmethod
    def stop(self) -> None:
        """Stop producing samples (the device stays open)."""

    def close(self) -> None:
        """Release the device; safe to call twice."""
        self.stop()

    def count(self, counter: str, amount: int = 1) -> None:
        """Add to a diagnostics counter (checksum failures, sequence gaps, …)."""
        self.counters[counter] = self.counters.get(counter, 0) + amount

    def __enter__(self) -> InstrumentSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ReaderThreadSource(InstrumentSource):
    """A source whose device is read on a thread of its own; ``poll`` hands over the newest sample.

    Subclasses implement ``_run`` (the reader loop: it returns when ``_stop`` is set) and call
    ``_publish`` for each sample; ``stop`` joins the thread within ``join_timeout_s``.
    """

    thread_name = "instrument-reader"
    join_timeout_s = 5.0

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._newest: ToolSample | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _run(self) -> None:
        """The reader loop, on its own thread."""

    def start(self) -> None:
        """Start the reader thread (returns at once; a user-caused failure sets ``message``)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.message = ""
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _stop_reader(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout_s)
            self._thread = None

    def stop(self) -> None:
        """Stop the reader thread."""
        self._stop_reader()
        self.status = TrackingStatus.DISCONNECTED

    def poll(self) -> ToolSample | None:
        """The newest sample since the last poll (None when nothing new)."""
        with self._lock:
            sample, self._newest = self._newest, None
        return sample

    def _publish(self, sample: ToolSample) -> None:
        """Make ``sample`` the newest (called on the reader thread)."""
        with self._lock:
            self._newest = sample
