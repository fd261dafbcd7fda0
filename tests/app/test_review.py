"""The instructor's review window driven by qtbot: pick a trainee, open an attempt, replay it on the
timeline (jump to a shot, play), read its events and instrument path, sign in with a passphrase,
sign off (a failed attempt only with a comment and a confirmation; a later decision supersedes),
change the CUSUM settings, see the pass mark (or the method's refusal) and write the credentialing report.

Attempt files are real: short scripted attempts run through the headless Session with an
AttemptWriter. Most tests use the small synthetic patient and the scenario tests' stand-in renderer;
one (slow) test replays through the real FluoroRenderer on the default patient.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QInputDialog, QLineEdit, QMessageBox

from fluorosim.app.review_window import (
    ATTEMPT_COLUMNS,
    ReviewWindow,
    attempt_metrics_png,
    attempt_timeline,
    ensure_instructor,
    instrument_path,
    replay_frames,
)
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.recording import AttemptWriter, read_attempt
from fluorosim.scenarios.records import identity
from fluorosim.scenarios.records.cusum import CusumParameters
from fluorosim.scenarios.records.database import Actor, RecordStore, SignedInInstructor
from fluorosim.scenarios.scripted import parse_script, run_actions
from fluorosim.scenarios.session import Session
from tests.scenarios.conftest import StandInRenderer
from tests.scenarios.synthetic import build_synthetic_patient

START_S = 1_790_000_000.0
INSTRUCTOR = Actor("dr-ward", "instructor")
PASSPHRASE = "inlet-outlet-lateral"


@pytest.fixture(autouse=True)
def quick_scrypt(monkeypatch):
    """Cheaper scrypt for the accounts made here (its parameters are stored with each hash)."""
    monkeypatch.setattr(identity, "SCRYPT_LOG2_N", 10)
    monkeypatch.setattr(identity, "SCRYPT_P", 1)


def script(tip: np.ndarray) -> dict:
    """A short SI-joint attempt: lateral shot, pin to ``tip`` from the left, shot, inlet fluoro."""
    tip = np.asarray(tip, float)
    return {
        "scenario": "sij-lateral",
        "patient": {"seed": 0},
        "steps": [
            {"t_s": 0.0, "carm": {"view": "lateral"}},
            {"t_s": 1.0, "shot": 1},
            {
                "t_s": 2.0,
                "instrument": "guide_pin",
                "tip_mm": (tip + [60.0, 0.0, 0.0]).tolist(),
                "direction": [-1.0, 0.0, 0.0],
            },
            {
                "t_s": 3.0,
                "instrument": "guide_pin",
                "tip_mm": tip.tolist(),
                "direction": [-1, 0, 0],
            },
            {"t_s": 4.0, "shot": 1},
            {"t_s": 5.0, "carm": {"view": "inlet"}},
            {"t_s": 6.0, "pedal": "on"},
            {"t_s": 6.6, "pedal": "off"},
            {"t_s": 8.0, "finish": True},
        ],
    }


def write_attempt(
    path: Path, patient, tip, renderer=None, patient_parameters=None, finish=True
) -> dict | None:
    """Run the scripted attempt through a Session with an AttemptWriter; the report JSON."""
    parsed = parse_script(script(tip))
    steps = parsed.actions if finish else parsed.actions[:4]
    writer = AttemptWriter(
        path, clock=lambda: START_S, patient_parameters=patient_parameters or {"seed": 0}
    )
    session = Session(
        load_shipped("sij-lateral"),
        patient,
        renderer,
        None,
        lambda: START_S,
        np.random.default_rng(3),
        recorder=writer,
    )
    if not finish:  # an attempt still running: commands written, no report
        for t_s, command in steps:
            session.step(max(0.0, t_s - session.t_s))
            session.command(command)
        writer.close()
        return None
    report = run_actions(session, steps)
    writer.close()
    return report.as_json()


def root_tip(patient) -> np.ndarray:
    """A point inside the left S1 root (a breach when the pin tip is there)."""
    voxels = np.argwhere(patient.labels == patient.label_value("root_S1_left"))
    return (patient.lps_from_voxel @ np.r_[voxels[len(voxels) // 2], 1.0])[:3]


@pytest.fixture(scope="module")
def synthetic():
    return build_synthetic_patient()


def stand_in_replayer(patient):
    return lambda attempt_file: replay_frames(
        attempt_file, patient=patient, renderer_factory=lambda p, model: StandInRenderer(p)
    )


def sample_report(score: float, passed: bool) -> dict:
    return {
        "score": score,
        "passed": passed,
        "metrics": {"shots": {"value": 12, "unit": "", "reference": "<= 30", "passed": True}},
        "findings": [f"score {score}"],
    }


@pytest.fixture
def records(tmp_path, synthetic):
    """A records DB: cohort c1 with trainee t-1 (two real attempts) and t-2; an instructor."""
    store = RecordStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}")
    store.add_cohort("c1", "Spring cohort")
    store.add_trainee("t-1", "Ada Trainee", "c1")
    store.add_trainee("t-2", "Ben Trainee", "c1")
    store.instructor = store.create_instructor(INSTRUCTOR.id, "Dr Ward", PASSPHRASE)
    files = []
    for name, tip in (
        ("near", synthetic.landmark("sij_center_left")),
        ("root", root_tip(synthetic)),
    ):
        path = tmp_path / f"{name}.jsonl"
        report = write_attempt(path, synthetic, tip, StandInRenderer(synthetic))
        store.record_attempt(
            "t-1",
            "sij-lateral",
            report,
            "2026-01-01T10:00:00+00:00",
            "2026-01-01T10:05:00+00:00",
            path,
        )
        files.append(path)
    store.record_attempt("t-2", "sij-lateral", sample_report(80, True), "2026-01-02T10:00:00+00:00")
    store.files = files
    yield store
    store.close()


@pytest.fixture
def review(qtbot, records, synthetic):
    window = ReviewWindow(records, records.instructor, replayer=stand_in_replayer(synthetic))
    qtbot.addWidget(window)
    window.show()
    yield window
    qtbot.waitUntil(lambda: window.replaying_attempt is None, timeout=60_000)
    window.close()


def select_trainee(window, trainee_id):
    window.trainee.setCurrentIndex(window.trainee.findData(trainee_id))


def open_row(qtbot, window, row):
    window.attempts.selectRow(row)
    qtbot.waitUntil(lambda: window.replaying_attempt is None, timeout=60_000)


def test_pick_trainee_open_replay_and_sign_off(qtbot, review, records):
    assert review.cohort.itemText(1) == "Spring cohort"
    review.cohort.setCurrentIndex(1)
    assert [review.trainee.itemData(i) for i in range(review.trainee.count())] == ["t-1", "t-2"]
    assert review.cohort_table.rowCount() == 2
    select_trainee(review, "t-1")
    assert review.attempts.rowCount() == 2
    assert (
        review.attempts.item(1, ATTEMPT_COLUMNS.index("score")).text()
        == f"{records.attempts('t-1')[1].score:.1f}"
    )

    open_row(qtbot, review, 1)  # the attempt whose pin ends in the S1 root
    recorded = read_attempt(records.files[1])
    frame_events = [e for e in recorded.events if e["kind"] == "frame"]
    assert len(review.replay.frames) == len(frame_events) == 7
    assert review.replay.shot_jump.count() == 3  # two single shots and one fluoro run
    assert "7 images in 3 shots" in review.replay.status.text()

    review.replay.jump_to_shot(1)  # shot 2: the lateral after the pin went in
    assert review.replay.slider.value() == 1
    assert review.replay.monitor.overlay.shot_number == 2
    image = review.replay.monitor.image
    assert image is not None and image.std() > 5
    assert np.array_equal(image, review.replay.frames[1][1])

    review.replay.slider.setValue(0)
    qtbot.mouseClick(review.replay.play_button, Qt.MouseButton.LeftButton)
    assert review.replay.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: review.replay.slider.value() >= 2, timeout=10_000)
    qtbot.mouseClick(review.replay.play_button, Qt.MouseButton.LeftButton)
    assert review.replay.play_button.text() == "Play"

    events = [review.events_table.item(r, 1).text() for r in range(review.events_table.rowCount())]
    assert events.count("shot") == 3 and "breach" in events
    breach_row = events.index("breach")
    assert "S1 nerve root" in review.events_table.item(breach_row, 2).text()
    assert float(review.events_table.item(breach_row, 0).text()) == pytest.approx(3.0)
    assert not review.metrics_image.pixmap().isNull()  # shots and images against time
    review.show_event(breach_row)  # the breach at 3 s: the next image is shot 2 at 4 s
    assert review.tabs.currentWidget() is review.replay
    assert review.replay.slider.value() == 1 and review.replay.monitor.overlay.shot_number == 2
    assert len(review.path_points) == 2  # the pin's tip path in the 3D tab, with the surfaces
    assert review.path_mesh.n_points == 2 and review.scene3d.surface_names

    review.comment.setText("Pin in the S1 foramen: repeat the inlet/outlet check.")
    qtbot.mouseClick(review.practice_button, Qt.MouseButton.LeftButton)
    assert "needs practice recorded by dr-ward" in review.sign_result.text()
    assert "repeat the inlet/outlet check" in review.detail.toPlainText()
    signoffs = records.attempts("t-1")[1].signoffs
    assert [(s["instructor_id"], s["decision"]) for s in signoffs] == [
        ("dr-ward", "needs_practice")
    ]
    assert "repeat the inlet/outlet check" in signoffs[0]["comment"]
    assert records.verify().ok
    assert review.ledger_label.text().startswith("ledger verified")


def test_trainee_cannot_sign_off(qtbot, records, synthetic):
    window = ReviewWindow(records, Actor("t-1", "trainee"), replayer=stand_in_replayer(synthetic))
    qtbot.addWidget(window)
    select_trainee(window, "t-1")
    open_row(qtbot, window, 0)
    window.comment.setText("I approve myself")
    qtbot.mouseClick(window.approve_button, Qt.MouseButton.LeftButton)
    assert (
        "only an instructor signed in with their passphrase can sign off"
        in window.sign_result.text()
    )
    assert records.attempts("t-1")[0].signoffs == []
    window.close()


def test_cusum_settings_change_the_chart(qtbot, review, records):
    select_trainee(review, "t-1")
    default = CusumParameters()
    assert review.current_curve.cusum.h1 == pytest.approx(default.h1)
    review.cusum_spins["p1"].setValue(0.30)
    review.cusum_spins["alpha"].setValue(0.05)
    qtbot.mouseClick(review.apply_cusum_button, Qt.MouseButton.LeftButton)
    changed = CusumParameters(p0=0.10, p1=0.30, alpha=0.05, beta=0.10)
    assert review.current_curve.cusum.h1 == pytest.approx(changed.h1)
    assert review.current_curve.cusum.h1 != pytest.approx(default.h1)
    assert f"h1 = {changed.h1:+.2f}" in review.cusum_label.text()
    assert records.programme_settings("default")["cusum_p1"] == pytest.approx(0.30)
    # two failed attempts: each failure adds 1 − s
    assert review.current_curve.cusum.values == pytest.approx([1 - changed.s, 2 * (1 - changed.s)])
    assert records.verify().ok

    review.cusum_spins["p0"].setValue(0.5)  # p0 ≥ p1 is refused, nothing stored
    qtbot.mouseClick(review.apply_cusum_button, Qt.MouseButton.LeftButton)
    assert "Not applied" in review.settings_result.text()
    assert records.programme_settings("default")["cusum_p0"] == pytest.approx(0.10)


def test_pass_mark_refused_then_set_by_contrasting_groups(qtbot, review, records):
    assert "needs at least 3 expert and 3 novice attempts (got 0 and" in (
        review.pass_mark_label.text()
    )
    records.add_trainee("x-1", "Expert One", "c1", is_expert=True)
    records.add_trainee("n-1", "Novice One", "c1")
    for score in (70, 76, 82):
        records.record_attempt("x-1", "sij-lateral", sample_report(score, True), "2026-01-03")
    for score in (25, 30, 35):
        records.record_attempt("n-1", "sij-lateral", sample_report(score, False), "2026-01-03")
    qtbot.mouseClick(review.refresh_button, Qt.MouseButton.LeftButton)
    assert review.pass_mark is not None
    # equal SDs (6 and 5 … the method's crossing lies between the means)
    assert 35 < review.pass_mark.score < 70
    assert review.pass_mark_label.text().startswith(f"Pass mark {review.pass_mark.score:.1f}")
    expert_rows = [r for r in range(review.cohort_table.rowCount())]
    names = [review.cohort_table.item(r, 0).text() for r in expert_rows]
    assert {"x-1", "n-1", "t-1", "t-2"} <= set(names)


def test_scenario_filter_and_report(qtbot, review, records, tmp_path):
    select_trainee(review, "t-1")
    records.record_attempt("t-1", "teld-l4l5", sample_report(90, True), "2026-01-04")
    qtbot.mouseClick(review.refresh_button, Qt.MouseButton.LeftButton)
    assert review.trainee.currentData() == "t-1"
    scenarios = [review.scenario_filter.itemData(i) for i in range(review.scenario_filter.count())]
    assert scenarios == [None, "sij-lateral", "teld-l4l5"]
    assert review.current_curve.attempts == 3
    review.scenario_filter.setCurrentIndex(2)
    assert review.attempts.rowCount() == 1 and review.current_curve.attempts == 1
    out = review.export_report(tmp_path / "report.pdf")
    assert out.read_bytes().startswith(b"%PDF")


def test_unreadable_attempt_file_is_named_not_raised(qtbot, review, records, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not an attempt\n")
    records.record_attempt(
        "t-2", "sij-lateral", sample_report(10, False), "2026-01-05", None, broken
    )
    select_trainee(review, "t-2")
    open_row(qtbot, review, 1)
    assert "broken.jsonl" in review.replay.status.text()
    assert review.replay.frames == [] and not review.replay.play_button.isEnabled()


def test_sign_in_needs_an_instructor_account_and_its_passphrase(qtbot, records, monkeypatch):
    """Issue #17: no more "register this ID as instructor?"; a trainee ID, an unknown ID and a wrong
    passphrase are refused with a message; the right passphrase signs in (asked without echo)."""
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warnings.append(text))
    assert ensure_instructor(records, "t-1", passphrase=PASSPHRASE) is None
    assert "'t-1' is a trainee" in warnings[-1] and "never act as an instructor" in warnings[-1]
    assert ensure_instructor(records, "dr-new", passphrase="anything-long") is None
    assert "'dr-new' is not an instructor" in warnings[-1]
    assert not records.query("SELECT 1 FROM instructors WHERE id = ?", ("dr-new",))
    assert ensure_instructor(records, INSTRUCTOR.id, passphrase="not-the-passphrase") is None
    assert "wrong passphrase for instructor 'dr-ward'" in warnings[-1]
    asked = []

    def get_text(parent, title, label, echo):
        asked.append((label, echo))
        return PASSPHRASE, True

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    actor = ensure_instructor(records, INSTRUCTOR.id)
    assert isinstance(actor, SignedInInstructor) and actor.id == INSTRUCTOR.id
    assert asked == [("Passphrase of instructor dr-ward:", QLineEdit.EchoMode.Password)]
    assert len(warnings) == 3


def test_failed_attempt_needs_comment_and_confirmation_and_a_later_decision_supersedes(
    qtbot, review, records, monkeypatch
):
    select_trainee(review, "t-1")
    failed = records.attempts("t-1")[1]
    assert failed.passed is False  # the pin in the S1 root
    open_row(qtbot, review, 1)
    qtbot.mouseClick(review.approve_button, Qt.MouseButton.LeftButton)
    assert "needs a comment" in review.sign_result.text()
    review.comment.setText("Root contact was a sensor glitch; confirmed on the cadaver lab.")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    qtbot.mouseClick(review.approve_button, Qt.MouseButton.LeftButton)
    assert "cancelled" in review.sign_result.text()
    assert records.attempts("t-1")[1].signoffs == []
    asked: list[str] = []

    def confirm(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", confirm)
    qtbot.mouseClick(review.approve_button, Qt.MouseButton.LeftButton)
    assert "FAILED" in asked[0] and f"Attempt {failed.id}" in asked[0]
    assert "approved recorded by dr-ward" in review.sign_result.text()
    review.comment.setText("On reflection: repeat under supervision.")
    qtbot.mouseClick(review.practice_button, Qt.MouseButton.LeftButton)
    assert "superseding the sign-off" in review.sign_result.text()
    signoffs = records.attempts("t-1")[1].signoffs
    assert [(s["decision"], s["confirmed_failed"]) for s in signoffs] == [
        ("approved", True),
        ("needs_practice", False),
    ]
    assert signoffs[0]["superseded_by"] == signoffs[1]["id"]
    assert records.attempts("t-1")[1].current_decision()["decision"] == "needs_practice"
    assert "(superseded)" in review.detail.toPlainText()
    assert "On reflection" in review.detail.toPlainText()
    result = records.verify()
    assert result.ok and result.signatures_checked == 3  # account + two sign-offs


def test_timeline_and_path_from_the_attempt_file(records):
    events = read_attempt(records.files[1]).events
    rows = attempt_timeline(events)
    assert [kind for _, kind, _ in rows if kind == "shot"] == ["shot"] * 3
    assert all(a[0] <= b[0] for a, b in zip(rows, rows[1:], strict=False))
    assert attempt_metrics_png(events).startswith(b"\x89PNG")
    path = instrument_path(events)
    assert path.shape == (2, 3)
    assert path[0] - path[1] == pytest.approx([60.0, 0.0, 0.0])


def test_run_review_needs_an_instructor(capsys):
    from fluorosim.app.cli import main

    assert main(["run", "--review"]) == 2
    assert "--review needs --instructor" in capsys.readouterr().err


@pytest.mark.slow
def test_replay_with_the_real_renderer_shows_the_shot(qtbot, tmp_path):
    """The default patient and the product FluoroRenderer: the replayed shot is a real image."""
    from fluorosim.models.phantom import PatientParameters, load_or_build_patient
    from fluorosim.render.renderer import FluoroRenderer

    scenario = load_shipped("sij-lateral")
    params = dict(scenario.patient.parameters)
    patient = load_or_build_patient(PatientParameters(**params))
    path = tmp_path / "real.jsonl"
    report = write_attempt(
        path,
        patient,
        patient.landmark("sij_center_left"),
        FluoroRenderer(patient, model="ii9"),
        patient_parameters=params,
    )
    with RecordStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        store.add_trainee("t-real", "Real Patient")
        instructor = store.create_instructor(INSTRUCTOR.id, "Dr Ward", PASSPHRASE)
        store.record_attempt(
            "t-real", "sij-lateral", report, "2026-01-01T10:00:00+00:00", None, path
        )
        window = ReviewWindow(
            store, instructor
        )  # default replayer: the header's patient, real renderer
        qtbot.addWidget(window)
        window.show()
        select_trainee(window, "t-real")
        window.attempts.selectRow(0)
        assert "Replaying attempt" in window.replay.status.text()
        qtbot.waitUntil(lambda: window.replaying_attempt is None, timeout=600_000)
        frame_events = [e for e in read_attempt(path).events if e["kind"] == "frame"]
        assert len(window.replay.frames) == len(frame_events) == 7
        window.replay.jump_to_shot(1)
        image = window.replay.monitor.image
        assert image is not None and image.shape == (512, 512)
        assert image.std() > 10, "the replayed fluoroscopy image is blank"
        assert window.replay.monitor.overlay.view_name == "lateral"
        window.close()
