"""STP/1 device emulators (gimbal, pose, IMU) on a pseudo-terminal or a local TCP port.

An emulator is a pure device model (:class:`Stp1Device`: host command bytes in, reply and stream
bytes out, timed by the device clock) driven by :class:`EmulatorRunner` over a transport:

- :class:`PtyTransport` holds the master side of ``os.openpty()``; the code under test opens the
  slave with an unchanged ``serial.Serial``. A stable symlink it manages
  (``/tmp/fluorosim-emu-XXXX/ttyEMU0`` → current slave) is the path to connect to. Unplugging
  closes the master (the host then sees ``SerialException``/EIO, exactly as when a USB adapter is
  pulled) and removes the symlink; replugging creates a NEW pty (a pty cannot be reopened) and
  points the symlink at it, so a source reconnecting by path finds the device again.
- :class:`TcpTransport` listens on 127.0.0.1 only (connect with ``socket://127.0.0.1:PORT``);
  unplugging drops the client and refuses connections for a while.

The motion is scripted: by default a slow insertion sweep, or a JSON list of keyframes
``[{"t_s": 0, "yaw": 0, "pitch": -30, "roll": 0, "depth": 10, "buttons": 0}, …]`` linearly
interpolated (held after the last). Faults (``garbage``, ``checksum``, ``gaps``, ``unplug``) are
injected while streaming and counted in :attr:`Stp1Device.injected` so tests can compare what the
host counted with what was done to it. Randomness comes from an injected ``numpy`` Generator.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import socket
import tempfile
import threading
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fluorosim.haptics import stp1
from fluorosim.haptics.stp1 import Ack, Command, Gimb, Hb, Hello, Imuq, Nak, Pose, Stp1Parser
from fluorosim.models import frames

KINDS = {"gimbal": "GIMB", "pose": "POSE", "imu": "IMUQ"}
FAULTS = ("garbage", "checksum", "gaps", "unplug")
#: Heartbeat period when not streaming (STP/1: at least 2 Hz when idle), s.
HEARTBEAT_PERIOD_S = 0.5
#: Distance from the tracked marker origin back along the shaft to the tip of the emulated
#: 6-DOF tool, mm (a pose rig is calibrated with ``tool_from_tip = translation((0, 0, 150))``).
POSE_TOOL_TIP_OFFSET_MM = 150.0
#: Device → host backlog kept while the host lags (bytes); beyond it the backlog is discarded.
PTY_BACKLOG_BYTES = 256 * 1024
#: Where the emulated 6-DOF tool's entry point sits in the tracker frame, mm (1 m from camera).
POSE_ENTRY_TRACKER_MM = (0.0, 0.0, -1000.0)


@dataclass(frozen=True)
class MotionState:
    """Gimbal-style motion at one instant."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    depth_mm: float
    buttons: int = 0


def default_sweep(t_s: float) -> MotionState:
    """A slow insertion sweep: yaw ±8°, pitch −35 ± 5°, depth 10→50→10 mm over 20 s.

    The foot pedal (button bit 0) is pressed for 0.5 s every 5 s.
    """
    phase = 2.0 * math.pi * t_s
    depth = 10.0 + 40.0 * (1.0 - math.cos(phase / 20.0)) / 2.0
    pedal = 1 if (t_s % 5.0) >= 4.5 else 0
    return MotionState(
        8.0 * math.sin(phase / 20.0), -35.0 + 5.0 * math.sin(phase / 13.0), 0.0, depth, pedal
    )


