"""STP/1, the fluorosim serial tracking protocol: pure bytes → messages and messages → bytes.

Spec: ``haptics/STP1.md`` beside this module (the document a lab builds its rig from). Every line is ``$BODY*CS\\r\\n``, at most
120 bytes, ``CS`` = XOR of the bytes between ``$`` and ``*`` as two uppercase hex digits (NMEA 0183
style); fields are comma separated plain decimals (no exponents, no NaN/inf).

:class:`Stp1Parser` is a streaming parser: ``feed(bytes) -> list[message]``. It skips to ``$``,
never raises on any byte sequence and never yields a message from a corrupt line; every dropped line
is counted by reason in :attr:`Stp1Parser.dropped`:

``too_long``       more than :data:`MAX_LINE_BYTES` bytes before the line end
``non_printable``  a byte outside printable ASCII inside the line
``truncated``      a new ``$`` arrived before the line ended (bytes were lost)
``malformed``      no ``*CS`` trailer, or the checksum is not two uppercase hex digits
``checksum``       the XOR checksum does not match
``unknown_type``   a message type this side of the link does not know
``field_count``    the wrong number of fields for the type
``bad_number``     a field that is not a plain decimal (exponent, NaN, inf, empty, junk)
``out_of_range``   a value outside its range (|q| outside 0.9–1.1, depth outside the travel, …)

Sequence numbers (unsigned 16 bit, wrapping) are checked for gaps (``seq_gaps`` counts missing
lines) and device times (unsigned 32-bit milliseconds, wrapping) are unwrapped into a monotonic
``device_t_s`` on every timed message. A ``HELLO`` (device restart or reconnect) resets both.

The same parser reads host → device commands when built with ``role="device"`` (used by the
emulators): ``ID?``, ``RATE,<Hz>``, ``STREAM,1|0``, ``ZERO``, ``HAPT,<0-255>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

#: Longest line allowed by the spec, ``$`` through ``\n`` inclusive.
MAX_LINE_BYTES = 120
#: Device pose statuses defined by STP/1.
DEVICE_STATUSES = ("OK", "MISS", "RANGE", "UNCAL", "FAULT")
#: Statuses whose pose values must be in range (a MISS/FAULT line may carry placeholder zeros).
_CHECKED_STATUSES = ("OK", "UNCAL", "RANGE")
#: Accepted quaternion norm (tracking.md: "|q| outside 0.9–1.1" is rejected).
QUATERNION_NORM_RANGE = (0.9, 1.1)
#: Largest plausible |coordinate| of a tool in a tracker frame, mm (the largest optical tracker
#: volumes, e.g. NDI Polaris Vega XT pyramid, reach ≈3 m from the camera).
MAX_POSITION_MM = 5000.0
#: Default depth travel of a gimbal/IMU rig's encoder, mm (a 250 mm needle/guide pin stroke plus
#: a margin behind the entry point).
DEFAULT_DEPTH_RANGE_MM = (-20.0, 300.0)
#: Every reason a line can be dropped for (the keys of :attr:`Stp1Parser.dropped`).
DROP_REASONS: tuple[str, ...] = (
    "too_long",
    "non_printable",
    "truncated",
    "malformed",
    "checksum",
    "unknown_type",
    "field_count",
    "bad_number",
    "out_of_range",
)
#: Host-settable streaming rate limits, Hz.
RATE_RANGE_HZ = (1, 1000)

_SEQ_MODULO = 1 << 16
_T_MODULO = 1 << 32
_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_UNSIGNED = re.compile(r"^\d{1,10}$")
_HEX_MASK = re.compile(r"^[0-9A-Fa-f]{1,8}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_CS_DIGITS = frozenset(b"0123456789ABCDEF")
_PRINTABLE = bytes(range(0x20, 0x7F))


class _RejectError(Exception):
    """Internal: a line is dropped for ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Messages (device → host)


@dataclass(frozen=True)
class Hello:
    """``HELLO``: the device identifies itself (answer to ``ID?``, also sent at power-up)."""

    proto: int
    dev: str
    fw: str
    uid: str
    kind: str  # POSE | GIMB | IMUQ
    rate_hz: int
    lin: str = "mm"
    ang: str = "deg"
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pose:
    """``POSE``: 6-DOF tool pose in the tracker frame (mm, unit quaternion w,x,y,z)."""

    seq: int
    t_ms: int
    status: str
    x_mm: float
    y_mm: float
    z_mm: float
    qw: float
    qx: float
    qy: float
    qz: float
    err_mm: float
    device_t_s: float = 0.0


