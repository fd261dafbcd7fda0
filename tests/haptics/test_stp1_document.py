"""haptics/STP1.md, the protocol a lab builds its rig from, agrees with the real parser.

Every example line of the document must parse to exactly one message with nothing dropped, the
message types in its tables must be the ones the parser knows, and every drop reason the parser
counts must be documented.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fluorosim.haptics import stp1
from fluorosim.haptics.stp1 import Stp1Parser

DOCUMENT = Path(stp1.__file__).with_name("STP1.md")


def _section(title: str) -> str:
    text = DOCUMENT.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _example_blocks() -> tuple[list[str], list[str]]:
    """(device → host lines, host → device lines) of the Examples section."""
    blocks = re.findall(r"```\n(.*?)```", _section("Examples"), flags=re.S)
    device, host = ([line for line in b.splitlines() if line.startswith("$")] for b in blocks)
    return device, host


def _table_types(title: str) -> set[str]:
    return set(re.findall(r"^\| `([A-Z?]+)[`,]", _section(title), flags=re.M))


def test_the_document_ships_inside_the_package():
    assert DOCUMENT.is_file()


@pytest.mark.parametrize("line", _example_blocks()[0])
def test_each_device_example_parses_to_one_message(line):
    parser = Stp1Parser(role="host")
    messages = parser.feed(line.encode("ascii") + b"\r\n")
    assert len(messages) == 1, parser.counters()
    assert parser.dropped_total == 0
    assert type(messages[0]).__name__.upper() == line[1:].split(",")[0].split("*")[0]


@pytest.mark.parametrize("line", _example_blocks()[1])
def test_each_host_example_parses_as_a_command_on_the_device_side(line):
    parser = Stp1Parser(role="device")
    messages = parser.feed(line.encode("ascii") + b"\r\n")
    assert len(messages) == 1 and parser.dropped_total == 0
    assert messages[0].name == re.split(r"[,*]", line[1:])[0]


def test_examples_are_what_the_encoder_writes():
    for line in sum(_example_blocks(), []):
        body = line[1 : line.index("*")]
        assert stp1.encode(body).decode("ascii").rstrip("\r\n") == line


def test_every_documented_type_is_known_and_every_known_type_documented():
    device_types = _table_types("Device → host")
    assert device_types == {"HELLO", "POSE", "GIMB", "IMUQ", "BTN", "HB", "ERR", "ACK", "NAK"}
    for kind in device_types:
        parser = Stp1Parser(role="host")
        parser.feed(stp1.encode(f"{kind},x"))
        assert "unknown_type" not in parser.dropped, kind
    assert _table_types("Host → device") >= {"ID?", "RATE", "STREAM", "ZERO", "HAPT"}


def test_every_drop_reason_is_documented():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", _section("What the host does"), flags=re.M))
    assert documented == set(stp1.DROP_REASONS)
