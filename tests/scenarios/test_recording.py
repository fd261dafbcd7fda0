"""Recording: attempt files are written incrementally, read back (even after a crash) and replay
to the same frames and the same report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.recording import (
    AttemptFileError,
    AttemptWriter,
    read_attempt,
    replay_attempt,
)
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.scripts import expert_script, failure_script
from fluorosim.scenarios.session import Session
from tests.scenarios.conftest import StandInRenderer


class FakeClock:
    """Wall clock for the writer: advanced by hand."""

    def __init__(self):
        self.now = 1_790_000_000.0

    def __call__(self):
        return self.now


def record(tmp_path, patient, script, name="attempt.jsonl", seed=7):
    parsed = parse_script(script)
    scenario = load_shipped(parsed.scenario)
    clock = FakeClock()
    writer = AttemptWriter(tmp_path / name, clock=clock, patient_parameters={"seed": 0})
    renderer = StandInRenderer(patient)
    session = Session(
        scenario, patient, renderer, None, clock, np.random.default_rng(seed), recorder=writer
    )
    report = run_actions(session, parsed.actions)
    return tmp_path / name, report, renderer, writer


def test_replay_gives_the_identical_report_and_frames(tmp_path, synthetic_patient):
    scenario = load_shipped("sij-lateral")
    script = failure_script(scenario, synthetic_patient, "foraminal_breach")
    path, report, renderer, _ = record(tmp_path, synthetic_patient, script)
    attempt = read_attempt(path)
    assert not attempt.interrupted
    assert attempt.header["scenario"] == "sij-lateral"
    assert attempt.report == json.loads(report.to_json_text())
    replay_renderer = StandInRenderer(synthetic_patient)
    replayed = replay_attempt(path, patient=synthetic_patient, renderer=replay_renderer)
    assert replayed.to_json_text() == report.to_json_text()
    assert replay_renderer.calls == renderer.calls
    recorded_ids = [e["data"]["image_id"] for e in attempt.events if e["kind"] == "frame"]
    replayed_ids = [i for e in replayed.events if e["kind"] == "shot" for i in e["image_ids"]]
    assert recorded_ids == replayed_ids and len(set(recorded_ids)) > 1


def test_everything_is_in_the_file(tmp_path, synthetic_patient):
    scenario = load_shipped("teld-l4l5")
    path, report, _, _ = record(
        tmp_path, synthetic_patient, expert_script(scenario, synthetic_patient)
    )
    attempt = read_attempt(path)
    kinds = {e["kind"] for e in attempt.events}
    assert {"carm", "shot", "frame", "pose", "tissue", "step", "score"} <= kinds
    shots = [e for e in attempt.events if e["kind"] == "shot"]
    assert len(shots) == report.metrics["shots"].value
    assert all("orbital_deg" in s["data"]["joints"] for s in shots)
    assert "rng_state" in attempt.header and "scenario_toml" in attempt.header


def test_pedal_frames_follow_the_pulse_schedule_and_replay(tmp_path, synthetic_patient):
    script = {
        "scenario": "drill-inlet",
        "patient": {"seed": 0},
        "steps": [
            {"t_s": 0.0, "carm": {"angular_deg": -20.0}},
            {"t_s": 1.0, "pedal": "on"},
            {"t_s": 1.55, "carm": {"angular_deg": -24.0}},
            {"t_s": 2.0, "pedal": "off"},
            {"t_s": 3.0, "finish": True},
        ],
    }
    path, report, renderer, _ = record(tmp_path, synthetic_patient, script)
    # 8 pps from t = 1.0 up to 2.0: pulses at 1.0, 1.125, …, 2.0 → 9 frames, one shot
    assert len(renderer.calls) == 9
    assert report.metrics["shots"].value == 1
    assert report.metrics["beam_on_s"].value == pytest.approx(0.9)
    replayed = replay_attempt(
        path, patient=synthetic_patient, renderer=StandInRenderer(synthetic_patient)
    )
    assert replayed.to_json_text() == report.to_json_text()


def test_writer_flushes_within_a_second_and_fsyncs_on_step_change(tmp_path, synthetic_patient):
    scenario = load_shipped("sij-lateral")
    clock = FakeClock()
    writer = AttemptWriter(tmp_path / "live.jsonl", clock=clock)
    session = Session(
        scenario,
        synthetic_patient,
        StandInRenderer(synthetic_patient),
        None,
        clock,
        np.random.default_rng(0),
        recorder=writer,
    )
    syncs_after_header = writer.syncs
    on_disk = lambda: (tmp_path / "live.jsonl").read_text().count("\n")  # noqa: E731
    assert on_disk() == 1  # the header is synced at once
    from fluorosim.scenarios.commands import MoveCArm, NextStep, Shot

    session.command(MoveCArm(view="inlet"))
    session.command(Shot())
    assert on_disk() == 1  # buffered: less than a second has passed
    clock.now += 1.0
    session.command(Shot())
    flushed = on_disk()
    assert flushed > 1  # the first write after a second flushed everything before it
    clock.now += 1.0
    session.step(0.05)  # the GUI timer: pending lines are flushed once a second has passed
    assert on_disk() == writer.lines
    session.command(NextStep())
    assert writer.syncs == syncs_after_header + 1
    writer.close()


def test_a_crash_loses_only_the_cut_line_and_the_attempt_still_scores(tmp_path, synthetic_patient):
    scenario = load_shipped("ield-l5s1")
    path, report, _, _ = record(
        tmp_path, synthetic_patient, expert_script(scenario, synthetic_patient)
    )
    lines = path.read_text().splitlines(keepends=True)
    # crash: the report never written, the last event line cut in half
    cut = tmp_path / "crashed.jsonl"
    cut.write_text("".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])
    attempt = read_attempt(cut)
    assert attempt.interrupted and "cut off" in attempt.note
    replayed = replay_attempt(
        cut, patient=synthetic_patient, renderer=StandInRenderer(synthetic_patient)
    )
    assert any("interrupted" in f for f in replayed.findings)
    assert replayed.metrics["shots"].value == report.metrics["shots"].value


def test_damaged_files_name_the_file_and_line(tmp_path, synthetic_patient):
    scenario = load_shipped("drill-inlet")
    path, _, _, _ = record(tmp_path, synthetic_patient, expert_script(scenario, synthetic_patient))
    lines = path.read_text().splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(lines[0] + "{not json\n" + "".join(lines[1:]))
    with pytest.raises(AttemptFileError, match=r"broken.jsonl: line 2"):
        read_attempt(broken)
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x00\xff\xfe garbage\n")
    with pytest.raises(AttemptFileError, match=r"garbage.jsonl: line 1: not a fluorosim attempt"):
        read_attempt(garbage)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(AttemptFileError, match="empty file"):
        read_attempt(empty)


def _copy(patient, **changes):
    """The same volume as another Patient with other parameters/source."""
    from fluorosim.models.patient import Patient

    return Patient(
        patient.hu,
        patient.labels,
        patient.lps_from_voxel,
        dict(patient.label_table),
        dict(patient.landmarks),
        parameters=changes.get("parameters", {}),
        source=changes.get("source", "generated"),
    )


def test_header_records_the_generator_version_and_replay_checks_it(tmp_path, synthetic_patient):
    from fluorosim.scenarios.recording import check_patient, replay_attempt_checked

    generated = _copy(synthetic_patient, parameters={"seed": 0, "generator_version": "3.1+aaaa"})
    script = expert_script(load_shipped("drill-inlet"), generated)
    path, report, _, _ = record(tmp_path, generated, script)
    header = read_attempt(path).header
    assert header["patient_version"] == "3.1+aaaa"
    replayed, check = replay_attempt_checked(
        path, patient=generated, renderer=StandInRenderer(generated)
    )
    assert check.same and check.message == "" and replayed.to_json_text() == report.to_json_text()
    newer = _copy(synthetic_patient, parameters={"seed": 0, "generator_version": "3.2+bbbb"})
    check = check_patient(header, newer)
    assert not check.same and check.recorded_version == "3.1+aaaa"
    assert "recorded on patient version 3.1+aaaa but is replayed on 3.2+bbbb" in check.message


def test_an_imported_ct_is_recorded_by_name_and_volume_digest(tmp_path, synthetic_patient):
    from fluorosim.models.io.ct_import import volume_digest
    from fluorosim.scenarios.recording import check_patient

    digest = volume_digest(
        synthetic_patient.hu, synthetic_patient.labels, synthetic_patient.lps_from_voxel
    )
    imported = _copy(
        synthetic_patient,
        parameters={"patient_name": "lab-ct-3", "ct_digest": digest, "imported_from": "/x"},
        source="imported:/x",
    )
    script = expert_script(load_shipped("drill-inlet"), imported)
    parsed = parse_script(script)
    writer = AttemptWriter(tmp_path / "ct.jsonl", clock=FakeClock())
    session = Session(
        load_shipped("drill-inlet"),
        imported,
        StandInRenderer(imported),
        None,
        FakeClock(),
        np.random.default_rng(1),
        recorder=writer,
    )
    run_actions(session, parsed.actions)
    header = read_attempt(tmp_path / "ct.jsonl").header
    assert header["patient"] == {"ct": "lab-ct-3"} and header["patient_version"] == digest
    edited = synthetic_patient.hu.copy()
    edited[0, 0, 0] += 1  # one voxel changed: another CT
    other = _copy(imported, parameters={}, source="imported:/y")
    other.hu = edited
    check = check_patient(header, other)
    assert not check.same and digest in check.message and check.replay_version != digest