@dataclass(frozen=True)
class Gimb:
    """``GIMB``: gimbal angles (deg) and depth (mm) of a rig pivoted at the skin entry point."""

    seq: int
    t_ms: int
    status: str
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    depth_mm: float
    device_t_s: float = 0.0


@dataclass(frozen=True)
class Imuq:
    """``IMUQ``: orientation only (unit quaternion w,x,y,z) and IMU calibration level 0–3."""

    seq: int
    t_ms: int
    status: str
    qw: float
    qx: float
    qy: float
    qz: float
    calib: int
    device_t_s: float = 0.0


@dataclass(frozen=True)
class Btn:
    """``BTN``: button / foot-pedal bit mask."""

    seq: int
    t_ms: int
    mask: int
    device_t_s: float = 0.0


@dataclass(frozen=True)
class Hb:
    """``HB``: heartbeat (at least 2 Hz when idle)."""

    seq: int
    t_ms: int
    device_t_s: float = 0.0


@dataclass(frozen=True)
class Err:
    """``ERR``: a device-side error code and text."""

    code: str
    text: str


@dataclass(frozen=True)
class Ack:
    """``ACK,<cmd>``: the device accepted a host command."""

    command: str


@dataclass(frozen=True)
class Nak:
    """``NAK,<cmd>,<reason>``: the device refused a host command."""

    command: str
    reason: str


# ---------------------------------------------------------------------------------------------
# Commands (host → device)


@dataclass(frozen=True)
class Command:
    """A host command as the device sees it: ``ID?``, ``RATE``, ``STREAM``, ``ZERO``, ``HAPT``."""

    name: str
    value: int | None = None


DeviceMessage = Hello | Pose | Gimb | Imuq | Btn | Hb | Err | Ack | Nak
Message = DeviceMessage | Command
TimedMessage = Pose | Gimb | Imuq | Btn | Hb


# ---------------------------------------------------------------------------------------------
# Encoding