class MotionScript:
    """Keyframes ``{t_s, yaw, pitch, roll, depth, buttons}`` interpolated linearly in time."""

    KEYS = ("yaw", "pitch", "roll", "depth")

    def __init__(self, keyframes: list[dict[str, Any]], where: str = "motion script") -> None:
        if not isinstance(keyframes, list) or not keyframes:
            raise ValueError(f"{where}: expected a non-empty JSON list of keyframes")
        rows = []
        for index, frame in enumerate(keyframes):
            if not isinstance(frame, dict) or "t_s" not in frame:
                raise ValueError(f"{where}: keyframe {index} needs a 't_s' field")
            try:
                values = [float(frame["t_s"])] + [float(frame.get(k, 0.0)) for k in self.KEYS]
                buttons = int(frame.get("buttons", 0))
            except (TypeError, ValueError) as error:
                raise ValueError(f"{where}: keyframe {index}: {error}") from None
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{where}: keyframe {index} has a non-finite value")
            rows.append((*values, buttons))
        rows.sort(key=lambda row: row[0])
        self._t = np.array([row[0] for row in rows])
        self._values = np.array([row[1:5] for row in rows])
        self._buttons = [int(row[5]) for row in rows]

    @classmethod
    def load(cls, path: str | Path) -> MotionScript:
        """Read a JSON keyframe file; ValueError naming the file on any problem."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as error:
            raise ValueError(f"cannot read motion script {path}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"motion script {path} is not valid JSON: {error}") from None
        return cls(data, where=f"motion script {path}")

    def __call__(self, t_s: float) -> MotionState:
        """The interpolated state at ``t_s`` (held before the first and after the last key)."""
        values = [float(np.interp(t_s, self._t, self._values[:, i])) for i in range(4)]
        index = max(0, int(np.searchsorted(self._t, t_s, side="right")) - 1)
        yaw, pitch, roll, depth = values
        return MotionState(yaw, pitch, roll, depth, buttons=self._buttons[index])


@dataclass
class FaultPlan:
    """Which faults to inject and how often (probabilities per streamed line)."""

    garbage: bool = False
    checksum: bool = False
    gaps: bool = False
    unplug: bool = False
    garbage_probability: float = 0.05
    checksum_probability: float = 0.03
    gap_probability: float = 0.03
    unplug_every_s: float = 3.0
    unplug_for_s: float = 1.0

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> FaultPlan:
        """``"garbage,checksum"`` → plan; ValueError naming an unknown fault."""
        if text is None:
            return cls()
        names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
        names = [n for n in names if n]
        unknown = [n for n in names if n not in FAULTS]
        if unknown:
            raise ValueError(
                f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}"
            )
        return cls(**{n: True for n in names})


def _rotation_from_gimbal(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Rotation whose x axis is the gimbal shaft direction (roll about the shaft)."""
    return (
        frames.rotation_about_axis((0, 0, 1), yaw_deg)
        @ frames.rotation_about_axis((0, 1, 0), -pitch_deg)
        @ frames.rotation_about_axis((1, 0, 0), roll_deg)
    )


