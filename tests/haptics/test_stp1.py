"""STP/1 parser: golden lines from tracking.md, every drop reason, wraps, and fuzzing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluorosim.haptics import stp1
from fluorosim.haptics.stp1 import Ack, Btn, Command, Gimb, Hb, Hello, Imuq, Nak, Pose, Stp1Parser

# The examples of reference/tracking.md, byte for byte (their checksums are correct).
GOLDEN = [
    b"$HELLO,proto=1,dev=needle-gimbal,fw=0.3.1,uid=A1B2C3,kind=GIMB,rate=100,lin=mm,ang=deg*24\r\n",
    b"$GIMB,1042,518230,OK,12.50,-33.25,0.00,41.80*32\r\n",
    b"$POSE,77,90210,OK,12.34,-56.78,123.45,0.70711,0.00000,0.70711,0.00000,0.15*3B\r\n",
    b"$IMUQ,5,1000,OK,0.99996,0.00000,0.00873,0.00000,3*09\r\n",
    b"$HB,1043,518240*06\r\n",
]
GOLDEN_COMMAND = b"$ID?*32\r\n"


def parse_one(line: bytes, **kwargs) -> tuple[list, Stp1Parser]:
    parser = Stp1Parser(**kwargs)
    return parser.feed(line), parser


def test_golden_hello():
    (msg,), _ = parse_one(GOLDEN[0])
    assert msg == Hello(1, "needle-gimbal", "0.3.1", "A1B2C3", "GIMB", 100, "mm", "deg", {})


def test_golden_gimb():
    (msg,), _ = parse_one(GOLDEN[1])
    assert isinstance(msg, Gimb)
    assert (msg.seq, msg.t_ms, msg.status) == (1042, 518230, "OK")
    assert (msg.yaw_deg, msg.pitch_deg, msg.roll_deg, msg.depth_mm) == (12.5, -33.25, 0.0, 41.8)
    assert msg.device_t_s == pytest.approx(518.230)


def test_golden_pose():
    (msg,), _ = parse_one(GOLDEN[2])
    assert isinstance(msg, Pose)
    assert (msg.seq, msg.t_ms, msg.status) == (77, 90210, "OK")
    assert (msg.x_mm, msg.y_mm, msg.z_mm) == (12.34, -56.78, 123.45)
    assert (msg.qw, msg.qx, msg.qy, msg.qz, msg.err_mm) == (0.70711, 0.0, 0.70711, 0.0, 0.15)


def test_golden_imuq_and_hb():
    (imu,), _ = parse_one(GOLDEN[3])
    assert imu == Imuq(5, 1000, "OK", 0.99996, 0.0, 0.00873, 0.0, 3, device_t_s=1.0)
    (hb,), _ = parse_one(GOLDEN[4])
    assert hb == Hb(1043, 518240, device_t_s=518.24)


def test_golden_host_command_is_read_by_the_device_side():
    (msg,), _ = parse_one(GOLDEN_COMMAND, role="device")
    assert msg == Command("ID?")
    assert stp1.cmd_id() == GOLDEN_COMMAND


def test_encode_reproduces_the_golden_lines():
    for line in GOLDEN:
        assert stp1.encode(line[1:-5].decode()) == line
        (msg,), _ = parse_one(line)
        assert stp1.encode_message(msg) == line


def test_host_commands_round_trip():
    parser = Stp1Parser(role="device")
    data = stp1.cmd_rate(250) + stp1.cmd_stream(True) + stp1.cmd_zero() + stp1.cmd_hapt(200)
    assert parser.feed(data) == [
        Command("RATE", 250),
        Command("STREAM", 1),
        Command("ZERO"),
        Command("HAPT", 200),
    ]
    with pytest.raises(ValueError):
        stp1.cmd_hapt(256)
    with pytest.raises(ValueError):
        stp1.cmd_rate(0)


def test_ack_nak_btn():
    data = (
        stp1.encode("ACK,RATE") + stp1.encode("NAK,HAPT,no actuator") + stp1.encode("BTN,9,10,05")
    )
    msgs, _ = parse_one(data)
    assert msgs[:2] == [Ack("RATE"), Nak("HAPT", "no actuator")]
    assert isinstance(msgs[2], Btn) and msgs[2].mask == 5


def test_lines_split_across_feeds_and_bare_lf():
    parser = Stp1Parser()
    stream = b"".join(GOLDEN)
    out = []
    for i in range(0, len(stream), 7):
        out += parser.feed(stream[i : i + 7])
    assert len(out) == len(GOLDEN)
    assert parser.feed(GOLDEN[4][:-2] + b"\n")  # a bare LF ends a line too


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"$GIMB,1042,518230,OK,12.50,-33.25,0.00,41.80*33\r\n", "checksum"),
        (b"$GIMB,1042,518230,OK,12.50,-33.25,0.00,41.80*3b\r\n", "malformed"),
        (b"$GIMB,1042,518230,OK,12.50,-33.25,0.00,41.80\r\n", "malformed"),
        (b"$GIMB,1042,518\x00230,OK,12.50,-33.25,0.00,41.80*32\r\n", "non_printable"),
        (b"$GIMB,1042,51", "truncated"),
        (b"$" + b"A" * 130 + b"\r\n", "too_long"),
        (stp1.encode("GIMB,1,2,OK,1.0,2.0,3.0"), "field_count"),
        (stp1.encode("GIMB,1,2,OK,1e1,2.0,3.0,4.0"), "bad_number"),
        (stp1.encode("GIMB,1,2,OK,nan,2.0,3.0,4.0"), "bad_number"),
        (stp1.encode("GIMB,1,2,OK,inf,2.0,3.0,4.0"), "bad_number"),
        (stp1.encode("GIMB,1,2,OK,,2.0,3.0,4.0"), "bad_number"),
        (stp1.encode("GIMB,1,2,OK,1.0,2.0,3.0,400.0"), "out_of_range"),  # depth beyond travel
        (stp1.encode("GIMB,1,2,WHAT,1.0,2.0,3.0,4.0"), "out_of_range"),
        (stp1.encode("GIMB,70000,2,OK,1.0,2.0,3.0,4.0"), "out_of_range"),  # seq > 16 bit
        (stp1.encode("HB,1,4294967296"), "out_of_range"),  # t_ms > 32 bit
        (stp1.encode("POSE,1,2,OK,1,2,3,0.5,0,0,0,0.1"), "out_of_range"),  # |q| = 0.5
        (stp1.encode("IMUQ,1,2,OK,2,0,0,0,3"), "out_of_range"),  # |q| = 2
        (stp1.encode("IMUQ,1,2,OK,1,0,0,0,4"), "out_of_range"),  # calib 0-3
        (stp1.encode("WARP,1,2"), "unknown_type"),
        (
            stp1.encode("HELLO,proto=2,dev=a,fw=1,uid=1,kind=GIMB,rate=100,lin=mm,ang=deg"),
            "out_of_range",
        ),
        (stp1.encode("HELLO,proto=1,dev=a"), "field_count"),
    ],
)
def test_each_bad_line_is_dropped_and_counted_by_reason(data, reason):
    msgs, parser = parse_one(data + GOLDEN[4])
    assert msgs == [Hb(1043, 518240, device_t_s=518.24)]  # the parser resynchronises
    assert parser.dropped == {reason: 1}


def test_missing_tool_line_may_carry_placeholder_zeros():
    (msg,), parser = parse_one(stp1.encode("POSE,1,2,MISS,0,0,0,0,0,0,0,0"))
    assert msg.status == "MISS" and parser.dropped == {}


def test_depth_travel_is_a_parameter():
    line = stp1.encode("GIMB,1,2,OK,1.0,2.0,3.0,120.0")
    assert parse_one(line, depth_range_mm=(0.0, 100.0))[0] == []
    assert len(parse_one(line, depth_range_mm=(0.0, 150.0))[0]) == 1


def test_noise_between_lines_is_skipped_and_counted():
    msgs, parser = parse_one(b"\x00\xff garbage\r\n" + GOLDEN[1] + b"zz\n" + GOLDEN[4])
    assert len(msgs) == 2 and parser.dropped == {}
    assert parser.noise_bytes == len(b"\x00\xff garbage\r\n") + 3


def test_sequence_gaps_count_lost_lines_across_the_16_bit_wrap():
    parser = Stp1Parser()
    for seq in (65533, 65534, 65535, 0, 1, 4, 5):  # 4 after 1: two lines lost
        parser.feed(stp1.encode(f"HB,{seq},{seq}"))
    assert parser.seq_gaps == 2 and parser.seq_gap_events == 1 and parser.seq_repeats == 0
    parser.feed(stp1.encode("HB,65535,7"))  # wrapping forward by 65530 is a reordering, not a gap
    assert parser.seq_gaps == 2 and parser.seq_repeats == 1


def test_device_time_is_unwrapped_across_the_32_bit_wrap():
    parser = Stp1Parser()
    times = [4294967000, 4294967295, 100, 400]
    out = [parser.feed(stp1.encode(f"HB,{i},{t}"))[0].device_t_s for i, t in enumerate(times)]
    assert out == pytest.approx([4294967.000, 4294967.295, 4294967.396, 4294967.696])
    assert parser.time_backwards == 0


def test_hello_resets_sequence_and_time_history():
    parser = Stp1Parser()
    parser.feed(stp1.encode("HB,500,9000"))
    parser.feed(GOLDEN[0])
    (hb,) = parser.feed(stp1.encode("HB,0,10"))
    assert parser.seq_gaps == 0 and parser.time_backwards == 0 and hb.device_t_s == 0.01


def test_encode_refuses_what_cannot_be_a_line():
    with pytest.raises(ValueError):
        stp1.encode("A*B")
    with pytest.raises(ValueError):
        stp1.encode("X" * 120)


# ------------------------------------------------------------------------------- fuzzing

valid_lines = st.one_of(
    st.builds(
        lambda s, t, y, p, r, d: stp1.encode(f"GIMB,{s},{t},OK,{y:.2f},{p:.2f},{r:.2f},{d:.2f}"),
        st.integers(0, 65535),
        st.integers(0, 2**32 - 1),
        st.floats(-180, 180),
        st.floats(-90, 90),
        st.floats(-180, 180),
        st.floats(0, 250),
    ),
    st.builds(
        lambda s, t, x, a: stp1.encode(
            f"POSE,{s},{t},OK,{x[0]:.2f},{x[1]:.2f},{x[2]:.2f},"
            f"{math.cos(a):.5f},0.00000,{math.sin(a):.5f},0.00000,0.20"
        ),
        st.integers(0, 65535),
        st.integers(0, 2**32 - 1),
        st.tuples(*[st.floats(-2000, 2000)] * 3),
        st.floats(0, 6.28),
    ),
    st.sampled_from(GOLDEN),
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_never_raise(data):
    parser = Stp1Parser()
    msgs = parser.feed(data) + parser.feed(b"\n")
    assert parser.lines_ok == len(msgs)


@settings(max_examples=300, deadline=None)
@given(valid_lines, st.data())
def test_fuzz_single_bit_flip_never_yields_a_message(line, data):
    bit = data.draw(st.integers(0, len(line) * 8 - 1))
    corrupt = bytearray(line)
    corrupt[bit // 8] ^= 1 << (bit % 8)
    parser = Stp1Parser()
    msgs = parser.feed(bytes(corrupt) + b"\n")
    assert msgs == []
    assert parser.lines_ok == 0


@settings(max_examples=200, deadline=None)
@given(valid_lines, st.data())
def test_fuzz_truncated_line_followed_by_valid_line(line, data):
    cut = data.draw(st.integers(1, len(line) - 3))
    parser = Stp1Parser()
    msgs = parser.feed(line[:cut] + GOLDEN[4])
    assert msgs == [Hb(1043, 518240, device_t_s=518.24)]
    assert parser.dropped_total == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_lines, min_size=1, max_size=8), st.binary(max_size=40))
def test_fuzz_valid_lines_survive_noise_between_them(lines, noise):
    noise = noise.replace(b"$", b"")
    parser = Stp1Parser()
    msgs = parser.feed(noise.join(lines) + b"\r\n")
    assert len(msgs) == len(lines)
    assert parser.dropped_total == 0


def test_line_length_limit_is_120_bytes_including_crlf():
    def line_of(total: int) -> bytes:
        pad = total - len(stp1.encode("ERR,E1,"))
        return stp1.encode("ERR,E1," + "x" * pad)

    assert len(line_of(120)) == 120
    msgs, parser = parse_one(line_of(120))
    assert len(msgs) == 1 and parser.dropped == {}
    body = b"ERR,E1," + b"x" * (121 - len(stp1.encode("ERR,E1,")))
    line_121 = b"$" + body + b"*" + f"{stp1.checksum(body):02X}".encode() + b"\r\n"
    msgs, parser = parse_one(line_121 + GOLDEN[4])
    assert len(msgs) == 1 and parser.dropped == {"too_long": 1}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(valid_lines, st.binary(max_size=30)), max_size=10),
    st.lists(st.integers(1, 50), min_size=1, max_size=20),
)
def test_fuzz_chunking_does_not_change_the_result(pieces, cuts):
    stream = b"".join(pieces)
    whole = Stp1Parser()
    expected = whole.feed(stream)
    chunked, out, pos, i = Stp1Parser(), [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += chunked.feed(stream[pos : pos + step])
        pos, i = pos + step, i + 1
    assert out == expected
    assert chunked.counters() == whole.counters()