def checksum(body: bytes) -> int:
    """XOR of all bytes of ``body`` (the bytes between ``$`` and ``*``)."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def encode(body: str) -> bytes:
    """Frame ``body`` as one STP/1 line ``$BODY*CS\\r\\n``; ValueError if it cannot be a line."""
    raw = body.encode("ascii")
    if any(b < 0x20 or b > 0x7E or b in b"$*" for b in raw):
        raise ValueError(f"STP/1 body must be printable ASCII without '$' or '*': {body!r}")
    line = b"$" + raw + b"*" + f"{checksum(raw):02X}".encode() + b"\r\n"
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"STP/1 line would be {len(line)} bytes (limit {MAX_LINE_BYTES})")
    return line


def _num(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return "0." + "0" * decimals if text.lstrip("-").strip("0.") == "" else text


def encode_message(message: Message) -> bytes:
    """Encode a message dataclass as its STP/1 line (the inverse of :class:`Stp1Parser`)."""
    return encode(message_body(message))


def message_body(message: Message) -> str:
    """The body text (between ``$`` and ``*``) of a message."""
    m = message
    if isinstance(m, Hello):
        fields = [
            f"proto={m.proto}",
            f"dev={m.dev}",
            f"fw={m.fw}",
            f"uid={m.uid}",
            f"kind={m.kind}",
            f"rate={m.rate_hz}",
            f"lin={m.lin}",
            f"ang={m.ang}",
        ] + [f"{k}={v}" for k, v in m.extra.items()]
        return "HELLO," + ",".join(fields)
    if isinstance(m, Pose):
        values = [_num(v, 2) for v in (m.x_mm, m.y_mm, m.z_mm)]
        values += [_num(v, 5) for v in (m.qw, m.qx, m.qy, m.qz)] + [_num(m.err_mm, 2)]
        return f"POSE,{m.seq},{m.t_ms},{m.status}," + ",".join(values)
    if isinstance(m, Gimb):
        values = [_num(v, 2) for v in (m.yaw_deg, m.pitch_deg, m.roll_deg, m.depth_mm)]
        return f"GIMB,{m.seq},{m.t_ms},{m.status}," + ",".join(values)
    if isinstance(m, Imuq):
        values = [_num(v, 5) for v in (m.qw, m.qx, m.qy, m.qz)]
        return f"IMUQ,{m.seq},{m.t_ms},{m.status}," + ",".join(values) + f",{m.calib}"
    if isinstance(m, Btn):
        return f"BTN,{m.seq},{m.t_ms},{m.mask:02X}"
    if isinstance(m, Hb):
        return f"HB,{m.seq},{m.t_ms}"
    if isinstance(m, Err):
        return f"ERR,{m.code},{m.text}"
    if isinstance(m, Ack):
        return f"ACK,{m.command}"
    if isinstance(m, Nak):
        return f"NAK,{m.command},{m.reason}"
    if isinstance(m, Command):
        return m.name if m.value is None else f"{m.name},{m.value}"
    raise TypeError(f"not an STP/1 message: {message!r}")


def cmd_id() -> bytes:
    """``ID?``: ask the device to answer ``HELLO``."""
    return encode("ID?")


def cmd_rate(rate_hz: int) -> bytes:
    """``RATE,<Hz>``: set the streaming rate."""
    if not RATE_RANGE_HZ[0] <= int(rate_hz) <= RATE_RANGE_HZ[1]:
        raise ValueError(f"RATE must be {RATE_RANGE_HZ[0]}–{RATE_RANGE_HZ[1]} Hz, got {rate_hz}")
    return encode(f"RATE,{int(rate_hz)}")


def cmd_stream(on: bool) -> bytes:
    """``STREAM,1|0``: start or stop streaming."""
    return encode(f"STREAM,{1 if on else 0}")


def cmd_zero() -> bytes:
    """``ZERO``: tare depth and yaw at the current pose."""
    return encode("ZERO")


def cmd_hapt(level: int) -> bytes:
    """``HAPT,<0-255>``: resistance cue for a brake or vibration motor."""
    if not 0 <= int(level) <= 255:
        raise ValueError(f"HAPT level must be 0–255, got {level}")
    return encode(f"HAPT,{int(level)}")


# ---------------------------------------------------------------------------------------------
# Field parsing


def _float(text: str) -> float:
    if not _DECIMAL.match(text):
        raise _RejectError("bad_number")
    return float(text)


def _unsigned(text: str, limit: int) -> int:
    if not _UNSIGNED.match(text):
        raise _RejectError("bad_number")
    value = int(text)
    if value >= limit:
        raise _RejectError("out_of_range")
    return value


def _status(text: str) -> str:
    if text not in DEVICE_STATUSES:
        raise _RejectError("out_of_range")
    return text


def _check_quaternion(qw: float, qx: float, qy: float, qz: float) -> None:
    norm = (qw * qw + qx * qx + qy * qy + qz * qz) ** 0.5
    if not QUATERNION_NORM_RANGE[0] <= norm <= QUATERNION_NORM_RANGE[1]:
        raise _RejectError("out_of_range")


def _count(fields: list[str], n: int) -> None:
    if len(fields) != n:
        raise _RejectError("field_count")


def _parse_hello(fields: list[str]) -> Hello:
    values: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not _TOKEN.match(key) or not _TOKEN.match(value) or key in values:
            raise _RejectError("malformed")
        values[key] = value
    required = ("proto", "dev", "fw", "uid", "kind", "rate", "lin", "ang")
    if any(key not in values for key in required):
        raise _RejectError("field_count")
    proto = _unsigned(values["proto"], 1000)
    rate = _unsigned(values["rate"], RATE_RANGE_HZ[1] + 1)
    if proto != 1 or values["kind"] not in ("POSE", "GIMB", "IMUQ") or rate < 1:
        raise _RejectError("out_of_range")
    if values["lin"] != "mm" or values["ang"] != "deg":
        raise _RejectError("out_of_range")
    extra = {k: v for k, v in values.items() if k not in required}
    return Hello(
        proto=proto,
        dev=values["dev"],
        fw=values["fw"],
        uid=values["uid"],
        kind=values["kind"],
        rate_hz=rate,
        lin=values["lin"],
        ang=values["ang"],
        extra=extra,
    )


def _stamped(message: TimedMessage, device_t_s: float) -> TimedMessage:
    """Set ``device_t_s`` on a message the parser has just built (not yet seen by anyone).

    ``dataclasses.replace`` would copy the message; on the reader thread's hot path (250 lines/s)
    that copy is a measurable share of the per-line cost.
    """
    object.__setattr__(message, "device_t_s", device_t_s)
    return message


class Stp1Parser:
    """Streaming STP/1 parser: ``feed(bytes) -> list[message]``; never raises on input bytes.

    ``role="host"`` (default) reads device → host lines; ``role="device"`` reads host commands.
    ``depth_range_mm`` is the rig's depth travel: a depth outside it drops the line.
    """

    def __init__(
        self,
        role: Literal["host", "device"] = "host",
        depth_range_mm: tuple[float, float] = DEFAULT_DEPTH_RANGE_MM,
    ) -> None:
        self.role = role
        self.depth_range_mm = (float(depth_range_mm[0]), float(depth_range_mm[1]))
        self.dropped: dict[str, int] = {}
        self.lines_ok = 0
        self.noise_bytes = 0  # bytes skipped outside any line (looking for '$')
        self.seq_gaps = 0  # lines lost, from sequence-number gaps
        self.seq_gap_events = 0
        self.seq_repeats = 0  # a sequence number seen again or going backwards
        self.time_backwards = 0
        self._buffer = bytearray()
        self._in_line = False
        self._last_seq: int | None = None
        self._last_t_ms: int | None = None
        self._t_wraps = 0

    # -- public -------------------------------------------------------------------------------

    @property
    def dropped_total(self) -> int:
        """All dropped lines, every reason."""
        return sum(self.dropped.values())

    def counters(self) -> dict[str, int]:
        """Flat diagnostics counters: ``lines_ok``, ``dropped_<reason>``, gaps, noise bytes."""
        out = {
            "lines_ok": self.lines_ok,
            "noise_bytes": self.noise_bytes,
            "seq_gaps": self.seq_gaps,
            "seq_gap_events": self.seq_gap_events,
            "seq_repeats": self.seq_repeats,
            "time_backwards": self.time_backwards,
        }
        out.update({f"dropped_{reason}": n for reason, n in self.dropped.items()})
        return out

    def reset_stream(self) -> None:
        """Forget the partial line and the sequence/time history (after a reconnect)."""
        self._buffer.clear()
        self._in_line = False
        self._last_seq = None
        self._last_t_ms = None
        self._t_wraps = 0

    def feed(self, data: bytes) -> list[Message]:
        """Consume ``data``; return the messages of every complete valid line in it."""
        out: list[Message] = []
        data = bytes(data)
        pos, size = 0, len(data)
        while pos < size:
            if not self._in_line:
                start = data.find(b"$", pos)
                if start < 0:
                    self.noise_bytes += size - pos
                    break
                self.noise_bytes += start - pos
                self._in_line = True
                self._buffer.clear()
                pos = start + 1
                continue
            newline, dollar = data.find(b"\n", pos), data.find(b"$", pos)
            ends = [i for i in (newline, dollar) if i >= 0]
            end = min(ends) if ends else size
            room = MAX_LINE_BYTES - 2 - len(self._buffer)  # '$' + buffer + '\n' <= limit
            if end - pos > room:  # the byte at pos + room overflows the line
                self._drop("too_long")
                self._buffer.clear()
                self._in_line = False
                pos += room + 1
                continue
            self._buffer += data[pos:end]
            if end == size:
                break
            pos = end + 1
            if data[end] == 0x24:  # a new line started before this one ended
                self._drop("truncated")
                self._buffer.clear()
                continue
            self._in_line = False
            line = bytes(self._buffer)
            self._buffer.clear()
            message = self._line(line)
            if message is not None:
                out.append(message)
        return out

    # -- internals ----------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _line(self, line: bytes) -> Message | None:
        """One line without '$' and '\\n' → message or None (counted)."""
        try:
            message = self._parse(line)
        except _RejectError as reject:
            self._drop(reject.reason)
            return None
        except (ValueError, OverflowError):  # belt and braces: never raise on input
            self._drop("bad_number")
            return None
        self.lines_ok += 1
        return message

    def _parse(self, line: bytes) -> Message:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.translate(None, _PRINTABLE):
            raise _RejectError("non_printable")
        star = line.rfind(b"*")
        if star < 0 or len(line) - star != 3:
            raise _RejectError("malformed")
        body, cs = line[:star], line[star + 1 :]
        if not all(c in _CS_DIGITS for c in cs):
            raise _RejectError("malformed")
        if int(cs, 16) != checksum(body):
            raise _RejectError("checksum")
        text = body.decode("ascii")
        if "*" in text:
            raise _RejectError("malformed")
        kind, _, rest = text.partition(",")
        fields = rest.split(",") if rest else []
        if self.role == "device":
            return self._parse_command(kind, fields)
        return self._parse_device(kind, fields)

    def _parse_command(self, kind: str, fields: list[str]) -> Command:
        if kind in ("ID?", "ZERO"):
            _count(fields, 0)
            return Command(kind)
        if kind == "RATE":
            _count(fields, 1)
            rate = _unsigned(fields[0], RATE_RANGE_HZ[1] + 1)
            if rate < RATE_RANGE_HZ[0]:
                raise _RejectError("out_of_range")
            return Command(kind, rate)
        if kind == "STREAM":
            _count(fields, 1)
            if fields[0] not in ("0", "1"):
                raise _RejectError("out_of_range")
            return Command(kind, int(fields[0]))
        if kind == "HAPT":
            _count(fields, 1)
            return Command(kind, _unsigned(fields[0], 256))
        raise _RejectError("unknown_type")

    def _parse_device(self, kind: str, fields: list[str]) -> DeviceMessage:
        if kind == "HELLO":
            hello = _parse_hello(fields)
            self._last_seq = None
            self._last_t_ms = None
            self._t_wraps = 0
            return hello
        if kind == "ERR":
            if len(fields) < 2 or not fields[0]:
                raise _RejectError("field_count")
            return Err(fields[0], ",".join(fields[1:]))
        if kind == "ACK":
            _count(fields, 1)
            return Ack(fields[0])
        if kind == "NAK":
            if len(fields) < 2:
                raise _RejectError("field_count")
            return Nak(fields[0], ",".join(fields[1:]))
        timed = self._parse_timed(kind, fields)
        return self._track(timed)

    def _parse_timed(self, kind: str, fields: list[str]) -> TimedMessage:
        if kind == "HB":
            _count(fields, 2)
            return Hb(_unsigned(fields[0], _SEQ_MODULO), _unsigned(fields[1], _T_MODULO))
        if kind == "BTN":
            _count(fields, 3)
            seq, t_ms = _unsigned(fields[0], _SEQ_MODULO), _unsigned(fields[1], _T_MODULO)
            if not _HEX_MASK.match(fields[2]):
                raise _RejectError("bad_number")
            return Btn(seq, t_ms, int(fields[2], 16))
        if kind == "GIMB":
            _count(fields, 7)
            seq, t_ms = _unsigned(fields[0], _SEQ_MODULO), _unsigned(fields[1], _T_MODULO)
            status = _status(fields[2])
            yaw, pitch, roll, depth = (_float(f) for f in fields[3:7])
            if status in _CHECKED_STATUSES:
                if any(abs(a) > 360.0 for a in (yaw, pitch, roll)):
                    raise _RejectError("out_of_range")
                if not self.depth_range_mm[0] <= depth <= self.depth_range_mm[1]:
                    raise _RejectError("out_of_range")
            return Gimb(seq, t_ms, status, yaw, pitch, roll, depth)
        if kind == "POSE":
            _count(fields, 11)
            seq, t_ms = _unsigned(fields[0], _SEQ_MODULO), _unsigned(fields[1], _T_MODULO)
            status = _status(fields[2])
            x, y, z, qw, qx, qy, qz, err = (_float(f) for f in fields[3:11])
            if status in _CHECKED_STATUSES:
                if any(abs(v) > MAX_POSITION_MM for v in (x, y, z)) or not 0 <= err <= 1000:
                    raise _RejectError("out_of_range")
                _check_quaternion(qw, qx, qy, qz)
            return Pose(seq, t_ms, status, x, y, z, qw, qx, qy, qz, err)
        if kind == "IMUQ":
            _count(fields, 8)
            seq, t_ms = _unsigned(fields[0], _SEQ_MODULO), _unsigned(fields[1], _T_MODULO)
            status = _status(fields[2])
            qw, qx, qy, qz = (_float(f) for f in fields[3:7])
            calib = _unsigned(fields[7], 4)
            if status in _CHECKED_STATUSES:
                _check_quaternion(qw, qx, qy, qz)
            return Imuq(seq, t_ms, status, qw, qx, qy, qz, calib)
        raise _RejectError("unknown_type")

    def _track(self, message: TimedMessage) -> TimedMessage:
        """Count sequence gaps and unwrap the device clock; stamp ``device_t_s``."""
        seq = message.seq
        if self._last_seq is not None:
            step = (seq - self._last_seq) % _SEQ_MODULO
            if step == 0 or step > _SEQ_MODULO // 2:
                self.seq_repeats += 1
            elif step > 1:
                self.seq_gaps += step - 1
                self.seq_gap_events += 1
        self._last_seq = seq
        t_ms = message.t_ms
        if self._last_t_ms is not None and t_ms < self._last_t_ms:
            if self._last_t_ms - t_ms > _T_MODULO // 2:
                self._t_wraps += 1
            else:
                self.time_backwards += 1
        elif self._last_t_ms is not None and t_ms - self._last_t_ms > _T_MODULO // 2:
            # a late line from before the wrap: keep it in the previous epoch
            return _stamped(message, ((self._t_wraps - 1) * _T_MODULO + t_ms) / 1000.0)
        self._last_t_ms = t_ms
        return _stamped(message, (self._t_wraps * _T_MODULO + t_ms) / 1000.0)
