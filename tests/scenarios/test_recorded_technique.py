"""A replay doses each frame with the technique it was recorded with, so an attempt recorded under
an older (or since changed) dose-rate control replays to its stored report."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fluorosim.render.exposure import Exposure
from fluorosim.render.metering import DoseRateControl
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.recorded_technique import RecordedExposure, RecordedTechnique
from fluorosim.scenarios.recording import AttemptWriter, read_attempt, replay_attempt
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.session import Session

#: The tube current every view got before the control metered the patient (9-inch field).
OLD_CONTROL_MA = 2.66

#: Two single shots at different poses, then a pedal run during which the C-arm moves.
SCRIPT = {
    "scenario": "drill-inlet",
    "patient": {"seed": 0},
    "steps": [
        {"t_s": 0.0, "carm": {"angular_deg": -20.0}},
        {"t_s": 0.5, "shot": 1},
        {"t_s": 1.0, "carm": {"orbital_deg": 90.0, "angular_deg": 0.0}},
        {"t_s": 1.5, "shot": 1},
        {"t_s": 2.0, "carm": {"orbital_deg": 0.0, "angular_deg": -25.0}},
        {"t_s": 2.5, "pedal": "on"},
        {"t_s": 2.8, "carm": {"orbital_deg": 30.0}},
        {"t_s": 3.25, "pedal": "off"},
        {"t_s": 4.0, "finish": True},
    ],
}


def _old_control(mode: str, pulse_rate_pps: float) -> Exposure:
    """The dose-rate control before it metered the patient: one current for every view."""
    if mode == "single":
        return Exposure(75.0, OLD_CONTROL_MA, "single_shot", None, 0.1)
    return Exposure(75.0, OLD_CONTROL_MA, "pulsed", pulse_rate_pps, 1.0 / pulse_rate_pps)


def _record(tmp_path, patient, exposure_factory=None):
    parsed = parse_script(SCRIPT)
    writer = AttemptWriter(
        tmp_path / "attempt.jsonl", clock=lambda: 1_790_000_000.0, patient_parameters={"seed": 0}
    )
    session = Session(
        load_shipped(parsed.scenario),
        patient,
        None,
        None,
        lambda: 1_790_000_000.0,
        np.random.default_rng(3),
        recorder=writer,
        exposure_factory=exposure_factory,
    )
    return tmp_path / "attempt.jsonl", run_actions(session, parsed.actions)


def _headless(patient, carm_model):
    """Replay without images (as ``fluorosim replay --no-images``): the dose from the beam."""
    return None


def _rewrite_events(path, edit) -> None:
    """Apply ``edit(event)`` to every event line of an attempt file (an older writer's output)."""
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        obj = json.loads(line)
        if obj.get("type") == "event":
            edit(obj)
        out.append(json.dumps(obj))
    path.write_text("\n".join(out) + "\n")


def _dose(report) -> tuple[float, float]:
    return report.metrics["kap_gycm2"].value, report.metrics["air_kerma_mgy"].value


def test_an_older_recording_replays_with_its_recorded_current(tmp_path, synthetic_patient):
    """An attempt recorded under the old control (2.66 mA everywhere; its frame events carried no
    technique, only its shot events did) replays to its stored dose; metering afresh would not."""
    path, report = _record(tmp_path, synthetic_patient, _old_control)
    frames = [e for e in read_attempt(path).events if e["kind"] == "frame"]
    assert report.metrics["shots"].value == 3 and len(frames) > 3

    def as_older_writer(event):
        if event["kind"] == "frame":
            event["data"].pop("kvp")
            event["data"].pop("ma")

    _rewrite_events(path, as_older_writer)
    replayed = replay_attempt(path, patient=synthetic_patient, renderer_factory=_headless)
    assert replayed.to_json_text() == report.to_json_text()

    # the same file with no technique at all replays metered: another dose (so the check bites)
    def without_technique(event):
        event["data"].pop("exposure", None)

    _rewrite_events(path, without_technique)
    metered = replay_attempt(path, patient=synthetic_patient, renderer_factory=_headless)
    kap_metered, _ = _dose(metered)
    kap_recorded, _ = _dose(report)
    assert abs(kap_metered / kap_recorded - 1.0) > 0.2, (kap_metered, kap_recorded)


def test_a_recording_replays_to_its_dose_after_the_control_changes(
    tmp_path, synthetic_patient, monkeypatch
):
    """Each frame of a pedal run whose pose moves carries its own metered current; a replay after
    the control changed (here: half the current everywhere) still doses as recorded."""
    path, report = _record(tmp_path, synthetic_patient)
    frames = [e["data"] for e in read_attempt(path).events if e["kind"] == "frame"]
    assert len(frames) > 3
    currents = {round(f["ma"], 6) for f in frames}
    assert len(currents) >= 3, currents  # the lateral, the inlet and the moving run differ

    original = DoseRateControl.technique

    def halved(self, *args, **kwargs):
        technique = original(self, *args, **kwargs)
        return dataclasses.replace(technique, ma=0.5 * technique.ma)

    monkeypatch.setattr(DoseRateControl, "technique", halved)
    replayed = replay_attempt(path, patient=synthetic_patient, renderer_factory=_headless)
    assert replayed.to_json_text() == report.to_json_text()

    # and without the recorded technique the changed control would have moved the dose
    _rewrite_events(path, lambda e: [e["data"].pop(k, None) for k in ("kvp", "ma", "exposure")])
    changed = replay_attempt(path, patient=synthetic_patient, renderer_factory=_headless)
    assert _dose(changed)[0] == pytest.approx(0.5 * _dose(report)[0], rel=1e-6)


def test_technique_is_read_frame_first_then_shot_and_bad_values_are_not_used() -> None:
    events = [
        {"kind": "frame", "data": {"mode": "single", "kvp": 80.0, "ma": 4.0}},
        {"kind": "shot", "data": {"index": 1, "exposure": {"kvp": 75.0, "ma": 2.66}}},
        {"kind": "frame", "data": {"mode": "pulsed"}},  # an older writer: no technique
        {"kind": "shot", "data": {"index": 2, "exposure": {"kvp": 70.0, "ma": 3.0}}},
        {"kind": "frame", "data": {"mode": "pulsed", "kvp": "loud", "ma": 1.0}},
        {"kind": "frame", "data": {"mode": "pulsed", "kvp": 70.0, "ma": -1.0}},
        {"kind": "frame", "data": {"mode": "pulsed", "kvp": 70.0, "ma": float("nan")}},
        {"kind": "shot", "data": {"index": "3", "exposure": {"kvp": 70.0, "ma": 3.0}}},
        {"kind": "pose", "data": None},
    ]
    technique = RecordedTechnique.from_events(events)
    assert technique.for_frame(1, 1) == RecordedExposure(80.0, 4.0)  # the frame's own
    assert technique.for_frame(2, 2) == RecordedExposure(70.0, 3.0)  # its shot's
    for frame in (3, 4, 5):  # garbage: the shot's, never the bad value
        assert technique.for_frame(frame, 2) == RecordedExposure(70.0, 3.0)
        assert technique.for_frame(frame, 3) is None  # shot "3" was not a number: meter
    assert not RecordedTechnique.from_events([]) and technique
