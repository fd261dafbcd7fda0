"""scenarios/SCRIPTS.md, the scripted-attempt format a lab writes by hand or from its own tools,
agrees with the real reader: its example parses with ``parse_script`` and runs through a headless
session with no action refused, and every field the reader accepts (top-level fields, actions,
C-arm joints and views, technique fields, patient parameters) is documented.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path

import numpy as np

from fluorosim.models.phantom import PatientParameters
from fluorosim.render.carm import CArmJoints
from fluorosim.render.views import VIEWS
from fluorosim.scenarios import commands as cmd
from fluorosim.scenarios import scripted
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.scripted import Script, parse_script, run_actions
from fluorosim.scenarios.scripts import SCRIPT_FORMAT
from fluorosim.scenarios.session import Session
from tests.markdown import section
from tests.scenarios.conftest import StandInRenderer

DOCUMENT = Path(scripted.__file__).with_name("SCRIPTS.md")


def _section(title: str) -> str:
    return section(DOCUMENT, title)


def _first_column(text: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_0-9]+)` \|", text, flags=re.M))


def _table_after(section: str, caption: str) -> str:
    """The table that follows ``caption`` inside ``section``."""
    rest = section[section.index(caption) :]
    return re.search(r"(^\|.*\n)+", rest, flags=re.M).group(0)


def _example() -> dict:
    blocks = re.findall(r"```json\n(.*?)```", _section("## Example"), flags=re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def _one_of_each_command() -> list[cmd.Command]:
    commands = [
        cmd.MoveCArm(view="ap"),
        cmd.MoveCArm(joints={"orbital_deg": 10.0}),
        cmd.Pedal(True),
        cmd.Shot(),
        cmd.InstrumentPose("guide_pin", (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), roll_deg=30.0),
        cmd.Advance(1.0),
        cmd.Aim((1.0, 0.0, 0.0)),
        cmd.SelectInstrument("guide_pin"),
        cmd.PlaceImplant("sij_implant"),
        cmd.Technique(),
        cmd.NextStep(),
        cmd.Finish(),
    ]
    assert {type(c) for c in commands} == set(typing.get_args(cmd.Command))
    return commands


def test_the_example_parses_and_runs_with_nothing_refused(synthetic_patient):
    data = _example()
    script = parse_script(data, "SCRIPTS.md example")
    assert data["format"] == SCRIPT_FORMAT
    assert len(script.actions) == len(data["steps"])
    assert {type(c).__name__ for _, c in script.actions} >= {
        type(c).__name__ for c in _one_of_each_command()
    }  # the example shows every action
    session = Session(
        load_shipped(script.scenario),
        synthetic_patient,
        StandInRenderer(synthetic_patient),
        None,
        lambda: 0.0,
        np.random.default_rng(0),
        mode=script.mode,
    )
    events: list = []
    session.subscribe(events.append)
    report = run_actions(session, script.actions)
    refused = [e.data for e in events if e.kind == "refused"]
    assert not refused
    assert session.finished and report.score is not None
    shots = [e for e in events if e.kind == "shot"]
    assert [s.data["view"] for s in shots] == ["lateral", "lateral", None]  # inlet then moved
    technique = next(e.data for e in events if e.kind == "technique")
    assert technique["pulse_rate_pps"] == 15.0 and technique["iris_fraction"] == 0.8


def test_every_action_the_reader_accepts_is_documented():
    documented = _first_column(_table_after(_section("### Actions"), "| action |"))
    written = set()
    for command in _one_of_each_command():
        as_json = cmd.command_to_json(command)
        assert cmd.command_from_json(as_json) == command  # the documented syntax round-trips
        written |= set(as_json)
    assert written - {"tip_mm", "direction", "roll_deg"} == documented
    instrument_row = next(
        line for line in _section("### Actions").splitlines() if line.startswith("| `instrument`")
    )
    assert all(f"`{field}`" in instrument_row for field in ("tip_mm", "direction", "roll_deg"))


def test_every_top_level_field_is_documented():
    documented = _first_column(_table_after(_section("## The file"), "| field |"))
    reader_fields = {f.name for f in dataclasses.fields(Script)} - {"actions"} | {"steps"}
    assert documented == reader_fields | {"format"}


def test_every_joint_view_technique_field_and_patient_parameter_is_documented():
    actions = _section("### Actions")
    assert _first_column(_table_after(actions, "| joint |")) == {
        f.name for f in dataclasses.fields(CArmJoints)
    }
    assert _first_column(_table_after(actions, "Technique (`technique`")) == {
        f.name for f in dataclasses.fields(cmd.Technique)
    }
    views = set(re.findall(r"`([a-z_]+)`", actions[actions.index("Views (") :].split("\n\n")[0]))
    assert views - {"carm", "view"} == set(VIEWS)
    patient = _first_column(_section("### Patient"))
    assert patient == {f.name for f in dataclasses.fields(PatientParameters)} | {"ct"}


def test_the_documented_errors_are_the_readers(tmp_path):
    messages = re.findall(r"`(bad\.json: [^`]+)`", _section("## Errors"))
    assert len(messages) == 2
    for text in messages:
        step = int(re.search(r"steps\[(\d+)\]", text).group(1))
        data = _example()
        if ".pedal" in text:
            data["steps"][step] = {"t_s": data["steps"][step]["t_s"], "pedal": "down"}
        else:
            data["steps"][step]["t_s"] = 3.0
            data["steps"][step - 1]["t_s"] = 4.0
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        try:
            scripted.load_script(path)
        except scripted.ScriptFormatError as error:
            assert str(error) == text
        else:
            raise AssertionError(f"not refused: {text}")
