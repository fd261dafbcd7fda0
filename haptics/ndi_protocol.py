"""NDI Combined API on the wire: CRC-16/ARC, command framing, and TX/BX reply parsers and builders.

Pure functions on bytes, shared by the host side (:mod:`haptics.ndi`) and the device emulator
(:mod:`haptics.ndi_emulator`). Parsers never raise on garbage: they return ``None`` (or a reply of
kind ``"BAD"``) so a corrupt frame is counted and dropped, never turned into a sample.

Facts (NDI Combined API, as summarised with check values in reference/tracking.md):

- Commands are ``CMD:params`` + 4 uppercase hex CRC + CR; replies end with CRC + CR.
- The CRC is CRC-16/ARC: reflected polynomial 0xA001, init 0, no final XOR. Check values:
  ``INIT:`` → E3A5, ``OKAY`` → A896, ``RESET`` → BE6F.
- TX (reply option 0x0001 transforms, 0x0800 also out-of-volume transforms): 2-hex handle count;
  per handle 2-hex handle then ``MISSING``/``DISABLED`` or q0 qx qy qz (sign + 5 digits, /10000),
  x y z (sign + 6 digits, /100 → mm), RMS error (sign + 5 digits, /10000); then 8-hex port status
  and 8-hex frame number and LF; finally 4-hex system status, then the CRC.
- Port status bits: 0x40 out of volume, 0x80 partially in volume.
- BX: little-endian binary; header = start sequence 0xA5C4, body length, header CRC (over the first
  4 bytes); body = handle count, per handle: handle, status (0x01 valid, 0x02 missing, 0x04
  disabled), for a valid handle 8 float32 (q0 qx qy qz tx ty tz rms), then for valid and missing
  handles a uint32 port status and uint32 frame number; then a uint16 system status; then the body
  CRC.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import numpy as np

PORT_OUT_OF_VOLUME = 0x40
PORT_PARTIALLY_IN_VOLUME = 0x80

BX_START = 0xA5C4
BX_VALID = 0x01
BX_MISSING = 0x02
BX_DISABLED = 0x04

#: Maximum frames of the 32-bit NDI frame counter before it wraps.
FRAME_MODULUS = 1 << 32


def _crc16_arc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc16_arc_table()


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (poly 0xA001 reflected, init 0, no final XOR) of ``data`` (table driven)."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def frame_command(command: str, params: str = "") -> bytes:
    """``CMD:params`` + CRC + CR, e.g. ``frame_command("INIT")`` → ``b"INIT:E3A5\\r"``."""
    body = f"{command}:{params}".encode("ascii")
    return body + f"{crc16_arc(body):04X}\r".encode("ascii")


def frame_reply(body: bytes) -> bytes:
    """A device reply: ``body`` + 4 hex CRC + CR (what the emulator sends)."""
    return body + f"{crc16_arc(body):04X}\r".encode("ascii")


@dataclass(frozen=True)
class Command:
    """A parsed host command (used by the emulator)."""

    name: str
    params: str
    crc_ok: bool


def parse_command(line: bytes) -> Command | None:
    """Parse ``CMD:params[CRC]`` (CR stripped). ``None`` for garbage; ``crc_ok`` false on a bad CRC.

    The API also accepts a command without CRC written with a space (``INIT ``); that form is
    accepted with ``crc_ok`` true.
    """
    try:
        text = line.strip(b"\r\n").decode("ascii")
    except UnicodeDecodeError:
        return None
    match = re.fullmatch(r"([A-Z0-9]{2,8})([: ])(.*)", text, flags=re.DOTALL)
    if match is None:
        return None
    name, separator, rest = match.groups()
    if separator == " ":
        return Command(name, rest, True)
    if len(rest) < 4:
        return Command(name, rest, False)
    params, crc_text = rest[:-4], rest[-4:]
    body = f"{name}:{params}".encode("ascii")
    try:
        crc_ok = int(crc_text, 16) == crc16_arc(body)
    except ValueError:
        crc_ok = False
    return Command(name, params, crc_ok)


@dataclass(frozen=True)
class Reply:
    """A checked ASCII reply: kind OKAY | RESET | ERROR | DATA | BAD (bad CRC or garbage)."""

    kind: str
    body: str
    error_code: int | None = None
    problem: str = ""


def parse_reply(frame: bytes) -> Reply:
    """Check the CRC of one ASCII reply (trailing CR optional) and classify it; never raises."""
    data = frame[:-1] if frame.endswith(b"\r") else frame
    if len(data) < 4:
        return Reply("BAD", "", problem=f"reply too short ({len(data)} bytes)")
    body, crc_bytes = data[:-4], data[-4:]
    try:
        crc_value = int(crc_bytes.decode("ascii"), 16)
        crc_text_ok = re.fullmatch(rb"[0-9A-F]{4}", crc_bytes) is not None  # NDI sends uppercase
    except (UnicodeDecodeError, ValueError):
        return Reply("BAD", "", problem="reply CRC is not 4 hex digits")
    if not crc_text_ok or crc_value != crc16_arc(body):
        return Reply("BAD", "", problem="reply CRC mismatch")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return Reply("BAD", "", problem="reply holds non-ASCII bytes")
    if text == "OKAY":
        return Reply("OKAY", text)
    if text == "RESET":
        return Reply("RESET", text)
    error = re.fullmatch(r"ERROR([0-9A-Fa-f]{2})", text)
    if error:
        return Reply("ERROR", text, error_code=int(error.group(1), 16))
    return Reply("DATA", text)


@dataclass(frozen=True)
class HandlePose:
    """One handle of a TX or BX reply.

    ``state`` is "OK", "MISSING" or "DISABLED". ``quaternion_wxyz``/``position_mm``/``rms_mm`` are
    present only when the device sent a transform (also for an out-of-volume tool with option
    0x0800). ``port_status``/``frame_number`` are None for a disabled handle that sent none.
    """

    handle: int
    state: str
    quaternion_wxyz: tuple[float, float, float, float] | None
    position_mm: tuple[float, float, float] | None
    rms_mm: float | None
    port_status: int | None
    frame_number: int | None

    @property
    def out_of_volume(self) -> bool:
        """Port status bit 0x40."""
        return bool(self.port_status is not None and self.port_status & PORT_OUT_OF_VOLUME)

    @property
    def partially_in_volume(self) -> bool:
        """Port status bit 0x80."""
        return bool(self.port_status is not None and self.port_status & PORT_PARTIALLY_IN_VOLUME)


@dataclass(frozen=True)
class TrackingReply:
    """A whole TX or BX reply."""

    handles: tuple[HandlePose, ...]
    system_status: int


_HEX2 = r"[0-9A-Fa-f]{2}"
_HEX8 = r"[0-9A-Fa-f]{8}"
_TX_TRANSFORM = re.compile(
    r"([+-]\d{5})([+-]\d{5})([+-]\d{5})([+-]\d{5})([+-]\d{6})([+-]\d{6})([+-]\d{6})([+-]\d{5})"
)


def _valid_quaternion(q: tuple[float, float, float, float]) -> bool:
    norm = float(np.sqrt(sum(v * v for v in q)))
    return bool(np.isfinite(norm)) and 0.9 <= norm <= 1.1


def _parse_tx_body(text: str) -> TrackingReply | None:
    if not re.fullmatch(r"[0-9A-Za-z+\-\n]*", text) or len(text) < 6:
        return None
    if not re.fullmatch(_HEX2, text[:2]):
        return None
    count = int(text[:2], 16)
    pos = 2
    handles: list[HandlePose] = []
    for _ in range(count):
        if not re.fullmatch(_HEX2, text[pos : pos + 2]):
            return None
        handle = int(text[pos : pos + 2], 16)
        pos += 2
        quaternion = position = rms = None
        if text.startswith("MISSING", pos):
            state = "MISSING"
            pos += 7
        elif text.startswith("DISABLED", pos):
            state = "DISABLED"
            pos += 8
        else:
            match = _TX_TRANSFORM.match(text, pos)
            if match is None:
                return None
            values = [int(group) for group in match.groups()]
            quaternion = tuple(v / 10000.0 for v in values[:4])
            position = tuple(v / 100.0 for v in values[4:7])
            rms = values[7] / 10000.0
            if not _valid_quaternion(quaternion):  # type: ignore[arg-type]
                return None
            state = "OK"
            pos = match.end()
        port_status = frame_number = None
        if state == "DISABLED" and text.startswith("\n", pos):
            pass
        else:
            if not (
                re.fullmatch(_HEX8, text[pos : pos + 8])
                and re.fullmatch(_HEX8, text[pos + 8 : pos + 16])
            ):
                return None
            port_status = int(text[pos : pos + 8], 16)
            frame_number = int(text[pos + 8 : pos + 16], 16)
            pos += 16
        if not text.startswith("\n", pos):
            return None
        pos += 1
        handles.append(
            HandlePose(handle, state, quaternion, position, rms, port_status, frame_number)  # type: ignore[arg-type]
        )
    rest = text[pos:]
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", rest):
        return None
    return TrackingReply(tuple(handles), int(rest, 16))


def parse_tx_reply(frame: bytes) -> TrackingReply | None:
    """Parse a whole TX reply (body + CRC, trailing CR optional); ``None`` for anything corrupt."""
    reply = parse_reply(frame)
    if reply.kind != "DATA":
        return None
    return _parse_tx_body(reply.body)


def _sign_digits(value: float, scale: float, digits: int) -> str:
    scaled = int(round(value * scale))
    limit = 10**digits - 1
    scaled = max(-limit, min(limit, scaled))
    return f"{'+' if scaled >= 0 else '-'}{abs(scaled):0{digits}d}"


def build_tx_reply(handles: list[HandlePose], system_status: int = 0) -> bytes:
    """The TX reply a device sends for ``handles`` (inverse of :func:`parse_tx_reply`)."""
    parts = [f"{len(handles):02X}"]
    for pose in handles:
        parts.append(f"{pose.handle:02X}")
        if pose.state == "OK" and pose.quaternion_wxyz is not None and pose.position_mm is not None:
            parts.extend(_sign_digits(v, 10000.0, 5) for v in pose.quaternion_wxyz)
            parts.extend(_sign_digits(v, 100.0, 6) for v in pose.position_mm)
            parts.append(_sign_digits(pose.rms_mm or 0.0, 10000.0, 5))
        else:
            parts.append("DISABLED" if pose.state == "DISABLED" else "MISSING")
        if pose.port_status is not None:
            parts.append(f"{pose.port_status:08X}{(pose.frame_number or 0) % FRAME_MODULUS:08X}")
        parts.append("\n")
    parts.append(f"{system_status:04X}")
    return frame_reply("".join(parts).encode("ascii"))


BX_HEADER = struct.Struct("<HHH")
BX_TRANSFORM = struct.Struct("<8f")
BX_PORT_FRAME = struct.Struct("<II")


def bx_length(header: bytes) -> int | None:
    """Total length of a BX reply from its 6-byte header (None if the header is invalid)."""
    if len(header) < BX_HEADER.size:
        return None
    start, body_length, header_crc = BX_HEADER.unpack_from(header)
    if start != BX_START or header_crc != crc16_arc(header[:4]):
        return None
    return BX_HEADER.size + int(body_length) + 2


def parse_bx_reply(data: bytes) -> TrackingReply | None:
    """Parse one complete binary BX reply; ``None`` for anything truncated, corrupt or inconsistent."""
    total = bx_length(data)
    if total is None or len(data) != total:
        return None
    body = data[BX_HEADER.size : total - 2]
    (body_crc,) = struct.unpack_from("<H", data, total - 2)
    if body_crc != crc16_arc(body) or len(body) < 3:
        return None
    count = body[0]
    pos = 1
    handles: list[HandlePose] = []
    for _ in range(count):
        if pos + 2 > len(body):
            return None
        handle, status = body[pos], body[pos + 1]
        pos += 2
        quaternion = position = rms = None
        port_status = frame_number = None
        if status == BX_VALID:
            if pos + BX_TRANSFORM.size > len(body):
                return None
            values = BX_TRANSFORM.unpack_from(body, pos)
            pos += BX_TRANSFORM.size
            if not all(np.isfinite(values)):
                return None
            quaternion = tuple(float(v) for v in values[:4])
            if not _valid_quaternion(quaternion):  # type: ignore[arg-type]
                return None
            position = tuple(float(v) for v in values[4:7])
            rms = float(values[7])
            state = "OK"
        elif status == BX_MISSING:
            state = "MISSING"
        elif status == BX_DISABLED:
            state = "DISABLED"
        else:
            return None
        if state != "DISABLED":
            if pos + BX_PORT_FRAME.size > len(body):
                return None
            port_status, frame_number = BX_PORT_FRAME.unpack_from(body, pos)
            pos += BX_PORT_FRAME.size
        handles.append(
            HandlePose(handle, state, quaternion, position, rms, port_status, frame_number)  # type: ignore[arg-type]
        )
    if pos + 2 != len(body):
        return None
    (system_status,) = struct.unpack_from("<H", body, pos)
    return TrackingReply(tuple(handles), system_status)


def build_bx_reply(handles: list[HandlePose], system_status: int = 0) -> bytes:
    """The binary BX reply a device sends for ``handles`` (inverse of :func:`parse_bx_reply`)."""
    body = bytearray([len(handles)])
    for pose in handles:
        if pose.state == "OK" and pose.quaternion_wxyz is not None and pose.position_mm is not None:
            body += bytes([pose.handle, BX_VALID])
            body += BX_TRANSFORM.pack(*pose.quaternion_wxyz, *pose.position_mm, pose.rms_mm or 0.0)
        else:
            body += bytes([pose.handle, BX_DISABLED if pose.state == "DISABLED" else BX_MISSING])
        if pose.state != "DISABLED":
            body += BX_PORT_FRAME.pack(
                pose.port_status or 0, (pose.frame_number or 0) % FRAME_MODULUS
            )
    body += struct.pack("<H", system_status)
    header = struct.pack("<HH", BX_START, len(body))
    header += struct.pack("<H", crc16_arc(header))
    return bytes(header) + bytes(body) + struct.pack("<H", crc16_arc(bytes(body)))


def parse_phsr_reply(body: str) -> list[int] | None:
    """Handles listed by a PHSR reply body (``NN`` then ``hh sss`` per handle); None if garbled."""
    if not re.fullmatch(r"[0-9A-Fa-f]*", body) or len(body) < 2:
        return None
    count = int(body[:2], 16)
    if len(body) != 2 + 5 * count:
        return None
    return [int(body[2 + 5 * i : 4 + 5 * i], 16) for i in range(count)]
