"""The review's replay without a window: an attempt file re-rendered frame by frame, each image
paired with its recorded time, shot, view and the dose so far (the stand-in renderer gives every
frame 0.1 s beam-on, 0.15 mGy, 0.02 Gy·cm², so the running totals are exact)."""

from __future__ import annotations

import numpy as np
import pytest

from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.recording import AttemptWriter, read_attempt
from fluorosim.scenarios.records.review import replay_frames
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.session import Session
from tests.scenarios.conftest import StandInRenderer

SCRIPT = {
    "scenario": "sij-lateral",
    "patient": {"seed": 0},
    "steps": [
        {"t_s": 0.0, "carm": {"view": "lateral"}},
        {"t_s": 1.0, "shot": 1},
        {"t_s": 2.0, "carm": {"view": "inlet"}},
        {"t_s": 3.0, "pedal": "on"},
        {"t_s": 3.5, "pedal": "off"},
        {"t_s": 5.0, "finish": True},
    ],
}


@pytest.fixture
def attempt_file(tmp_path, synthetic_patient):
    path = tmp_path / "attempt.jsonl"
    writer = AttemptWriter(path, clock=lambda: 1_790_000_000.0, patient_parameters={"seed": 0})
    session = Session(
        load_shipped("sij-lateral"),
        synthetic_patient,
        StandInRenderer(synthetic_patient),
        None,
        lambda: 1_790_000_000.0,
        np.random.default_rng(5),
        recorder=writer,
    )
    run_actions(session, parse_script(SCRIPT).actions)
    return path


def test_every_recorded_frame_comes_back_with_its_shot_view_and_running_dose(
    attempt_file, synthetic_patient
):
    asked = []
    result = replay_frames(
        attempt_file,
        patient=synthetic_patient,
        renderer_factory=lambda patient, model: StandInRenderer(patient),
        surfaces_of=lambda patient: asked.append(patient) or {"bone": ("mesh", "bone")},
    )
    recorded = [e for e in read_attempt(attempt_file).events if e["kind"] == "frame"]
    assert result.problem == ""
    assert len(result.frames) == len(recorded) >= 3  # one shot, then a pedal run of pulses
    assert [t for t, _, _ in result.frames] == [e["t_s"] for e in recorded]
    infos = [info for _, _, info in result.frames]
    assert infos[0]["shot"] == 1 and infos[0]["view"] == "lateral"
    assert {info["shot"] for info in infos[1:]} == {2} and infos[-1]["view"] == "inlet"
    n = np.arange(1, len(infos) + 1)
    np.testing.assert_allclose([i["beam_on_s"] for i in infos], 0.1 * n)
    np.testing.assert_allclose([i["air_kerma_mgy"] for i in infos], 0.15 * n)
    np.testing.assert_allclose([i["kap_gycm2"] for i in infos], 0.02 * n)
    assert all(image.shape == (32, 32) for _, image, _ in result.frames)
    assert asked == [synthetic_patient] and result.surfaces == {"bone": ("mesh", "bone")}


def test_a_file_recording_more_frames_than_the_replay_renders_says_so(
    attempt_file, synthetic_patient
):
    recorded = [e for e in read_attempt(attempt_file).events if e["kind"] == "frame"]
    edited = attempt_file.with_name("edited.jsonl")
    lines = attempt_file.read_text(encoding="utf-8").splitlines(keepends=True)
    last_frame = max(i for i, line in enumerate(lines) if '"kind":"frame"' in line)
    lines.insert(last_frame + 1, lines[last_frame])  # one frame event more than was rendered
    edited.write_text("".join(lines), encoding="utf-8")
    result = replay_frames(
        edited,
        patient=synthetic_patient,
        renderer_factory=lambda patient, model: StandInRenderer(patient),
    )
    assert len(result.frames) == len(recorded)
    assert result.problem == (
        f"the replay rendered {len(recorded)} images but the attempt file records "
        f"{len(recorded) + 1} frames"
    )
    assert result.surfaces == {}  # no surfaces asked for