@dataclass
class Stp1Device:
    """The device side of STP/1 for one power-on session (no I/O; bytes in, bytes out)."""

    kind: str = "gimbal"  # gimbal | pose | imu
    motion: Callable[[float], MotionState] = default_sweep
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    rate_hz: int = 100
    faults: FaultPlan = field(default_factory=FaultPlan)
    t0_ms: int = 0  # device clock at power-on (set near 2**32 to exercise the wrap)
    uid: str = "EMU0001"
    noise_mm: float = 0.05
    streaming: bool = False
    injected: dict[str, int] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)
    haptic_level: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown emulator kind {self.kind!r}; choose from {', '.join(KINDS)}")
        self._parser = Stp1Parser(role="device")
        self._seq = 0
        self._next_line_s = 0.0
        self._next_hb_s = 0.0
        self._last_buttons = 0
        self._yaw_zero_deg = 0.0
        self._depth_zero_mm = 0.0
        self._clean_lines = 1  # lines to send without faults (after HELLO the host re-syncs)
        for name in ("garbage_bytes", "garbage_bursts", "checksum", "gaps", "lines"):
            self.injected.setdefault(name, 0)

    # -- host → device ------------------------------------------------------------------------

    def hello(self) -> bytes:
        """The ``HELLO`` line of this device."""
        self._clean_lines = 1
        return stp1.encode_message(
            Hello(
                1, f"fluorosim-emu-{self.kind}", "1.0.0", self.uid, KINDS[self.kind], self.rate_hz
            )
        )

    def handle(self, data: bytes, t_s: float) -> bytes:
        """Consume host bytes; return the replies (``HELLO``, ``ACK``, ``NAK``)."""
        out = b""
        for command in self._parser.feed(data):
            assert isinstance(command, Command)
            self.commands.append(command)
            name, value = command.name, command.value
            if name == "ID?":
                out += self.hello()
                continue
            if name == "RATE" and value is not None:
                self.rate_hz = value
            elif name == "STREAM":
                self.streaming = bool(value)
                self._next_line_s = t_s
            elif name == "ZERO":
                state = self.motion(t_s)
                self._yaw_zero_deg, self._depth_zero_mm = state.yaw_deg, state.depth_mm
            elif name == "HAPT":
                if self.kind != "gimbal":
                    out += stp1.encode_message(Nak("HAPT", "no actuator"))
                    continue
                self.haptic_level = int(value or 0)
            out += stp1.encode_message(Ack(name))
        return out

    # -- device → host ------------------------------------------------------------------------

    def _t_ms(self, t_s: float) -> int:
        return (self.t0_ms + int(round(t_s * 1000.0))) % (1 << 32)

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % (1 << 16)
        return seq

    def _pose_message(self, t_s: float) -> Gimb | Pose | Imuq:
        state = self.motion(t_s)
        yaw = state.yaw_deg - self._yaw_zero_deg
        depth = state.depth_mm - self._depth_zero_mm
        seq, t_ms = self._next_seq(), self._t_ms(t_s)
        noise = self.rng.normal(0.0, self.noise_mm, size=3) if self.noise_mm > 0 else np.zeros(3)
        if self.kind == "gimbal":
            return Gimb(seq, t_ms, "OK", yaw, state.pitch_deg, state.roll_deg, depth + noise[0])
        rotation = _rotation_from_gimbal(yaw, state.pitch_deg, state.roll_deg)
        q = frames.matrix_to_quaternion(rotation)
        if self.kind == "imu":
            return Imuq(seq, t_ms, "OK", q[0], q[1], q[2], q[3], 3)
        # pose: tool frame z axis along the shaft, marker origin 150 mm behind the tip
        tool_rotation = rotation @ np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # z → shaft
        shaft = rotation[:, 0]
        tip = np.asarray(POSE_ENTRY_TRACKER_MM) + depth * shaft
        origin = tip - POSE_TOOL_TIP_OFFSET_MM * shaft + noise
        qt = frames.matrix_to_quaternion(tool_rotation)
        x, y, z = origin
        return Pose(seq, t_ms, "OK", x, y, z, qt[0], qt[1], qt[2], qt[3], 0.12)

    def _faulty(self, line: bytes) -> bytes:
        """Apply the fault plan to one streamed line (may return b"")."""
        if self._clean_lines > 0:
            self._clean_lines -= 1
            return line
        plan, rng = self.faults, self.rng
        if plan.gaps and rng.random() < plan.gap_probability:
            self.injected["gaps"] += 1
            return b""
        if plan.checksum and rng.random() < plan.checksum_probability:
            star = line.rindex(b"*")
            wrong = (int(line[star + 1 : star + 3], 16) ^ int(rng.integers(1, 256))) & 0xFF
            line = line[: star + 1] + f"{wrong:02X}".encode() + b"\r\n"
            self.injected["checksum"] += 1
        if plan.garbage and rng.random() < plan.garbage_probability:
            size = int(rng.integers(1, 24))
            junk = bytes(b for b in rng.integers(0, 256, size=size).tolist() if b != 0x24)
            if junk:
                self.injected["garbage_bytes"] += len(junk)
                self.injected["garbage_bursts"] += 1
                line = junk + line
        return line

    def step(self, t_s: float) -> bytes:
        """Every line due by device time ``t_s`` (s since power-on)."""
        out = b""
        if self.streaming:
            period = 1.0 / max(1, self.rate_hz)
            if t_s - self._next_line_s > 1.0:  # we were suspended: do not flood
                self._next_line_s = t_s
            while self._next_line_s <= t_s + 1e-9:  # float steps of 1/rate drift
                line_t = self._next_line_s
                self._next_line_s += period
                buttons = self.motion(line_t).buttons
                if buttons != self._last_buttons:
                    self._last_buttons = buttons
                    out += stp1.encode(f"BTN,{self._next_seq()},{self._t_ms(line_t)},{buttons:02X}")
                line = self._faulty(stp1.encode_message(self._pose_message(line_t)))
                self.injected["lines"] += 1
                out += line
            self._next_hb_s = t_s + HEARTBEAT_PERIOD_S
        elif t_s >= self._next_hb_s:
            self._next_hb_s = t_s + HEARTBEAT_PERIOD_S
            out += stp1.encode_message(Hb(self._next_seq(), self._t_ms(t_s)))
        return out

    def next_due_s(self) -> float:
        """Device time of the next line this device will send."""
        return self._next_line_s if self.streaming else self._next_hb_s


# ---------------------------------------------------------------------------------------------
# Transports


