"""NDI Combined API bytes: CRC check values, the TX golden example, BX round trip, fuzzing.

The NdiSource bring-up and tracking against the emulator over a pty is in test_ndi_emulator.py.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluorosim.haptics.ndi_protocol import (
    HandlePose,
    build_bx_reply,
    build_tx_reply,
    crc16_arc,
    frame_command,
    parse_bx_reply,
    parse_command,
    parse_phsr_reply,
    parse_reply,
    parse_tx_reply,
)

GOLDEN_TX = b"010A+05000+05000+05000+05000+001234-005678+012345+001230000003100000F3C\n00005CE2\r"


@pytest.mark.parametrize(
    ("text", "crc"), [(b"INIT:", 0xE3A5), (b"OKAY", 0xA896), (b"RESET", 0xBE6F)]
)
def test_crc16_arc_check_values(text, crc):
    assert crc16_arc(text) == crc


def test_crc16_arc_standard_check_value():
    assert crc16_arc(b"123456789") == 0xBB3D  # the catalogue check value of CRC-16/ARC


def test_command_framing():
    assert frame_command("INIT") == b"INIT:E3A5\r"
    framed = frame_command("TX", "0801")
    assert framed.startswith(b"TX:0801") and framed.endswith(b"\r")
    command = parse_command(framed)
    assert (command.name, command.params, command.crc_ok) == ("TX", "0801", True)
    assert not parse_command(b"TX:0801FFFF\r").crc_ok
    assert parse_command(b"\xff\x00garbage") is None


def test_reply_kinds():
    assert parse_reply(b"OKAYA896\r").kind == "OKAY"
    assert parse_reply(b"RESETBE6F\r").kind == "RESET"
    error = parse_reply(b"ERROR01" + f"{crc16_arc(b'ERROR01'):04X}\r".encode())
    assert error.kind == "ERROR" and error.error_code == 0x01
    assert parse_reply(b"OKAYA897\r").kind == "BAD"
    assert parse_reply(b"\r").kind == "BAD"


def test_tx_golden_example():
    reply = parse_tx_reply(GOLDEN_TX)
    assert reply is not None and reply.system_status == 0
    (pose,) = reply.handles
    assert pose.handle == 0x0A and pose.state == "OK"
    assert pose.quaternion_wxyz == (0.5, 0.5, 0.5, 0.5)
    assert pose.position_mm == pytest.approx((12.34, -56.78, 123.45))
    assert pose.rms_mm == pytest.approx(0.0123)
    assert pose.frame_number == 0xF3C and pose.port_status == 0x31
    assert not pose.out_of_volume and not pose.partially_in_volume
    assert build_tx_reply(list(reply.handles)) == GOLDEN_TX


def test_tx_missing_disabled_and_volume_bits():
    handles = [
        HandlePose(0x01, "MISSING", None, None, None, 0x31, 100),
        HandlePose(0x02, "DISABLED", None, None, None, None, None),
        HandlePose(0x03, "OK", (1.0, 0.0, 0.0, 0.0), (1.0, 2.0, -3.0), 0.2, 0x31 | 0x40, 100),
        HandlePose(0x04, "OK", (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, 0x31 | 0x80, 100),
    ]
    reply = parse_tx_reply(build_tx_reply(handles, system_status=0x0002))
    assert [h.state for h in reply.handles] == ["MISSING", "DISABLED", "OK", "OK"]
    assert reply.handles[0].position_mm is None and reply.handles[0].frame_number == 100
    assert reply.handles[2].out_of_volume and not reply.handles[2].partially_in_volume
    assert reply.handles[3].partially_in_volume
    assert reply.system_status == 2


def test_tx_rejects_bad_quaternion_even_with_good_crc():
    body = b"0101+00000+00000+00000+00000+000000+000000+000000+000000000003100000001\n0000"
    frame = body + f"{crc16_arc(body):04X}\r".encode()
    assert parse_tx_reply(frame) is None


def test_bx_round_trip_with_builder():
    handles = [
        HandlePose(0x0A, "OK", (0.5, 0.5, 0.5, 0.5), (12.5, -56.75, 123.25), 0.125, 0x31, 0xF3C),
        HandlePose(0x0B, "MISSING", None, None, None, 0x31, 0xF3C),
        HandlePose(0x0C, "DISABLED", None, None, None, None, None),
    ]
    data = build_bx_reply(handles, system_status=0x10)
    assert struct.unpack_from("<H", data)[0] == 0xA5C4
    assert data[:2] == b"\xc4\xa5"  # little-endian start sequence
    reply = parse_bx_reply(data)
    assert reply is not None and reply.system_status == 0x10
    assert reply.handles == tuple(handles)  # values chosen exactly representable in float32


def _valid_tx_frames():
    quaternion = st.sampled_from(
        [(1.0, 0.0, 0.0, 0.0), (0.5, 0.5, 0.5, 0.5), (0.0, 0.0, 0.7071, 0.7071)]
    )
    coordinate = st.floats(-9999.99, 9999.99, allow_nan=False)
    pose = st.builds(
        lambda h, q, p, frame, status: HandlePose(h, "OK", q, p, 0.1, status, frame),
        st.integers(1, 255),
        quaternion,
        st.tuples(coordinate, coordinate, coordinate),
        st.integers(0, 2**32 - 1),
        st.sampled_from([0x31, 0x71, 0xB1]),
    )
    return st.lists(pose, min_size=1, max_size=4)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_parsers_never_raise_on_random_bytes(data):
    # random bytes would need a valid CRC and a valid layout: they never yield a sample
    assert parse_tx_reply(data) is None
    assert parse_bx_reply(data) is None
    parse_reply(data)
    parse_command(data)
    parse_phsr_reply(data.decode("latin-1"))


@settings(max_examples=300, deadline=None)
@given(_valid_tx_frames(), st.data())
def test_tx_truncation_and_bit_flips_never_yield_a_sample(handles, data):
    frame = build_tx_reply(handles)
    assert parse_tx_reply(frame) is not None
    cut = data.draw(st.integers(0, len(frame) - 2))
    assert parse_tx_reply(frame[:cut]) is None
    index = data.draw(st.integers(0, len(frame) - 2))  # any byte before the final CR
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(frame)
    flipped[index] ^= 1 << bit
    # a single-bit error is always detected by a 16-bit CRC
    assert parse_tx_reply(bytes(flipped)) is None


@settings(max_examples=300, deadline=None)
@given(_valid_tx_frames(), st.data())
def test_bx_truncation_and_bit_flips_never_yield_a_sample(handles, data):
    frame = build_bx_reply(handles)
    assert parse_bx_reply(frame) is not None
    cut = data.draw(st.integers(0, len(frame) - 1))
    assert parse_bx_reply(frame[:cut]) is None
    index = data.draw(st.integers(0, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(frame)
    flipped[index] ^= 1 << bit
    assert parse_bx_reply(bytes(flipped)) is None


def test_phsr_reply():
    assert parse_phsr_reply("020A0010B001") == [0x0A, 0x0B]
    assert parse_phsr_reply("00") == []
    assert parse_phsr_reply("02zz") is None
