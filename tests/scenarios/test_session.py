"""The headless session: modes, observers, events, instrument sources, steps and counters."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.haptics.source import InstrumentSource, ToolSample, TrackingStatus
from fluorosim.scenarios.commands import (
    Advance,
    Aim,
    Finish,
    InstrumentPose,
    MoveCArm,
    NextStep,
    Pedal,
    PlaceImplant,
    SelectInstrument,
    Shot,
)
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.session import Session, SessionError


def make(patient, renderer, scenario_id="sij-lateral", mode="learning", source=None):
    return Session(
        load_shipped(scenario_id),
        patient,
        renderer,
        source,
        lambda: 0.0,
        np.random.default_rng(0),
        mode=mode,
    )


def test_exam_mode_refuses_named_views_and_hints(synthetic_patient, stand_in_renderer):
    session = make(synthetic_patient, stand_in_renderer, mode="exam")
    events = []
    session.subscribe(events.append)
    session.command(MoveCArm(view="inlet"))
    assert session.joints.angular_deg == 0.0
    assert events[-1].kind == "refused" and "exam mode" in events[-1].data["reason"]
    assert session.hint() is None and not session.hints_allowed
    session.command(MoveCArm(joints={"angular_deg": -25.0}))
    assert session.joints.angular_deg == -25.0
    report = session.command(Finish())
    assert any("refused" in f and "exam mode" in f for f in report.findings)


def test_learning_mode_goes_to_named_views_and_gives_hints(synthetic_patient, stand_in_renderer):
    session = make(synthetic_patient, stand_in_renderer)
    session.command(MoveCArm(view="inlet"))
    assert session.joints.angular_deg < -10.0  # caudal tilt
    assert "inlet" in session.hint()


def test_drills_refuse_named_views_even_in_learning_mode(synthetic_patient, stand_in_renderer):
    session = make(synthetic_patient, stand_in_renderer, scenario_id="drill-outlet")
    session.command(MoveCArm(view="outlet"))
    assert session.log.refused and "positioning by hand" in session.log.refused[0][1]


def test_joint_limits_are_refused_with_the_joint_named(synthetic_patient, stand_in_renderer):
    session = make(synthetic_patient, stand_in_renderer)
    session.command(MoveCArm(joints={"angular_deg": 80.0}))
    assert session.joints.angular_deg == 0.0
    assert "angular_deg" in session.log.refused[0][1]
    session.command(MoveCArm(joints={"spin_deg": 3.0}))
    assert "unknown joint(s) ['spin_deg']" in session.log.refused[1][1]


def test_events_pose_tissue_breach_step_and_unsubscribe(synthetic_patient, stand_in_renderer):
    session = make(synthetic_patient, stand_in_renderer)
    events = []
    unsubscribe = session.subscribe(events.append)
    lateral = np.array([-1.0, 0.0, 0.0])
    # along the S1 root's level toward the left S1 foramen: tissue changes, then a breach
    session.command(InstrumentPose("guide_pin", (130.0, -20.0, -38.0), tuple(lateral)))
    session.step(1.0)
    session.command(Advance(107.0))  # tip at x = 23: inside root_S1_left
    kinds = [e.kind for e in events]
    assert kinds.count("pose") == 2
    assert "tissue" in kinds
    breach = next(e for e in events if e.kind == "breach")
    assert breach.data["label"] == "root_S1_left" and breach.t_s == 1.0
    session.command(Advance(-60.0))  # withdraw
    session.command(Aim((-0.99, 0.1, 0.0)))
    assert session.tool_pose.tip_lps_mm[0] == pytest.approx(83.0)
    session.command(PlaceImplant("sij_implant"))
    assert session.current_step.id == "implant_2_s1"
    assert events[-1].kind == "step" and session.tool_pose is None
    unsubscribe()
    session.command(NextStep())
    assert events[-1].kind == "step" and events[-1].data["step"] == "implant_2_s1"


def test_shots_pedal_and_counters(synthetic_patient, stand_in_renderer):
    session = make(synthetic_patient, stand_in_renderer)
    session.command(Shot())
    session.step(1.0)
    session.command(Pedal(True))
    session.step(0.5)  # 8 pps: pulses at 1.0, 1.125, 1.25, 1.375, 1.5
    session.command(Pedal(False))
    assert session.counters["shots"] == 2
    assert session.counters["frames"] == 6
    assert session.counters["beam_on_s"] == pytest.approx(0.6)
    assert session.last_frame is not None
    assert len(stand_in_renderer.calls) == 6


class ListSource(InstrumentSource):
    """A source that hands out prepared samples, one per poll."""

    def __init__(self, samples):
        super().__init__()
        self.samples = list(samples)

    def start(self):
        self.status = TrackingStatus.OK

    def stop(self):
        pass

    def poll(self):
        return self.samples.pop(0) if self.samples else None


def test_instrument_source_samples_become_recorded_poses(synthetic_patient, stand_in_renderer):
    d = np.array([-1.0, 0.0, 0.0])
    samples = [
        ToolSample(0.1, TrackingStatus.OK, np.array([120.0, 0.0, -20.0]), d),
        ToolSample(0.2, TrackingStatus.MISSING, None, None),
        ToolSample(0.3, TrackingStatus.STALE, np.array([110.0, 0.0, -20.0]), d),
    ]
    session = make(synthetic_patient, stand_in_renderer, source=ListSource(samples))
    events = []
    session.subscribe(events.append)
    for _ in range(3):
        session.step(0.1)
    statuses = [e.data["status"] for e in events if e.kind == "sample"]
    assert statuses == ["OK", "MISSING", "STALE"]  # tracking loss is recorded too
    tips = [p.tip_lps_mm[0] for p in session.log.poses]
    assert tips == [120.0, 110.0]  # the MISSING sample is not a pose
    assert session.log.poses[0].instrument == "guide_pin"


def test_selecting_a_later_instrument_moves_to_its_step(synthetic_patient, stand_in_renderer):
    session = make(synthetic_patient, stand_in_renderer, scenario_id="teld-l4l5")
    assert session.current_step.id == "needle"
    session.command(SelectInstrument("dilator"))
    assert session.current_step.id == "dilator"
    with pytest.raises(SessionError, match="not in the kit"):
        session.command(SelectInstrument("chisel"))
    session.command(Finish())
    with pytest.raises(SessionError, match="finished"):
        session.command(Shot())


def test_hand_on_the_handle_in_the_beam_during_live_fluoroscopy(
    synthetic_patient, stand_in_renderer
):
    session = make(synthetic_patient, stand_in_renderer, scenario_id="ield-l5s1")
    down = (0.0, -1.0, 0.0)  # posterior approach; the AP beam runs along the shaft
    session.command(InstrumentPose("dilator", (6.0, 40.0, 8.0), down))
    session.command(Shot())  # single shot: hands off
    session.command(Pedal(True))
    session.step(0.3)
    session.command(Pedal(False))
    report = session.command(Finish())
    assert report.metrics["hands_in_beam"].value == 1
    assert report.metrics["hands_in_beam"].passed is False
    assert any("in the beam on shot 2" in f for f in report.findings)
