"""NDI trackers (Polaris, Aurora, Vega) as an instrument source, over serial or TCP.

``NdiSource("ndi:/dev/ttyUSB0")`` (serial, via pyserial) or ``NdiSource("ndi+tcp://host:8765")``
(a Vega on the network). On its reader thread it brings the device up as the Combined API asks
(reference/tracking.md): serial break → ``RESET``; ``INIT:``; on serial ``COMM:50000`` then, 100 ms
after ``OKAY``, the host switches to 115200 baud; ``VER:4``; ``PHSR:02``/``PINIT:hh`` until no
handle needs initialising; ``PHSR:03``/``PENA:hhD``; ``TSTART:`` (passive Polaris tools first get a handle with
``PHRQ:*********1****`` and their ``.rom`` definition written with ``PVWR``); then polls ``TX:0801`` (or
``BX:0801``) and finally ``TSTOP:``. Bytes are parsed by the pure functions of
:mod:`haptics.ndi_protocol`; a corrupt reply is counted and dropped, never turned into a pose.

Timing comes from the device frame number (Polaris 60 Hz, Aurora ≈40 Hz; the rate is chosen from
the ``VER`` reply unless given), unwrapped across the 32-bit counter, not from host time.
Status: a handle reported MISSING → ``MISSING``; port status bit 0x40 → ``OUT_OF_VOLUME`` (no pose);
0x80 (partially in volume) stays OK and is flagged in ``raw``. Without a registration
(``patient_from_tracker``) a tracked tool is ``UNCALIBRATED`` with tip and direction in the tracker
frame. An unplugged adapter or dropped connection → ``DISCONNECTED`` with a message naming the port.

The installed ``ndicapi`` package (``ndicapy``) was probed: it talks to a real port or to the
emulator's pty, but it owns the port in C (no injected transport, blocking reads, errors as codes),
so this module uses its own pure implementation; the tests use ``ndicapy`` as an independent
reference that parses the emulator's TX and BX replies.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fluorosim.haptics.calibration import tip_and_direction, tool_roll_deg
from fluorosim.haptics.ndi_protocol import (
    FRAME_MODULUS,
    TrackingReply,
    bx_length,
    frame_command,
    parse_bx_reply,
    parse_phsr_reply,
    parse_reply,
    parse_tx_reply,
)
from fluorosim.haptics.source import ReaderThreadSource, ToolSample, TrackingStatus
from fluorosim.models.frames import quaternion_to_matrix

POLARIS_RATE_HZ = 60.0
AURORA_RATE_HZ = 40.0
#: How long to wait after COMM's OKAY before changing the host baud (reference/tracking.md).
COMM_SETTLE_S = 0.1
SERIAL_FAST_BAUD = 115200
MAX_HANDLE_ROUNDS = 8
#: Tool definition (.rom) files are written with PVWR in 64-byte chunks; NDI ROMs are ≤ 1 KiB.
ROM_CHUNK_BYTES = 64
ROM_MAX_BYTES = 1024
#: Bytes of line noise skipped while looking for the start of a BX reply.
MAX_NOISE_BYTES = 64
#: Unanswered polls in a row before the source reports DISCONNECTED (keeps trying after).
MAX_SILENT_POLLS = 3


class NdiError(RuntimeError):
    """A bring-up step that failed (the message names the command and the device's answer)."""


def parse_url(url: str) -> tuple[str, str]:
    """``ndi:/dev/ttyUSB0`` → ("serial", "/dev/ttyUSB0"); ``ndi+tcp://h:8765`` → ("tcp", "socket://h:8765")."""
    if url.startswith("ndi+tcp://"):
        rest = url[len("ndi+tcp://") :]
        if ":" not in rest:
            rest += ":8765"
        return "tcp", f"socket://{rest}"
    if url.startswith("ndi:"):
        path = url[len("ndi:") :]
        if not path:
            raise ValueError(f"NDI url {url!r} names no serial port (e.g. ndi:/dev/ttyUSB0)")
        return "serial", path
    raise ValueError(f"NDI url {url!r} must start with 'ndi:' (serial) or 'ndi+tcp://' (Vega)")


def pose_matrix(quaternion_wxyz: tuple[float, ...], position_mm: tuple[float, ...]) -> np.ndarray:
    """``tracker_from_tool`` 4x4 from an NDI quaternion (q0, qx, qy, qz) and position (mm)."""
    matrix = np.eye(4)
    matrix[:3, :3] = quaternion_to_matrix(quaternion_wxyz)
    matrix[:3, 3] = position_mm
    return matrix


def strip_leading_noise(frame: bytes) -> bytes:
    """The longest tail of an ASCII reply made only of reply characters (line noise dropped).

    TX replies hold only ``0-9 A-Z a-z + -`` and LF before the final CR; anything earlier than
    the last other byte cannot belong to the reply. The CRC still decides whether the tail is good.
    """
    allowed = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-\n\r"
    index = len(frame)
    while index > 0 and frame[index - 1] in allowed:
        index -= 1
    return frame[index:]


class FrameClock:
    """Device frame numbers → seconds since the first frame, unwrapping the 32-bit counter."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self._first: int | None = None
        self._last: int | None = None
        self._wraps = 0

    def __call__(self, frame_number: int) -> float:
        if self._first is None:
            self._first = frame_number
        elif (
            self._last is not None
            and frame_number < self._last
            and self._last - frame_number > FRAME_MODULUS // 2
        ):
            self._wraps += 1
        self._last = frame_number
        return (frame_number + self._wraps * FRAME_MODULUS - self._first) / self.rate_hz


class NdiSource(ReaderThreadSource):
    """One tool of an NDI tracker as an :class:`InstrumentSource` (reader thread, newest sample)."""

    thread_name = "ndi-reader"

    def __init__(
        self,
        url: str,
        mode: str = "TX",
        tool_handle: int | None = None,
        tool_from_tip: ArrayLike | None = None,
        patient_from_tracker: ArrayLike | None = None,
        rate_hz: float | None = None,
        rom_files: list[str | Path] | tuple[str | Path, ...] = (),
        timeout_s: float = 1.0,
        serial_factory: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if mode not in ("TX", "BX"):
            raise ValueError(f"mode must be 'TX' or 'BX', got {mode!r}")
        self.url = url
        self.transport, self.port_url = parse_url(url)
        self.mode = mode
        self.tool_handle = tool_handle
        self.tool_from_tip = (
            None if tool_from_tip is None else np.asarray(tool_from_tip, dtype=float)
        )
        self.patient_from_tracker = (
            None if patient_from_tracker is None else np.asarray(patient_from_tracker, dtype=float)
        )
        self.rate_hz = rate_hz
        self.rom_files = [Path(rom) for rom in rom_files]
        self.timeout_s = timeout_s
        self.clock = clock
        self.name = f"NDI on {url}"
        self.version_text = ""
        self.handles: list[int] = []
        if serial_factory is None:
            import serial

            serial_factory = serial.serial_for_url
        self._serial_factory = serial_factory
        self._port: Any = None
        self._frame_clock: FrameClock | None = None
        self._last_frame: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop tracking (TSTOP) and release the port."""
        self.join_timeout_s = 3.0 * self.timeout_s + 1.0
        self._stop_reader()
        self._close_port()
        self.status = TrackingStatus.DISCONNECTED

    def wait_until_tracking(self, timeout_s: float = 5.0) -> bool:
        """Block until bring-up finished (tracking) or failed; for scripts and tests."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.counters.get("tracking_started") or self.message:
                return bool(self.counters.get("tracking_started"))
            time.sleep(0.01)
        return False

    # -- transport ---------------------------------------------------------------------------

    def _open_port(self) -> None:
        kwargs: dict[str, Any] = {"timeout": self.timeout_s}
        if self.transport == "serial":
            kwargs.update(baudrate=9600, bytesize=8, parity="N", stopbits=1)
        self._port = self._serial_factory(self.port_url, **kwargs)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):  # closing a dead port must not raise
                port.close()

    def _send(self, command: str, params: str = "") -> None:
        self._port.write(frame_command(command, params))
        self.count("commands_sent")

    def _read_ascii(self) -> bytes:
        data: bytes = self._port.read_until(b"\r")
        if not data.endswith(b"\r"):
            raise TimeoutError("no reply")
        return data

    def _command(self, command: str, params: str = "", expect_okay: bool = True) -> str:
        self._send(command, params)
        try:
            raw = self._read_ascii()
        except TimeoutError:
            raise NdiError(
                f"{command}:{params} got no reply within {self.timeout_s:.1f} s"
            ) from None
        reply = parse_reply(raw)
        if reply.kind == "BAD":
            self.count("crc_errors")
            raise NdiError(f"{command}:{params} got a corrupt reply ({reply.problem})")
        if reply.kind == "ERROR":
            raise NdiError(f"{command}:{params} was refused: ERROR{reply.error_code:02X}")
        if expect_okay and reply.kind != "OKAY":
            raise NdiError(f"{command}:{params} expected OKAY, got {reply.body[:40]!r}")
        return reply.body

    # -- bring-up ----------------------------------------------------------------------------

    def _bring_up(self) -> None:
        port = self._port
        if self.transport == "serial":
            try:
                port.send_break(0.25)
            except Exception:  # noqa: BLE001 - a pty or adapter without break support
                self.count("break_unsupported")
            old_timeout = port.timeout
            port.timeout = 0.3
            try:
                reset = parse_reply(port.read_until(b"\r"))
                if reset.kind == "RESET":
                    self.count("device_resets")
            finally:
                port.timeout = old_timeout
            port.reset_input_buffer()
        self._command("INIT")
        if self.transport == "serial":
            self._command("COMM", "50000")
            time.sleep(COMM_SETTLE_S)
            port.baudrate = SERIAL_FAST_BAUD
        self.version_text = self._command("VER", "4", expect_okay=False)
        for rom in self.rom_files:
            self._load_rom(rom)
        if self.rate_hz is None:
            self.rate_hz = (
                AURORA_RATE_HZ if "aurora" in self.version_text.lower() else POLARIS_RATE_HZ
            )
        for phsr, action, suffix in (("02", "PINIT", ""), ("03", "PENA", "D")):
            for _ in range(MAX_HANDLE_ROUNDS):
                body = self._command("PHSR", phsr, expect_okay=False)
                handles = parse_phsr_reply(body)
                if handles is None:
                    raise NdiError(f"PHSR:{phsr} reply is garbled: {body[:40]!r}")
                if not handles:
                    break
                for handle in handles:
                    self._command(action, f"{handle:02X}{suffix}")
                    if action == "PENA" and handle not in self.handles:
                        self.handles.append(handle)
            else:
                raise NdiError(f"PHSR:{phsr} still lists handles after {MAX_HANDLE_ROUNDS} rounds")
        if not self.handles:
            raise NdiError("no tool found: plug in a tool (or load its ROM) and start again")
        if self.tool_handle is None:
            self.tool_handle = self.handles[0]
        elif self.tool_handle not in self.handles:
            raise NdiError(
                f"tool handle {self.tool_handle:02X} is not enabled; the device has "
                + ", ".join(f"{h:02X}" for h in self.handles)
            )
        self._command("TSTART")
        self._frame_clock = FrameClock(self.rate_hz)
        self._last_frame = None
        self.count("tracking_started")

    def _load_rom(self, rom: Path) -> None:
        """A passive (Polaris) tool's definition: PHRQ for a wireless handle, PVWR in 64-byte chunks."""
        try:
            data = rom.read_bytes()
        except OSError as exc:
            raise NdiError(f"cannot read tool definition file {rom}: {exc}") from None
        if not data or len(data) > ROM_MAX_BYTES:
            raise NdiError(
                f"tool definition file {rom} has {len(data)} bytes (expected 1–{ROM_MAX_BYTES})"
            )
        body = self._command("PHRQ", "*********1****", expect_okay=False)
        if len(body) != 2 or not all(c in "0123456789ABCDEFabcdef" for c in body):
            raise NdiError(f"PHRQ for {rom.name} returned {body[:20]!r}, not a handle")
        handle = body.upper()
        for address in range(0, len(data), ROM_CHUNK_BYTES):
            chunk = data[address : address + ROM_CHUNK_BYTES].ljust(ROM_CHUNK_BYTES, b"\x00")
            self._command("PVWR", f"{handle}{address:04X}{chunk.hex().upper()}")
        self.count("roms_loaded")

    # -- tracking ----------------------------------------------------------------------------

    def _read_tracking_reply(self) -> TrackingReply | None:
        if self.mode == "TX":
            raw = self._read_ascii()
            reply = parse_tx_reply(raw)
            if reply is None:
                clean = strip_leading_noise(raw)
                if clean != raw and (reply := parse_tx_reply(clean)) is not None:
                    self.count("noise_bytes_skipped", len(raw) - len(clean))
                    return reply
                self.count("parse_errors" if parse_reply(raw).kind != "BAD" else "crc_errors")
            return reply
        head = self._port.read(2)
        skipped = 0
        while (
            len(head) == 2 and head != b"\xc4\xa5" and head != b"ER" and skipped < MAX_NOISE_BYTES
        ):
            head = head[1:] + self._port.read(1)
            skipped += 1
        if skipped:
            self.count("noise_bytes_skipped", skipped)
        if len(head) < 2:
            raise TimeoutError("no reply")
        if head != b"\xc4\xa5":
            rest = self._port.read_until(b"\r")
            self.count("crc_errors" if parse_reply(head + rest).kind == "BAD" else "parse_errors")
            return None
        header = head + self._port.read(4)
        total = bx_length(header)
        if total is None:
            self.count("crc_errors")
            self._port.reset_input_buffer()
            return None
        data = header + self._port.read(total - len(header))
        reply = parse_bx_reply(data)
        if reply is None:
            self.count("crc_errors")
        return reply

    def _sample_from(self, reply: TrackingReply) -> ToolSample | None:
        pose = next((h for h in reply.handles if h.handle == self.tool_handle), None)
        if pose is None:
            self.count("tool_not_in_reply")
            return None
        if pose.frame_number is None:  # a disabled handle carries no frame
            return ToolSample(
                self.clock(), TrackingStatus.MISSING, None, None, frozenset(), {"state": pose.state}
            )
        if pose.frame_number == self._last_frame:
            self.count("duplicate_frames")
            return None
        self._last_frame = pose.frame_number
        assert self._frame_clock is not None
        t_s = self._frame_clock(pose.frame_number)
        raw: dict[str, Any] = {
            "frame_number": pose.frame_number,
            "port_status": pose.port_status,
            "system_status": reply.system_status,
            "handle": pose.handle,
            "host_t_s": self.clock(),
            "partially_in_volume": pose.partially_in_volume,
        }
        if pose.state != "OK" or pose.quaternion_wxyz is None or pose.position_mm is None:
            return ToolSample(t_s, TrackingStatus.MISSING, None, None, frozenset(), raw)
        tracker_from_tool = pose_matrix(pose.quaternion_wxyz, pose.position_mm)
        raw["tracker_from_tool"] = tracker_from_tool
        raw["rms_mm"] = pose.rms_mm
        if pose.out_of_volume:
            return ToolSample(t_s, TrackingStatus.OUT_OF_VOLUME, None, None, frozenset(), raw)
        tip, direction = tip_and_direction(
            tracker_from_tool, self.tool_from_tip, self.patient_from_tracker
        )
        roll = tool_roll_deg(tracker_from_tool, self.tool_from_tip, self.patient_from_tracker)
        status = (
            TrackingStatus.OK
            if self.patient_from_tracker is not None
            else TrackingStatus.UNCALIBRATED
        )
        return ToolSample(t_s, status, tip, direction, frozenset(), raw, roll)

    def _run(self) -> None:
        try:
            self._open_port()
        except Exception as exc:  # noqa: BLE001 - pyserial raises SerialException/OSError/ValueError
            self.message = f"cannot open NDI port {self.port_url}: {exc}"
            self.status = TrackingStatus.DISCONNECTED
            return
        try:
            self._bring_up()
            assert self.rate_hz is not None
            period_s = 1.0 / self.rate_hz
            silent = 0
            while not self._stop.is_set():
                self._send(self.mode, "0801")
                try:
                    reply = self._read_tracking_reply()
                except TimeoutError:
                    self.count("timeouts")
                    silent += 1
                    if silent == MAX_SILENT_POLLS:
                        self.message = f"NDI on {self.port_url}: the device stopped answering"
                        self.status = TrackingStatus.DISCONNECTED
                        with self._lock:
                            self._newest = ToolSample(
                                self.clock(), TrackingStatus.DISCONNECTED, None, None
                            )
                    continue
                if silent >= MAX_SILENT_POLLS:
                    self.message = ""
                silent = 0
                if reply is None:
                    continue
                sample = self._sample_from(reply)
                if sample is not None:
                    self.count("samples")
                    self.status = sample.status
                    with self._lock:
                        self._newest = sample
                self._stop.wait(period_s / 2.0)
            with contextlib.suppress(NdiError, OSError):
                self._command("TSTOP")
        except NdiError as exc:
            self.message = f"NDI on {self.port_url}: {exc}"
            self.status = TrackingStatus.DISCONNECTED
        except Exception as exc:  # noqa: BLE001 - SerialException/OSError: unplugged, link lost
            self.message = f"NDI on {self.port_url}: connection lost ({type(exc).__name__}: {exc})"
            self.status = TrackingStatus.DISCONNECTED
            self.count("disconnects")
            with self._lock:
                self._newest = ToolSample(self.clock(), TrackingStatus.DISCONNECTED, None, None)
        finally:
            self._close_port()
