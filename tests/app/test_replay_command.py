"""``fluorosim replay``: scripted and recorded attempts scored headlessly, text and JSON output,
clear messages for unusable files. The patient is the synthetic test patient and the renderer a
stand-in (both injected by monkeypatching the factories; the product uses the real ones)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from fluorosim.app import cli
from fluorosim.scenarios import patients, recording
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.patients import patient_version
from fluorosim.scenarios.scripts import expert_script, failure_script
from tests.scenarios.conftest import StandInRenderer
from tests.scenarios.synthetic import build_synthetic_patient

synthetic = functools.lru_cache(maxsize=1)(build_synthetic_patient)


@pytest.fixture
def injected(monkeypatch):
    """Replay builds the synthetic patient and renders with the stand-in."""
    patient = synthetic()
    monkeypatch.setattr(
        patients, "patient_for", lambda spec, overrides=None, cache_dir=None: patient
    )
    monkeypatch.setattr(recording, "default_renderer", lambda p, model: StandInRenderer(p))
    return patient


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_expert_script_passes_and_prints_a_plain_report(tmp_path, injected, capsys):
    script = expert_script(load_shipped("sij-lateral"), injected)
    code = cli.main(["replay", str(write(tmp_path, "expert.json", script))])
    out = capsys.readouterr().out
    assert code == 0
    assert "PASSED" in out and "pass mark 58 %" in out
    assert "implant_spacing_mm:" in out and "/ ok" in out


def test_json_report_has_the_contract_fields(tmp_path, injected, capsys):
    scenario = load_shipped("sij-lateral")
    script = failure_script(scenario, injected, "foraminal_breach")
    code = cli.main(["replay", "--json", str(write(tmp_path, "breach.json", script))])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["passed"] is False and 0.0 <= report["score"] <= 100.0
    for metric in report["metrics"].values():
        assert {"value", "unit", "reference", "passed"} <= set(metric)
    breach = next(b for b in report["breaches"] if b["label"] == "root_S1_left")
    assert {"structure", "depth_mm", "t_s", "shot"} <= set(breach)
    assert breach["structure"] == "S1 nerve root in its foramen"
    assert any(e["kind"] == "shot" for e in report["events"])
    assert any("S1 nerve root" in f for f in report["findings"])


def test_recorded_attempt_replays_to_the_recorded_report(tmp_path, injected, capsys):
    from fluorosim.scenarios.scripted import parse_script, run_actions
    from fluorosim.scenarios.session import Session

    scenario = load_shipped("teld-l4l5")
    parsed = parse_script(failure_script(scenario, injected, "root_contact"))
    writer = recording.AttemptWriter(tmp_path / "a.jsonl", clock=lambda: 1.79e9)
    session = Session(
        scenario,
        injected,
        StandInRenderer(injected),
        None,
        lambda: 1.79e9,
        np.random.default_rng(3),
        recorder=writer,
    )
    original = run_actions(session, parsed.actions)
    code = cli.main(["replay", "--json", str(tmp_path / "a.jsonl")])
    assert code == 1
    assert json.loads(capsys.readouterr().out) == json.loads(original.to_json_text())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\xff garbage", "not a text file"),
        (b"{not json", "not valid JSON (line 1"),
        (
            b'{"scenario": "sij-lateral", "steps": [{"t_s": 0, "shot": 1}, {"t_s": -1, "shot": 1}]}',
            "steps[1].t_s",
        ),
        (
            b'{"scenario": "sij-lateral", "steps": [{"t_s": 0, "dance": 1}]}',
            "unknown action 'dance'",
        ),
        (
            b'{"scenario": "sij-lateral", "steps": [{"t_s": 0, "instrument": "guide_pin", "tip_mm": [1, 2], "direction": [0, 0, 1]}]}',
            "tip_mm: expected three",
        ),
        (
            b'{"scenario": "no-such-scenario", "steps": [{"t_s": 0, "shot": 1}]}',
            "unknown scenario id",
        ),
        (b'{"format": "fluorosim-attempt", "version": 9}\n', "version: expected 1"),
    ],
)
def test_unusable_files_give_a_message_not_a_traceback(
    tmp_path, injected, capsys, content, expected
):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code = cli.main(["replay", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "Traceback" not in err


def test_missing_file_and_no_file(tmp_path, capsys):
    assert cli.main(["replay", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["replay"]) == 2


def test_make_script_prints_a_runnable_script(tmp_path, injected, capsys):
    assert cli.main(["replay", "--make-script", "ield-l5s1", "--failure", "wrong_level"]) == 0
    script = json.loads(capsys.readouterr().out)
    assert script["scenario"] == "ield-l5s1"
    code = cli.main(["replay", str(write(tmp_path, "s.json", script))])
    assert code == 1
    assert "Wrong level" in capsys.readouterr().out


def _recorded(tmp_path, patient, edit=None):
    """A recorded drill attempt on ``patient``; ``edit(header)`` changes its header line."""
    from fluorosim.scenarios.scripted import parse_script, run_actions
    from fluorosim.scenarios.session import Session

    scenario = load_shipped("drill-inlet")
    parsed = parse_script(expert_script(scenario, patient))
    path = tmp_path / "a.jsonl"
    writer = recording.AttemptWriter(path, clock=lambda: 1.79e9)
    session = Session(
        scenario,
        patient,
        StandInRenderer(patient),
        None,
        lambda: 1.79e9,
        np.random.default_rng(3),
        recorder=writer,
    )
    run_actions(session, parsed.actions)
    if edit is not None:
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        edit(header)
        path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return path


def test_replay_on_another_patient_version_says_so_with_both_versions(tmp_path, injected, capsys):
    current = patient_version(injected)
    path = _recorded(tmp_path, injected, lambda h: h.update(patient_version="2.0+0123456789ab"))
    assert cli.main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(
        "WARNING: this attempt was recorded on patient version 2.0+0123456789ab"
    )
    assert f"replayed on {current}" in first
    assert cli.main(["replay", "--json", str(path)]) == 0
    captured = capsys.readouterr()
    check = json.loads(captured.out)["patient_check"]
    assert check == {
        "recorded_version": "2.0+0123456789ab",
        "replay_version": current,
        "same_patient": False,
        "warning": check["warning"],
    }
    assert "2.0+0123456789ab" in check["warning"] and "2.0+0123456789ab" in captured.err


def test_replay_of_a_recording_without_a_version_warns(tmp_path, injected, capsys):
    path = _recorded(tmp_path, injected, lambda h: h.pop("patient_version"))
    assert cli.main(["replay", str(path)]) == 0
    assert "recorded without a patient version" in capsys.readouterr().out.splitlines()[0]


def test_same_version_replays_without_a_warning(tmp_path, injected, capsys):
    path = _recorded(tmp_path, injected)
    header = json.loads(path.read_text().splitlines()[0])
    assert header["patient_version"] == patient_version(injected)
    assert cli.main(["replay", str(path)]) == 0
    assert "WARNING" not in capsys.readouterr().out
