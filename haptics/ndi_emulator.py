"""An NDI tracker emulator (Polaris/Aurora/Vega Combined API) on a pseudo-terminal or a TCP port.

It answers the bring-up commands (INIT, COMM, VER, BEEP, PHRQ, PVWR, PHSR, PINIT, PENA, TSTART,
TSTOP, RESET)
and TX/BX with a scripted tool motion, so :class:`haptics.ndi.NdiSource` can be tested without
hardware and a lab can try the NDI path (``fluorosim devices emulate ndi``). The wire format comes
from :mod:`haptics.ndi_protocol`.

On a pty the emulator holds the master; the code under test opens the slave path with an unchanged
``serial.Serial``. Closing the master is what unplugging a USB adapter looks like. A serial break
from the host is not visible on the master (reference/tracking.md), so the host's break is
answered only by its later commands; the text command ``RESET:`` is answered with ``RESET``.

A script is a callable ``frame_number -> {handle: ToolState}``: the pose of each tool at that
device frame. :func:`circle_script` moves one tool on a circle and can declare frames where the
tool is missing or out of the measurement volume. Faults (:class:`Faults`) corrupt replies on
purpose: a bad CRC every N tracking replies, garbage bytes before a reply, or an unplug after N
tracking replies.

Frame numbers advance with ``frame_clock`` at ``rate_hz`` as on a real device (repeated TX within a
frame return the same frame); with ``frame_clock=None`` every TX/BX advances one frame, which makes
tests independent of host speed.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

from fluorosim.haptics.ndi_protocol import (
    PORT_OUT_OF_VOLUME,
    PORT_PARTIALLY_IN_VOLUME,
    HandlePose,
    build_bx_reply,
    build_tx_reply,
    frame_reply,
    parse_command,
)

#: Port status of an occupied, initialised, enabled port (bits 0x01 | 0x10 | 0x20).
PORT_OK = 0x31
#: Error codes the emulator sends (NDI: 0x01 invalid command, 0x04 invalid CRC).
ERROR_INVALID_COMMAND = 0x01
ERROR_BAD_CRC = 0x04
#: Sent for TX/BX before TSTART (the emulator's choice; real devices reply with an ERROR too).
ERROR_NOT_TRACKING = 0x0C


@dataclass(frozen=True)
class ToolState:
    """A tool at one frame: "OK", "MISSING" or "DISABLED"; volume "in" | "out" | "partial"."""

    quaternion_wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    position_mm: tuple[float, float, float] = (0.0, 0.0, -1000.0)
    state: str = "OK"
    volume: str = "in"
    rms_mm: float = 0.15


Script = Callable[[int], dict[int, ToolState]]


def circle_script(
    handle: int = 0x0A,
    center_mm: tuple[float, float, float] = (0.0, 0.0, -1000.0),
    radius_mm: float = 50.0,
    period_frames: int = 600,
    missing_frames: range | None = None,
    out_of_volume_frames: range | None = None,
) -> Script:
    """One tool circling in the tracker's x-y plane, tilting as it goes; optional lost frames."""

    def script(frame: int) -> dict[int, ToolState]:
        if missing_frames is not None and frame in missing_frames:
            return {handle: ToolState(state="MISSING")}
        angle = 2.0 * math.pi * frame / period_frames
        half = 0.5 * math.radians(20.0) * math.sin(angle)
        quaternion = (math.cos(half), math.sin(half), 0.0, 0.0)
        position = (
            center_mm[0] + radius_mm * math.cos(angle),
            center_mm[1] + radius_mm * math.sin(angle),
            center_mm[2],
        )
        volume = (
            "out" if out_of_volume_frames is not None and frame in out_of_volume_frames else "in"
        )
        return {handle: ToolState(quaternion, position, "OK", volume)}

    return script


@dataclass
class Faults:
    """Deliberate faults: bad CRC every N tracking replies, junk before replies, unplug after N."""

    bad_crc_every: int = 0
    garbage_before_reply: bytes = b""
    unplug_after_replies: int | None = None


