"""scenarios/RECORDING.md, the attempt-file format a lab archives and replays, agrees with the real
reader and writer: its example reads with ``read_attempt`` (commands parsed, report present, the
random state restorable), and every header field, line type and event kind the simulator writes
is documented.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from fluorosim.scenarios import recording, session
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.recording import AttemptWriter, read_attempt, rng_from_state
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.session import Session
from tests.markdown import section
from tests.scenarios.conftest import StandInRenderer

DOCUMENT = Path(recording.__file__).with_name("RECORDING.md")


def _section(title: str) -> str:
    return section(DOCUMENT, title)


def _example(tmp_path: Path) -> Path:
    block = re.findall(r"```jsonl\n(.*?)```", _section("## Example"), flags=re.S)
    assert len(block) == 1
    path = tmp_path / "example.jsonl"
    path.write_text(block[0], encoding="utf-8")
    return path


def _table_fields(title: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_0-9]+)` \|", _section(title), flags=re.M))


def test_the_example_reads_with_the_real_reader(tmp_path):
    attempt = read_attempt(_example(tmp_path))
    assert not attempt.interrupted and attempt.note == ""
    assert attempt.header["format"] == recording.FORMAT
    assert attempt.header["version"] == recording.VERSION
    assert [t for t, _ in attempt.actions] == [0.0, 1.0, 2.0, 5.0, 6.0, 6.6, 8.0]
    assert type(attempt.actions[2][1]).__name__ == "InstrumentPose"
    assert attempt.actions[2][1].tip_lps_mm == (60.0, -12.0, 106.0)
    assert attempt.report is not None and attempt.report["passed"] is False
    rng_from_state(attempt.header["rng_state"]).random()  # a usable recorded random state
    kinds = {e["kind"] for e in attempt.events}
    assert kinds <= _table_fields("### `event` lines")


def test_every_header_field_and_line_type_written_is_documented(tmp_path, synthetic_patient):
    script = {
        "scenario": "sij-lateral",
        "patient": {"seed": 0},
        "steps": [
            {"t_s": 0.0, "carm": {"view": "lateral"}},
            {"t_s": 1.0, "shot": 1},
            {"t_s": 2.0, "finish": True},
        ],
    }
    path = tmp_path / "written.jsonl"
    writer = AttemptWriter(path, clock=lambda: 1_790_000_000.0, patient_parameters={"seed": 0})
    live = Session(
        load_shipped("sij-lateral"),
        synthetic_patient,
        StandInRenderer(synthetic_patient),
        None,
        lambda: 1_790_000_000.0,
        np.random.default_rng(3),
        recorder=writer,
    )
    run_actions(live, parse_script(script).actions)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert set(lines[0]) == _table_fields("### Header")
    documented_types = set(re.findall(r"`([a-z]+)` lines", DOCUMENT.read_text(encoding="utf-8")))
    assert {line["type"] for line in lines[1:]} <= documented_types | {"report"}
    assert "### `report` line" in DOCUMENT.read_text(encoding="utf-8")


def test_every_event_kind_the_session_emits_is_documented():
    source = Path(session.__file__).read_text(encoding="utf-8")
    emitted = set(re.findall(r'_emit\(\s*"([a-z_]+)"', source))
    assert len(emitted) >= 12
    assert emitted == _table_fields("### `event` lines")
