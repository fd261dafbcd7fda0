"""STP/1 instrument source over pyserial: a reader thread, reconnects, buttons and haptic output.

:class:`SerialStp1Source` opens any pyserial URL (``serial.serial_for_url``): a port path
(``/dev/ttyACM0``, a pty, the emulator's symlink), ``loop://`` or ``socket://host:port``. All port
I/O runs on one reader thread; ``poll()`` only pops the newest sample from a small deque, so the GUI
thread never blocks on a port. On connect it sends ``ID?``, ``RATE,<Hz>`` (if asked) and
``STREAM,1``.

Timing: sample ``t_s`` follows the DEVICE clock (unwrapped 32-bit ms), offset once per connection
so that it sits on the host's clock (``t_s = device_t_s + offset``, offset fixed at the first line
of each connection); intervals — and therefore filtering and the 250 ms stale limit — are device
time. When the device goes silent, the hold is timed by the host clock since the last line.

Loss: a read error (cable pulled, pty closed) publishes ``DISCONNECTED`` at once, then the thread
reconnects with exponential backoff (``backoff_initial_s`` doubling up to ``backoff_max_s``),
finding the device again at the same path or, when the path is gone, by USB VID:PID / serial
number (given, or learnt from ``serial.tools.list_ports`` at the first connection). Every raw
sample goes to the optional ``recorder`` callback on arrival (before filtering), so nothing
received is lost. A port that is busy, not permitted or absent sets a clear ``message``.

Buttons (``BTN`` mask, hex): bit 0 ``pedal`` (fluoroscopy foot pedal), bit 1 ``drill``, bit 2
``tap``, bit 3 ``pedal_2`` (second pedal); higher bits are named ``button<N>``.

Haptics: ``send_haptic(level)`` queues ``HAPT,<0-255>`` (written by the reader thread);
:func:`tissue_to_haptic_level` maps the tissue at the tip to a level on a logarithmic scale of
the tissue's elastic modulus, read from the one tissue table (:mod:`models.tissue`).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import serial
import serial.tools.list_ports

from fluorosim.haptics import stp1
from fluorosim.haptics.filtering import FilterSettings, TrackingGuard
from fluorosim.haptics.rig_models import RigModel, rig_for_kind
from fluorosim.haptics.source import InstrumentSource, ToolSample, TrackingStatus
from fluorosim.haptics.stp1 import Ack, Btn, Err, Gimb, Hb, Hello, Imuq, Nak, Pose, Stp1Parser
from fluorosim.models.tissue import haptic_level

#: Names of the BTN mask bits (bit → name).
BUTTON_BITS: dict[int, str] = {0: "pedal", 1: "drill", 2: "tap", 3: "pedal_2"}
#: Read timeout of the reader thread, s (bounds how long stop() waits and the hold-tick period).
READ_TIMEOUT_S = 0.01
#: Shortest wait after the last pose line before the hold (STALE) begins, s.
OVERDUE_MIN_S = 0.05
#: A line arriving this much later than the device clock says it should is counted late, s.
LATE_LINE_S = 0.05
#: Clock drift allowed between device and host when judging lateness (200 ppm).
LATE_DRIFT = 200e-6
#: A connected port that yields no valid STP/1 line for this long gets a "no device answers" note.
NO_ANSWER_S = 2.0


def tissue_to_haptic_level(tissue: str) -> int:
    """HAPT level 0–255 of a tissue class or a phantom label name (``L4_pedicle_left``,
    ``femur_left``, ``disc_L4_L5``, ``psoas_left``, ``background``…): the tissue table's feel,
    log-scaled by elastic modulus, cortical bone = 255 (:func:`models.tissue.haptic_level`)."""
    return haptic_level(tissue)


def buttons_from_mask(mask: int) -> frozenset[str]:
    """Button names of a ``BTN`` mask (see :data:`BUTTON_BITS`)."""
    return frozenset(BUTTON_BITS.get(bit, f"button{bit}") for bit in range(32) if mask & (1 << bit))


def describe_open_error(port: str, error: BaseException) -> str:
    """A one-line, user-facing explanation of why ``port`` could not be opened."""
    code = getattr(error, "errno", None)
    text = str(error)
    if code == errno.EACCES or "Permission denied" in text:
        return (
            f"permission denied opening {port}: add your user to the 'dialout' group "
            "(sudo usermod -aG dialout $USER) and log in again"
        )
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
        return f"{port} is busy: another program is using it; close that program and try again"
    if code == errno.ENOENT or "No such file" in text:
        return f"no device at {port}: is it plugged in? ('fluorosim devices list' shows the ports)"
    if code == errno.ECONNREFUSED or "refused" in text:
        return f"nothing is listening at {port}: is the device server or emulator running?"
    return f"cannot open {port}: {text}"


def _is_url(port: str) -> bool:
    return "://" in port


def find_port(
    vid_pid: tuple[int, int] | None = None, serial_number: str | None = None
) -> str | None:
    """Path of the first USB serial port matching VID:PID and/or serial number, or None."""
    if vid_pid is None and serial_number is None:
        return None
    for info in serial.tools.list_ports.comports():
        if vid_pid is not None and (info.vid, info.pid) != tuple(vid_pid):
            continue
        if serial_number is not None and info.serial_number != serial_number:
            continue
        device: str = info.device  # pyserial's ListPortInfo.device, the port's path (untyped)
        return device
    return None


def _port_identity(path: str) -> tuple[tuple[int, int] | None, str | None]:
    real = os.path.realpath(path)
    for info in serial.tools.list_ports.comports():
        if info.device in (path, real) and info.vid is not None and info.pid is not None:
            return (info.vid, info.pid), info.serial_number
    return None, None


class SerialStp1Source(InstrumentSource):
    """An STP/1 device on a serial port or pyserial URL, read on its own thread."""

    def __init__(
        self,
        url_or_port: str,
        *,
        rig: RigModel | None = None,
        baudrate: int = 115200,
        rate_hz: int | None = None,
        filter_settings: FilterSettings | None = None,
        recorder: Callable[[ToolSample], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        reconnect: bool = True,
        vid_pid: tuple[int, int] | None = None,
        serial_number: str | None = None,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        depth_range_mm: tuple[float, float] = stp1.DEFAULT_DEPTH_RANGE_MM,
        serial_factory: Callable[..., Any] | None = None,
    ) -> None:
        """``rig``: calibrated rig model; None = chosen from HELLO's kind, uncalibrated."""
        super().__init__()
        self.port = url_or_port
        self.name = f"STP/1 on {url_or_port}"
        self.rig = rig
        self._rig_given = rig is not None
        self.baudrate = int(baudrate)
        self.rate_hz = rate_hz
        self.recorder = recorder
        self.clock = clock
        self.reconnect = reconnect
        self.vid_pid = vid_pid
        self.serial_number = serial_number
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self._serial_factory = serial_factory
        self.parser = Stp1Parser(depth_range_mm=depth_range_mm)
        self.guard = TrackingGuard(filter_settings)
        self.hello: Hello | None = None
        self.replies: collections.deque[Ack | Nak | Err] = collections.deque(maxlen=32)
        #: (host time s, status) each time the published status changed, in order.
        self.status_changes: list[tuple[float, TrackingStatus]] = []
        self.reader_cpu_s = 0.0  # CPU time used by the reader thread so far
        self.connected_path: str | None = None
        self._out: collections.deque[ToolSample] = collections.deque(maxlen=16)
        self._writes: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None
        self._buttons: frozenset[str] = frozenset()
        self._t_offset_s: float | None = None
        self._last_line_host_s: float | None = None
        self._last_device_t_s: float | None = None
        self._last_pose_host_s: float | None = None
        self._last_published: TrackingStatus | None = None
        self._lag_baseline_s = 0.0
        self._lag_host_s = 0.0
        self.counters.update({"samples": 0, "lines_ok": 0, "disconnects": 0, "connects": 0})

    # -- InstrumentSource -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread (opens the port there); resumes streaming after stop()."""
        if self._thread is not None and self._thread.is_alive():
            if self._paused:
                self._paused = False
                self._writes.put(stp1.cmd_stream(True))
            return
        self._stop.clear()
        self._paused = False
        self._thread = threading.Thread(target=self._run, name=f"stp1-{self.port}", daemon=True)
        self._thread.start()

    def poll(self) -> ToolSample | None:
        """The newest sample since the last poll, or None. Never blocks."""
        newest = None
        while True:
            try:
                newest = self._out.popleft()
            except IndexError:
                return newest

    def stop(self) -> None:
        """Ask the device to stop streaming (``STREAM,0``); the port stays open."""
        if self._thread is not None and self._thread.is_alive():
            self._paused = True
            self._writes.put(stp1.cmd_stream(False))

    def close(self) -> None:
        """Stop the reader thread and release the port; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._thread = None

    # -- host → device ----------------------------------------------------------------------------

    def send(self, line: bytes) -> None:
        """Queue an encoded host command; the reader thread writes it (never blocks)."""
        self._writes.put(line)

    def send_haptic(self, level: int) -> None:
        """Queue ``HAPT,<level>`` (0–255) for the device's brake or vibration motor."""
        self.send(stp1.cmd_hapt(int(min(255, max(0, level)))))

    def zero(self) -> None:
        """Queue ``ZERO`` (tare depth and yaw at the current pose)."""
        self.send(stp1.cmd_zero())

    # -- reader thread ------------------------------------------------------------------------------

    def _set_message(self, text: str) -> None:
        self.message = text

    def _publish(self, sample: ToolSample) -> None:
        self._out.append(sample)
        self.status = sample.status
        if sample.status != self._last_published:
            self._last_published = sample.status
            self.status_changes.append((self.clock(), sample.status))

    def _open(self) -> Any | None:
        target = self.port
        exists = _is_url(target) or self._serial_factory is not None or os.path.exists(target)
        if not exists:
            found = find_port(self.vid_pid, self.serial_number)
            if found is None:
                self._set_message(describe_open_error(target, FileNotFoundError(errno.ENOENT, "")))
                return None
            target = found
        try:
            if self._serial_factory is not None:
                port = self._serial_factory(target, baudrate=self.baudrate, timeout=READ_TIMEOUT_S)
            else:
                port = serial.serial_for_url(
                    target, baudrate=self.baudrate, timeout=READ_TIMEOUT_S, do_not_open=True
                )
                if not _is_url(target) and os.name == "posix":  # Windows ports are exclusive
                    port.exclusive = True
                port.write_timeout = 0.5
                port.open()
        except (serial.SerialException, OSError, ValueError) as error:
            self._set_message(describe_open_error(target, error))
            return None
        if not _is_url(target) and self.vid_pid is None and self.serial_number is None:
            with contextlib.suppress(Exception):
                self.vid_pid, self.serial_number = _port_identity(target)
        self.connected_path = target
        return port

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            port = self._open()
            if port is None:
                if self.status != TrackingStatus.DISCONNECTED or self._last_published is None:
                    self._publish_disconnected()
                if not self.reconnect or self._stop.wait(backoff):
                    break
                backoff = min(self.backoff_max_s, backoff * 2.0)
                continue
            backoff = self.backoff_initial_s
            self.count("connects")
            try:
                self._session(port)
            except (serial.SerialException, OSError) as error:
                self.count("disconnects")
                then = "; reconnecting" if self.reconnect else ""
                self._set_message(
                    f"device on {self.connected_path} was disconnected ({error}){then}"
                )
                self._publish_disconnected()
            except Exception as error:  # a bug must not kill tracking silently: say it, retry
                self.count("reader_errors")
                self._set_message(f"STP/1 reader error on {self.connected_path}: {error!r}")
                self._publish_disconnected()
                self._stop.wait(self.backoff_max_s)
            finally:
                with contextlib.suppress(Exception):
                    port.close()
            if not self.reconnect:
                break
        self.status = TrackingStatus.DISCONNECTED

    def _publish_disconnected(self) -> None:
        last = self.guard.last_output
        raw: dict[str, Any] = {}
        if last is not None and last.tip_lps_mm is not None:
            raw = {"last_tip_lps_mm": last.tip_lps_mm, "last_direction_lps": last.direction_lps}
        t_s = self._now_t_s()
        self._publish(ToolSample(t_s, TrackingStatus.DISCONNECTED, None, None, frozenset(), raw))
        self.guard.reset()

    def _now_t_s(self) -> float:
        """Current time on the sample timeline (device time extrapolated by the host clock)."""
        if self._last_device_t_s is None or self._last_line_host_s is None:
            return self.clock()
        return self._last_device_t_s + (self.clock() - self._last_line_host_s)

    def _session(self, port: Any) -> None:
        self.parser.reset_stream()
        self.guard.reset()
        self._t_offset_s = None
        self._last_pose_host_s = None
        self._buttons = frozenset()
        port.write(stp1.cmd_id())
        if self.rate_hz:
            port.write(stp1.cmd_rate(self.rate_hz))
        if not self._paused:
            port.write(stp1.cmd_stream(True))
        opened_s = self.clock()
        answered = False
        cpu_start = time.thread_time()
        cpu_base = self.reader_cpu_s
        while not self._stop.is_set():
            while True:
                try:
                    line = self._writes.get_nowait()
                except queue.Empty:
                    break
                port.write(line)
            data = port.read(max(1, port.in_waiting))
            if data:
                messages = self.parser.feed(data)
                if messages:
                    if not answered:
                        answered = True
                        if self.message.startswith(("no STP/1", "device on", "no device")):
                            self._set_message("")
                    for message in messages:
                        self._handle(message)
                self._sync_counters()
            elif not answered and self.clock() - opened_s > NO_ANSWER_S:
                answered = True  # say it once per connection
                self._set_message(
                    f"no STP/1 device answers on {self.connected_path} "
                    f"(wrong port or baud rate {self.baudrate}?)"
                )
            if (
                self._last_pose_host_s is not None
                and self._last_published in (TrackingStatus.OK, TrackingStatus.STALE)
                and self.clock() - self._last_pose_host_s > self._overdue_s()
            ):
                held = self.guard.tick(self._now_t_s())
                if held.status != self._last_published:
                    self._publish(replace(held, buttons=self._buttons))
            self.reader_cpu_s = cpu_base + time.thread_time() - cpu_start

    def _overdue_s(self) -> float:
        """A pose sample is overdue (hold begins) after 3 periods, at least 50 ms."""
        rate_hz = self.rate_hz or (self.hello.rate_hz if self.hello else 0) or 100
        return max(OVERDUE_MIN_S, 3.0 / rate_hz)

    def _sync_counters(self) -> None:
        counters = self.parser.counters()
        counters.update(self.guard.counters)
        for key, value in counters.items():
            self.counters[key] = value

    def _timeline(self, device_t_s: float) -> float:
        host_now = self.clock()
        if self._t_offset_s is None:
            self._t_offset_s = host_now - device_t_s
            self._lag_baseline_s = host_now - device_t_s
            self._lag_host_s = host_now
        # late lines: arrival later than the earliest-seen (host − device) offset allows; the
        # baseline may creep up by LATE_DRIFT (device crystal slower than the host's)
        offset_s = host_now - device_t_s
        creep_s = LATE_DRIFT * max(0.0, host_now - self._lag_host_s)
        self._lag_baseline_s = min(self._lag_baseline_s + creep_s, offset_s)
        self._lag_host_s = host_now
        if offset_s - self._lag_baseline_s > LATE_LINE_S:
            self.count("late_lines")
        t_s = device_t_s + self._t_offset_s
        self._last_device_t_s = t_s
        self._last_line_host_s = host_now
        return t_s

    def _handle(self, message: stp1.Message) -> None:
        if isinstance(message, Hello):
            self.hello = message
            self.name = f"STP/1 {message.dev} ({message.kind}) on {self.port}"
            if not self._rig_given:
                self.rig = rig_for_kind(message.kind)
            elif self.rig is not None and self.rig.kind and self.rig.kind != message.kind:
                self.count("rig_mismatch")
                self._set_message(
                    f"{message.dev} on {self.port} sends {message.kind} lines but the calibrated "
                    f"rig reads {self.rig.kind}: choose the calibration made for this device"
                )
            return
        if isinstance(message, Ack | Nak | Err):
            self.replies.append(message)
            if isinstance(message, Nak):
                self.count("nak")
            if isinstance(message, Err):
                self.count("device_errors")
                self._set_message(f"device error {message.code}: {message.text}")
            return
        if isinstance(message, Hb | Btn | Gimb | Pose | Imuq):
            t_s = self._timeline(message.device_t_s)
        else:
            return
        if isinstance(message, Btn):
            self._buttons = buttons_from_mask(message.mask)
            last = self.guard.last_output
            if last is not None:
                self._publish(replace(last, t_s=t_s, buttons=self._buttons))
            return
        if isinstance(message, Hb):
            return
        if self.rig is None:  # no HELLO (yet): infer the rig from the line type, uncalibrated
            self.rig = rig_for_kind({Gimb: "GIMB", Pose: "POSE", Imuq: "IMUQ"}[type(message)])
        self._last_pose_host_s = self._last_line_host_s
        raw = self.rig.sample(message, self._buttons, t_s)
        if raw is None:
            return
        raw.raw["device_t_s"] = message.device_t_s
        self.count("samples")
        if self.recorder is not None:
            try:
                self.recorder(raw)
            except Exception as error:  # a broken recorder must not stop tracking
                self.count("recorder_errors")
                self._set_message(f"recorder failed: {error}")
        self._publish(self.guard.update(raw))