class NdiEmulator:
    """The emulated device; use :func:`serve` to create and start one."""

    def __init__(
        self,
        script: Script | None = None,
        faults: Faults | None = None,
        device: str = "Polaris Vicra",
        start_frame: int = 1000,
        frame_clock: Callable[[], float] | None = time.monotonic,
        rate_hz: float = 60.0,
        wired_handles: list[int] | None = None,
    ) -> None:
        self.script = script or circle_script()
        self.faults = faults or Faults()
        self.device = device
        self.rate_hz = rate_hz
        self._frame_clock = frame_clock
        self._clock_start: float | None = None
        self.frame_number = start_frame
        self._start_frame = start_frame
        # Wired (Aurora / active) tools are present at power-up; passive tools get a handle from
        # PHRQ once their ROM is written. Default: every tool the script moves is wired.
        self.handles = sorted(self.script(start_frame) if wired_handles is None else wired_handles)
        self.initialised: set[int] = set()
        self.enabled: set[int] = set()
        self.tracking = False
        self.baud = 9600
        self.roms: dict[int, bytearray] = {}  # tool definitions written with PVWR, by handle
        self.passive_handles: set[int] = set()
        self.commands: list[str] = []  # every command name received, in order (for tests)
        self.tracking_replies = 0
        self.port_path: str | None = None
        self.tcp_port: int | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._server: socket.socket | None = None
        self._client: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unplugged = False

    # -- transport ---------------------------------------------------------------------------

    def open_pty(self) -> str:
        """Create the pseudo-terminal; returns the slave path the host opens."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self._master, self._slave = master, slave
        self.port_path = os.ttyname(slave)
        return self.port_path

    def open_tcp(self, port: int = 0) -> int:
        """Listen on 127.0.0.1:``port`` (0 = any free port) like a Vega on 8765; returns the port."""
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
        server.settimeout(0.1)
        self._server = server
        self.tcp_port = server.getsockname()[1]
        return self.tcp_port

    def start(self) -> None:
        """Answer commands on a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ndi-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and release the pty/socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        for sock in (self._client, self._server):
            if sock is not None:
                sock.close()
        self._client = self._server = None

    def unplug(self) -> None:
        """Close the master side, as pulling the USB adapter would (the host sees EIO)."""
        self.unplugged = True
        if self._master is not None:
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    def __enter__(self) -> NdiEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read(self) -> bytes:
        if self._server is not None:
            if self._client is None:
                try:
                    self._client, _ = self._server.accept()
                    self._client.settimeout(0.1)
                except TimeoutError:
                    return b""
            try:
                data = self._client.recv(4096)
            except TimeoutError:
                return b""
            if not data:
                self._client.close()
                self._client = None
            return data
        if self._master is None:
            self._stop.wait(0.05)
            return b""
        ready, _, _ = select.select([self._master], [], [], 0.05)
        if not ready:
            return b""
        try:
            return os.read(self._master, 4096)
        except OSError:
            return b""

    def _write(self, data: bytes) -> None:
        try:
            if self._client is not None:
                self._client.sendall(data)
            elif self._master is not None:
                os.write(self._master, data)
        except OSError:
            pass

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            buffer += self._read()
            while b"\r" in buffer:
                line, buffer = buffer.split(b"\r", 1)
                reply = self.answer(line)
                if reply:
                    self._write(reply)
                if (
                    self.faults.unplug_after_replies is not None
                    and self.tracking_replies >= self.faults.unplug_after_replies
                    and not self.unplugged
                ):
                    self.unplug()

    # -- the device --------------------------------------------------------------------------

    def _current_frame(self) -> int:
        if self._frame_clock is None:
            self.frame_number += 1
            return self.frame_number
        now = self._frame_clock()
        if self._clock_start is None:
            self._clock_start = now
        self.frame_number = self._start_frame + int((now - self._clock_start) * self.rate_hz + 1e-6)
        return self.frame_number

    def _tracking_handles(self, frame: int) -> list[HandlePose]:
        states = self.script(frame)
        poses = []
        for handle in self.handles:
            state = states.get(handle, ToolState(state="MISSING"))
            if handle not in self.enabled or state.state == "DISABLED":
                poses.append(HandlePose(handle, "DISABLED", None, None, None, None, None))
                continue
            port = PORT_OK
            if state.volume == "out":
                port |= PORT_OUT_OF_VOLUME
            elif state.volume == "partial":
                port |= PORT_PARTIALLY_IN_VOLUME
            if state.state == "MISSING":
                poses.append(HandlePose(handle, "MISSING", None, None, None, port, frame))
            else:
                poses.append(
                    HandlePose(
                        handle,
                        "OK",
                        state.quaternion_wxyz,
                        state.position_mm,
                        state.rms_mm,
                        port,
                        frame,
                    )
                )
        return poses

    def answer(self, line: bytes) -> bytes:
        """The reply to one command line (CR stripped); pure apart from the device state."""
        line = line.lstrip(b"\n\x00")
        if not line:
            return b""
        command = parse_command(line)
        if command is None:
            return frame_reply(f"ERROR{ERROR_INVALID_COMMAND:02X}".encode())
        self.commands.append(command.name)
        if not command.crc_ok:
            return frame_reply(f"ERROR{ERROR_BAD_CRC:02X}".encode())
        name, params = command.name, command.params
        if name == "RESET":
            self.tracking = False
            self.initialised.clear()
            self.enabled.clear()
            self.baud = 9600
            return frame_reply(b"RESET")
        if name in ("INIT", "BEEP", "TSTOP") or (name == "COMM" and params[:1].isdigit()):
            if name == "COMM":
                self.baud = {"0": 9600, "5": 115200}.get(params[:1], 9600)
            if name == "TSTOP":
                self.tracking = False
            return frame_reply(b"OKAY")
        if name == "VER":
            return frame_reply(f"{self.device}\nfluorosim NDI emulator\n".encode())
        if name == "PHSR":
            if params == "02":
                listed = [h for h in self.handles if h not in self.initialised]
            elif params == "03":
                listed = [
                    h for h in self.handles if h in self.initialised and h not in self.enabled
                ]
            else:
                listed = list(self.handles)
            body = f"{len(listed):02X}" + "".join(f"{h:02X}001" for h in listed)
            return frame_reply(body.encode())
        if name == "PHRQ":
            handle = max([0, *self.handles]) + 1
            self.handles.append(handle)
            self.roms[handle] = bytearray()
            self.passive_handles.add(handle)
            return frame_reply(f"{handle:02X}".encode())
        if name == "PVWR":
            try:
                handle, address = int(params[:2], 16), int(params[2:6], 16)
                chunk = bytes.fromhex(params[6:])
            except ValueError:
                return frame_reply(f"ERROR{ERROR_INVALID_COMMAND:02X}".encode())
            if handle not in self.roms or len(chunk) != 64:
                return frame_reply(f"ERROR{ERROR_INVALID_COMMAND:02X}".encode())
            rom = self.roms[handle]
            rom.extend(b"\x00" * max(0, address + 64 - len(rom)))
            rom[address : address + 64] = chunk
            return frame_reply(b"OKAY")
        if name in ("PINIT", "PENA"):
            try:
                handle = int(params[:2], 16)
            except ValueError:
                return frame_reply(f"ERROR{ERROR_INVALID_COMMAND:02X}".encode())
            if handle not in self.handles:
                return frame_reply(f"ERROR{ERROR_INVALID_COMMAND:02X}".encode())
            if name == "PINIT" and handle in self.passive_handles and not any(self.roms[handle]):
                return frame_reply(f"ERROR{ERROR_INVALID_COMMAND:02X}".encode())  # no ROM written
            (self.initialised if name == "PINIT" else self.enabled).add(handle)
            return frame_reply(b"OKAY")
        if name == "TSTART":
            self.tracking = True
            return frame_reply(b"OKAY")
        if name in ("TX", "BX"):
            if not self.tracking:
                return frame_reply(f"ERROR{ERROR_NOT_TRACKING:02X}".encode())
            poses = self._tracking_handles(self._current_frame())
            reply = build_tx_reply(poses) if name == "TX" else build_bx_reply(poses)
            self.tracking_replies += 1
            every = self.faults.bad_crc_every
            if every and self.tracking_replies % every == 0:
                flipped = bytearray(reply)
                flipped[-2 if name == "TX" else -1] ^= 0x01
                reply = bytes(flipped)
            return self.faults.garbage_before_reply + reply
        return frame_reply(f"ERROR{ERROR_INVALID_COMMAND:02X}".encode())


def serve(
    pty: bool = True,
    tcp_port: int | None = None,
    script: Script | None = None,
    faults: Faults | None = None,
    **options: object,
) -> NdiEmulator:
    """Start an emulator on a new pty (default) or on TCP ``tcp_port`` (0 = a free port).

    Returns the running :class:`NdiEmulator`; its ``port_path`` (pty) or ``tcp_port`` says where
    to connect: ``NdiSource(f"ndi:{emulator.port_path}")`` or
    ``NdiSource(f"ndi+tcp://127.0.0.1:{emulator.tcp_port}")``. Stop it with ``stop()`` or use it as
    a context manager.
    """
    emulator = NdiEmulator(script=script, faults=faults, **options)  # type: ignore[arg-type]
    if tcp_port is not None:
        emulator.open_tcp(tcp_port)
    elif pty:
        emulator.open_pty()
    else:
        raise ValueError("serve: choose pty=True or a tcp_port")
    emulator.start()
    return emulator
