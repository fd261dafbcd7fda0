"""Roll about the shaft travels with the one pose type: from an STP/1 gimbal or a script, through
the session and the attempt file, to the triangular SIJ implant the renderer projects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fluorosim.haptics.calibration import tip_and_direction, tool_roll_deg
from fluorosim.haptics.rig_models import GimbalRig
from fluorosim.haptics.source import InstrumentSource, TrackingStatus
from fluorosim.haptics.stp1 import Gimb
from fluorosim.models import frames
from fluorosim.models.instruments import InstrumentPose as RenderPose
from fluorosim.models.instruments import load_catalogue
from fluorosim.models.pose import ToolPose, wrap_roll_deg
from fluorosim.render import carm
from fluorosim.render.instrument_projection import instrument_line_integrals
from fluorosim.scenarios import commands as cmd
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.recording import AttemptWriter, read_attempt, replay_attempt
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.session import Session
from tests.scenarios.conftest import StandInRenderer


class CapturingRenderer(StandInRenderer):
    """The stand-in renderer, keeping the instrument poses of every frame."""

    def __init__(self, patient):
        super().__init__(patient)
        self.instruments: list[list[RenderPose]] = []

    def render_frame(self, joints, instruments=(), exposure=None, chain_settings=None, rng=None):
        self.instruments.append(list(instruments))
        return super().render_frame(joints, instruments, exposure, chain_settings, rng)


def implant_rolls(renderer: CapturingRenderer) -> list[float]:
    return [
        p.roll_deg for frame in renderer.instruments for p in frame if p.spec_name == "sij_implant"
    ]


def end_on_image(roll_deg: float) -> np.ndarray:
    """The SIJ implant seen end-on (its axis along the central ray), at ``roll_deg``."""
    iso = np.zeros(3)
    geometry = carm.carm_geometry(carm.CArmJoints(), "ii9", iso, size_px=384)
    axis = iso - geometry.source_lps_mm
    pose = ToolPose(iso, axis, roll_deg)
    catalogue = load_catalogue()
    return instrument_line_integrals(
        [RenderPose.placed("sij_implant", pose)], catalogue, geometry, 60.0
    )


def test_the_triangular_implant_projects_by_its_roll() -> None:
    at_0, at_60, at_120 = (end_on_image(r) for r in (0.0, 60.0, 120.0))
    footprint = at_0 > 0
    assert footprint.sum() > 150
    # turned by 60° the triangle points the other way: a different footprint, the same area
    assert np.count_nonzero((at_60 > 0) != footprint) > 0.2 * footprint.sum()
    assert np.sum(at_60) == pytest.approx(np.sum(at_0), rel=0.02)
    # an equilateral triangle turned by 120° covers itself again
    np.testing.assert_allclose(at_120, at_0, atol=1e-3 * float(at_0.max()))


def test_old_actions_without_roll_mean_roll_zero_and_new_ones_keep_it() -> None:
    old = cmd.command_from_json(
        {"instrument": "guide_pin", "tip_mm": [1, 2, 3], "direction": [0, 0, 1]}
    )
    assert old.roll_deg == 0.0
    turned = cmd.InstrumentPose("guide_pin", (1.0, 2.0, 3.0), (0.0, 0.0, 1.0), 60.0)
    text = cmd.command_to_json(turned)
    assert text["roll_deg"] == 60.0 and cmd.command_from_json(text) == turned
    with pytest.raises(cmd.CommandError, match="step 3.roll_deg"):
        cmd.command_from_json({**text, "roll_deg": "sixty"}, "step 3")


def test_a_recording_round_trips_roll_to_the_replayed_implant(tmp_path, synthetic_patient) -> None:
    lateral = [-1.0, 0.0, 0.0]
    script = {
        "scenario": "sij-lateral",
        "steps": [
            {"t_s": 0.0, "carm": {"view": "true_lateral_sacrum"}},
            {
                "t_s": 1.0,
                "instrument": "guide_pin",
                "tip_mm": [60.0, 0.0, -20.0],
                "direction": lateral,
                "roll_deg": 60.0,
            },
            {"t_s": 2.0, "advance_mm": 5.0},
            {"t_s": 3.0, "place_implant": "sij_implant"},
            {"t_s": 4.0, "shot": 1},
            {"t_s": 5.0, "finish": True},
        ],
    }
    parsed = parse_script(script)
    renderer = CapturingRenderer(synthetic_patient)
    writer = AttemptWriter(tmp_path / "a.jsonl", clock=lambda: 0.0, patient_parameters={"seed": 0})
    session = Session(
        load_shipped("sij-lateral"),
        synthetic_patient,
        renderer,
        None,
        lambda: 0.0,
        np.random.default_rng(3),
        recorder=writer,
    )
    run_actions(session, parsed.actions)
    assert session.implants[0].roll_deg == 60.0  # kept through the advance
    assert implant_rolls(renderer) == [60.0]
    attempt = read_attempt(tmp_path / "a.jsonl")
    poses = [c for _, c in attempt.actions if isinstance(c, cmd.InstrumentPose)]
    assert poses[0].roll_deg == 60.0
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [x["command"]["roll_deg"] for x in lines if "instrument" in x.get("command", {})] == [
        60.0
    ]
    replayed = CapturingRenderer(synthetic_patient)
    replay_attempt(tmp_path / "a.jsonl", patient=synthetic_patient, renderer=replayed)
    assert implant_rolls(replayed) == [60.0]


class GimbalSource(InstrumentSource):
    """STP/1 GIMB lines through the real gimbal rig model, one per poll."""

    name = "gimbal lines"

    def __init__(self, lines: list[Gimb], rig: GimbalRig) -> None:
        super().__init__()
        self.lines, self.rig = list(lines), rig

    def start(self) -> None:
        self.status = TrackingStatus.OK

    def stop(self) -> None:
        pass

    def poll(self):
        return self.rig.sample(self.lines.pop(0), t_s=0.0) if self.lines else None


def test_stp1_gimbal_roll_reaches_the_rendered_implant(synthetic_patient) -> None:
    patient_from_rig = np.eye(4)
    patient_from_rig[:3, 3] = [60.0, 0.0, -20.0]  # the pivot beside the left SI joint
    rig = GimbalRig(patient_from_rig, roll_zero_deg=5.0)
    lines = [Gimb(1, 10, "OK", 0.0, -30.0, 65.0, 12.0), Gimb(2, 20, "OK", 0.0, -30.0, 65.0, 14.0)]
    renderer = CapturingRenderer(synthetic_patient)
    session = Session(
        load_shipped("sij-lateral"),
        synthetic_patient,
        renderer,
        GimbalSource(lines, rig),
        lambda: 0.0,
        np.random.default_rng(0),
    )
    session.step(0.1)
    session.step(0.1)
    assert session.tool_pose.roll_deg == pytest.approx(60.0)  # 65° read, 5° calibrated zero
    session.command(cmd.PlaceImplant("sij_implant"))
    session.command(cmd.Shot())
    assert implant_rolls(renderer) == [pytest.approx(60.0)]


@pytest.mark.parametrize("shaft_tool", [(0.0, 0.0, 1.0), (0.0, 0.0, 120.0), (80.0, 30.0, -10.0)])
def test_turning_a_tracked_tool_about_its_shaft_turns_its_roll(shaft_tool) -> None:
    """6-DOF tools (NDI, PLUS, OpenIGTLink, STP/1 POSE): roll follows the tool's own frame."""
    tool_from_tip = np.eye(4)
    if np.linalg.norm(shaft_tool) > 1.0:
        tool_from_tip[:3, 3] = shaft_tool
    shaft = np.asarray(shaft_tool) / np.linalg.norm(shaft_tool)
    base = frames.rigid(frames.rotation_about_axis((1.0, 2.0, 0.5), 35.0), (10.0, -5.0, 3.0))
    patient_from_tracker = frames.rigid(
        frames.rotation_about_axis((0.0, 1.0, 0.0), 20.0), (0, 0, 0)
    )
    rolls = []
    for turn_deg in (0.0, 60.0, 200.0):
        turned = base @ frames.rigid(frames.rotation_about_axis(shaft, turn_deg), (0.0, 0.0, 0.0))
        tip, direction = tip_and_direction(turned, tool_from_tip, patient_from_tracker)
        rolls.append(tool_roll_deg(turned, tool_from_tip, patient_from_tracker))
        np.testing.assert_allclose(
            tip, tip_and_direction(base, tool_from_tip, patient_from_tracker)[0], atol=1e-9
        )
    assert wrap_roll_deg(rolls[1] - rolls[0]) == pytest.approx(60.0)
    assert wrap_roll_deg(rolls[2] - rolls[0]) == pytest.approx(wrap_roll_deg(200.0))