class Transport(Protocol):
    """Byte pipe to the host with plug/unplug."""

    path: str

    def plug(self) -> None: ...
    def unplug(self) -> None: ...
    def connected(self) -> bool: ...
    def read(self, timeout_s: float) -> bytes: ...
    def write(self, data: bytes) -> int: ...
    def close(self) -> None: ...


class PtyTransport:
    """Pseudo-terminal: the emulator holds the master, the host opens ``path`` (a symlink)."""

    def __init__(self, link_dir: str | Path | None = None, link_name: str = "ttyEMU0") -> None:
        self._own_dir = link_dir is None
        self.link_dir = Path(link_dir or tempfile.mkdtemp(prefix="fluorosim-emu-"))
        self.path = str(self.link_dir / link_name)
        self.slave_path = ""
        self._master: int | None = None
        self._slave: int | None = None
        self.dropped_bytes = 0  # discarded because the host was not reading at all
        self._pending = bytearray()

    def plug(self) -> None:
        """Create a new pty and point the symlink at its slave."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._pending = bytearray()
        self.slave_path = os.ttyname(slave)
        tmp = self.path + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(self.slave_path, tmp)
        os.replace(tmp, self.path)

    def unplug(self) -> None:
        """Remove the symlink and close the pty (the host's reads fail, like a pulled cable)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def connected(self) -> bool:
        """True while plugged in."""
        return self._master is not None

    def read(self, timeout_s: float) -> bytes:
        """Host → device bytes (waits up to ``timeout_s``)."""
        if self._master is None:
            time.sleep(timeout_s)
            return b""
        ready, _, _ = select.select([self._master], [], [], max(0.0, timeout_s))
        if not ready:
            return b""
        try:
            return os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def write(self, data: bytes) -> int:
        """Device → host bytes, queued while the pty buffer is full (lines are never split).

        Like a USB CDC device with flow control, nothing is lost while the host merely lags; if
        the backlog passes :data:`PTY_BACKLOG_BYTES` (host not reading at all) it is discarded
        whole and counted in ``dropped_bytes``.
        """
        if self._master is None:
            return 0
        self._pending += data
        if len(self._pending) > PTY_BACKLOG_BYTES:
            self.dropped_bytes += len(self._pending)
            self._pending.clear()
            return 0
        if not self._pending:
            return 0
        try:
            written = os.write(self._master, self._pending)
        except BlockingIOError:
            written = 0
        except OSError:
            return 0
        del self._pending[:written]
        return written

    def close(self) -> None:
        """Unplug and remove the link directory."""
        self.unplug()
        if self._own_dir:
            with contextlib.suppress(OSError):
                self.link_dir.rmdir()


class TcpTransport:
    """A raw TCP port on 127.0.0.1 (``socket://127.0.0.1:PORT``), one client at a time."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = int(port)
        self.port = int(port)
        self.path = f"socket://127.0.0.1:{port}"
        self._server: socket.socket | None = None
        self._client: socket.socket | None = None

    def plug(self) -> None:
        """Listen (again) on the port."""
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(1)
        server.setblocking(False)
        self._server = server
        self.port = server.getsockname()[1]
        self.path = f"socket://127.0.0.1:{self.port}"

    def unplug(self) -> None:
        """Drop the client and stop listening."""
        for sock in (self._client, self._server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._client = self._server = None

    def connected(self) -> bool:
        """True while listening."""
        return self._server is not None

    def _accept(self) -> None:
        if self._server is None or self._client is not None:
            return
        try:
            client, _ = self._server.accept()
        except (BlockingIOError, OSError):
            return
        client.setblocking(False)
        self._client = client

    def read(self, timeout_s: float) -> bytes:
        """Host → device bytes."""
        self._accept()
        sockets = [s for s in (self._client, self._server) if s is not None]
        if not sockets:
            time.sleep(timeout_s)
            return b""
        ready, _, _ = select.select(sockets, [], [], max(0.0, timeout_s))
        self._accept()
        if self._client is None or self._client not in ready:
            return b""
        try:
            data = self._client.recv(4096)
        except (BlockingIOError, OSError):
            return b""
        if not data:  # the host closed the connection
            self._client.close()
            self._client = None
        return data

    def write(self, data: bytes) -> int:
        """Device → host bytes (dropped when no client)."""
        if self._client is None:
            return 0
        try:
            return self._client.send(data)
        except (BlockingIOError, OSError):
            return 0

    def close(self) -> None:
        """Stop serving."""
        self.unplug()


class EmulatorRunner:
    """Drives a device model over a transport in real time, with unplug/replug cycles.

    ``device_factory()`` builds the device for each power-on (a replug restarts the device: its
    sequence numbers, clock and streaming state start over, as real USB devices do).
    ``on_event(text)`` is told "plugged <path>", "unplugged", … as they happen.
    """

    def __init__(
        self,
        device_factory: Callable[[], Stp1Device],
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.device_factory = device_factory
        self.transport = transport
        self.clock = clock
        self.on_event = on_event or (lambda text: None)
        self.devices: list[Stp1Device] = []
        self.unplugs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def device(self) -> Stp1Device:
        """The device of the current power-on session."""
        return self.devices[-1]

    @property
    def path(self) -> str:
        """Where to connect (stable across replugs for a pty)."""
        return self.transport.path

    def injected(self) -> dict[str, int]:
        """Faults injected over every power-on session, summed."""
        total: dict[str, int] = {"unplugs": self.unplugs}
        for device in self.devices:
            for key, value in device.injected.items():
                total[key] = total.get(key, 0) + value
        return total

    def _power_on(self) -> float:
        self.transport.plug()
        self.devices.append(self.device_factory())
        t_on = self.clock()
        self.transport.write(self.device.hello())
        self.on_event(f"plugged {self.transport.path}")
        return t_on

    def run(self, seconds: float | None = None) -> None:
        """Serve until ``seconds`` elapse or :meth:`stop` is called."""
        start = self.clock()
        t_on = self._power_on()
        plan = self.device.faults
        next_unplug = start + plan.unplug_every_s if plan.unplug else math.inf
        try:
            while not self._stop.is_set():
                now = self.clock()
                if seconds is not None and now - start >= seconds:
                    break
                if now >= next_unplug:
                    self.transport.unplug()
                    self.unplugs += 1
                    self.on_event("unplugged")
                    if self._stop.wait(plan.unplug_for_s):
                        break
                    t_on = self._power_on()
                    next_unplug = self.clock() + plan.unplug_every_s
                    continue
                device = self.device
                wait_s = min(0.01, max(0.0, device.next_due_s() - (now - t_on)))
                data = self.transport.read(wait_s)
                t_s = self.clock() - t_on
                if data:
                    self.transport.write(device.handle(data, t_s))
                self.transport.write(device.step(t_s))
        finally:
            self.transport.close()
            self.on_event("stopped")

    def start(self) -> EmulatorRunner:
        """Run on a daemon thread; returns self once the port exists."""
        plugged = threading.Event()
        user_event = self.on_event

        def event(text: str) -> None:
            if text.startswith("plugged"):
                plugged.set()
            user_event(text)

        self.on_event = event
        self._thread = threading.Thread(target=self.run, name="stp1-emulator", daemon=True)
        self._thread.start()
        plugged.wait(5.0)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> EmulatorRunner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def make_emulator(
    kind: str = "gimbal",
    *,
    tcp_port: int | None = None,
    script: str | Path | None = None,
    faults: str | Iterable[str] | None = None,
    rate_hz: int = 100,
    seed: int = 0,
    t0_ms: int = 0,
    on_event: Callable[[str], None] | None = None,
    link_dir: str | Path | None = None,
    noise_mm: float = 0.05,
    unplug_every_s: float = 3.0,
    unplug_for_s: float = 1.0,
) -> EmulatorRunner:
    """An emulator runner for ``kind`` on a pty (default) or a TCP port (``tcp_port``, 0 = any)."""
    if kind not in KINDS:
        raise ValueError(f"unknown emulator kind {kind!r}; choose from {', '.join(KINDS)}")
    motion: Callable[[float], MotionState] = (
        MotionScript.load(script) if script is not None else default_sweep
    )
    plan = FaultPlan.parse(faults)
    plan.unplug_every_s, plan.unplug_for_s = float(unplug_every_s), float(unplug_for_s)
    rng = np.random.default_rng(seed)

    def factory() -> Stp1Device:
        return Stp1Device(
            kind=kind,
            motion=motion,
            rng=rng,
            rate_hz=rate_hz,
            faults=plan,
            t0_ms=t0_ms,
            uid=f"EMU{seed:04d}",
            noise_mm=noise_mm,
        )

    transport: Transport = (
        TcpTransport(tcp_port) if tcp_port is not None else PtyTransport(link_dir)
    )
    return EmulatorRunner(factory, transport, on_event=on_event)
