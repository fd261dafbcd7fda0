"""The recovery offer at start: journaled attempts that never reached the records (a crash) are
offered in a non-modal banner and, on request, recorded as "interrupted" off the GUI thread;
unreadable journal entries are listed, never a crash. The trainee window carries the banner and the
File → Instructor review… action.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import QInputDialog, QMessageBox, QWidget

from fluorosim.app.gui import RecoveryOffer, offer_recovery
from fluorosim.scenarios.recording import read_attempt, replay_attempt
from fluorosim.scenarios.records import journal
from fluorosim.scenarios.records.database import RecordStore
from tests.app.test_review import write_attempt
from tests.scenarios.synthetic import build_synthetic_patient


@pytest.fixture(scope="module")
def synthetic():
    return build_synthetic_patient()


@pytest.fixture
def crashed(tmp_path, synthetic):
    """An attempt journaled and cut off mid-way (commands written, no report), as after a crash."""
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    path = attempts / "attempt-1.jsonl"
    journal.begin(path, "t-crash", "sij-lateral", "learning", "2026-03-01T09:00:00+00:00")
    write_attempt(path, synthetic, synthetic.landmark("sij_center_left"), None, finish=False)
    assert read_attempt(path).interrupted
    return attempts


def synthetic_replay(patient):
    return lambda path: replay_attempt(
        path, patient=patient, renderer_factory=lambda p, model: None
    ).as_json()


def test_banner_recovers_a_journaled_attempt(qtbot, crashed, tmp_path, synthetic):
    (crashed / ("other.jsonl" + journal.SIDECAR_SUFFIX)).write_text("{torn")
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    parent = QWidget()
    qtbot.addWidget(parent)
    offer = RecoveryOffer(crashed, url, replay=synthetic_replay(synthetic), parent=parent)
    assert not offer.isHidden()
    text = offer.label.text()
    assert text.startswith(
        "1 interrupted attempt(s) found — add them to the records as interrupted"
    )
    assert "t-crash / sij-lateral" in text
    assert "other.jsonl.journal.json: unreadable journal entry" in text
    assert offer.recover_button.isEnabled()

    with qtbot.waitSignal(offer.recovered, timeout=120_000) as result:
        qtbot.mouseClick(offer.recover_button, Qt.MouseButton.LeftButton)
    done, problems = result.args
    assert [name for name, _ in done] == ["attempt-1.jsonl"] and problems == []
    assert offer.label.text().startswith("Recovered 1 interrupted attempt(s) into the records")
    assert "unreadable journal entry" in offer.label.text()  # still listed, left in place
    assert offer.recover_button.isHidden()

    with RecordStore.open(url) as store:
        attempts = store.attempts("t-crash")
        assert [(a.id, a.status, a.passed) for a in attempts] == [(done[0][1], "interrupted", None)]
        assert attempts[0].attempt_file == str(crashed / "attempt-1.jsonl")
        assert any("interrupted" in finding for finding in attempts[0].findings)
        assert "shots" in attempts[0].metrics  # scored as it stood, from the replayed commands
        assert store.verify().ok
    entries, broken = journal.interrupted_attempts(crashed)
    assert entries == [] and len(broken) == 1  # offered once; the torn entry is not deleted


def test_nothing_interrupted_means_no_banner(qtbot, tmp_path):
    parent = QWidget()
    qtbot.addWidget(parent)
    offer = RecoveryOffer(tmp_path / "none", f"sqlite:///{tmp_path / 'r.sqlite'}", parent=parent)
    assert offer.isHidden() and offer.entries == [] and offer.problems == []


def test_trainee_window_shows_the_banner_and_the_review_action(
    qtbot, crashed, tmp_path, monkeypatch
):
    from fluorosim.app.controller import SessionController
    from fluorosim.app.main_window import MainWindow
    from fluorosim.app.review_window import ReviewWindow

    window = MainWindow(
        SessionController(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    )
    qtbot.addWidget(window)
    window.show()
    offer = offer_recovery(window, crashed, f"sqlite:///{tmp_path / 'records.sqlite'}")
    assert offer is not None and offer.isVisible()
    assert window.centralWidget().layout().itemAt(0).widget() is offer
    assert offer_recovery(window, Path(tmp_path / "empty"), "sqlite:///unused") is None
    file_menu = window.menuBar().actions()[0].menu()
    assert "Instructor review…" in [action.text() for action in file_menu.actions()]

    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    monkeypatch.setenv("FLUOROSIM_DB_URL", url)
    with RecordStore.open(url) as store:
        store.create_instructor("dr-menu", "Dr Menu", "correct horse")
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    # a wrong passphrase is refused with a message and opens nothing
    answers = iter([("dr-menu", True), ("wrong", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: next(answers))
    window.review_action.trigger()
    assert getattr(window, "review_window", None) is None
    assert warnings and "Not signed in" in warnings[-1]
    # a trainee's ID never acts as an instructor
    answers = iter([("t-1", True), ("anything", True)])
    window.review_action.trigger()
    assert getattr(window, "review_window", None) is None and len(warnings) == 2
    answers = iter([("dr-menu", True), ("correct horse", True)])
    window.review_action.trigger()
    review = window.review_window
    assert isinstance(review, ReviewWindow) and review.isVisible()
    assert review.instructor.id == "dr-menu" and review.instructor.role == "instructor"
    review.close()
    window.close()
