"""Crash safety: a process killed during an attempt leaves a journal that recovery records as interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from fluorosim.scenarios.records import journal
from fluorosim.scenarios.records.database import RecordStore

pytestmark = pytest.mark.slow

ATTEMPT_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    import numpy as np
    from fluorosim.models.phantom import PatientParameters, load_or_build_patient
    from fluorosim.scenarios.commands import MoveCArm, Shot, InstrumentPose
    from fluorosim.scenarios.loader import load_shipped
    from fluorosim.scenarios.recording import AttemptWriter
    from fluorosim.scenarios.records import journal
    from fluorosim.scenarios.session import Session

    directory = Path(sys.argv[1])
    scenario = load_shipped("teld-l4l5")
    patient = load_or_build_patient(PatientParameters(**dict(scenario.patient.parameters)))
    path = directory / "attempt.jsonl"
    journal.begin(path, "t-crash", scenario.id, "learning")
    writer = AttemptWriter(path, clock=time.monotonic, patient_parameters=dict(scenario.patient.parameters))
    session = Session(scenario, patient, None, None, time.time, np.random.default_rng(7), recorder=writer)
    session.command(MoveCArm(view="ap"))
    session.step(0.5)
    session.command(Shot())
    tip = patient.landmark("kambin_L4_L5_left_center") + np.array([60.0, 40.0, 0.0])
    session.command(InstrumentPose("jamshidi_needle", tuple(tip), (-0.8, -0.6, 0.0)))
    time.sleep(1.1)  # more than a wall-clock second: the next tick flushes what came before
    session.step(1.5)
    session.command(Shot())
    print("ready", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # a crash: no finish, no report, no clean close
    """
)


def test_killed_attempt_is_recovered_as_interrupted(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", ATTEMPT_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert "ready" in result.stdout
    lines = (tmp_path / "attempt.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["format"] == "fluorosim-attempt"
    recorded_shots = [line for line in lines if '"kind":"shot"' in line]
    assert len(recorded_shots) >= 1  # the first shot, more than a second before the crash, survived

    entries, problems = journal.interrupted_attempts(tmp_path)
    assert problems == [] and [e.trainee_id for e in entries] == ["t-crash"]
    with RecordStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        attempt_id = journal.recover(store, entries[0])
        attempt = store.attempts("t-crash")[0]
        assert attempt.id == attempt_id and attempt.status == "interrupted"
        assert attempt.passed is None
        assert any("interrupted" in finding for finding in attempt.findings)
        assert store.verify().ok
    assert journal.interrupted_attempts(tmp_path) == ([], [])  # offered once, not again


def test_unreadable_journal_entry_is_reported(tmp_path):
    (tmp_path / ("x.jsonl" + journal.SIDECAR_SUFFIX)).write_text("{not json")
    entries, problems = journal.interrupted_attempts(tmp_path)
    assert entries == [] and "unreadable journal entry" in problems[0]


def test_missing_attempt_file_is_still_recorded(tmp_path):
    entry = journal.begin(tmp_path / "gone.jsonl", "t-9", "sij-lateral", "exam")
    with RecordStore.open(f"sqlite:///{tmp_path / 'r.sqlite'}") as store:
        journal.recover(store, entry)
        attempt = store.attempts("t-9")[0]
        assert attempt.status == "interrupted" and "missing" in attempt.findings[0]
