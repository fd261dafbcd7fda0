"""Start the simulator window: the QApplication, sign-in, the main window and the session controller;
the offer to recover interrupted attempts at start; and the instructor's review mode on its own.

Kept apart from :mod:`app.cli` so that every other subcommand runs without importing Qt.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QSettings, pyqtSignal
from PyQt6.QtWidgets import QApplication, QDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from fluorosim.app import __version__
from fluorosim.app.controller import SessionController
from fluorosim.app.main_window import MainWindow
from fluorosim.app.widgets.signin import SignInChoice, SignInDialog
from fluorosim.scenarios.attempt_files import attempts_directory
from fluorosim.scenarios.records import journal
from fluorosim.scenarios.records.database import RecordsError, RecordStore, default_database_url

#: The ``procedure`` of the C-arm positioning drills (listed after the procedures at sign-in).
DRILL_PROCEDURE = "view_drill"

#: A recovery run's result: (attempt file name, attempt id) per attempt recorded, and the problems.
Recovered = tuple[list[tuple[str, int]], list[str]]


class RecoveryOffer(QFrame):
    """A non-modal banner: "N interrupted attempt(s) found — add them to the records as interrupted".

    The attempts journaled in ``attempts_dir`` that never reached the records (a crash or a power
    cut) are recovered on a worker thread, which opens its own connection to ``db_url`` (a database
    connection belongs to the thread that opened it). Unreadable journal entries are listed and
    left in place; nothing is deleted. ``replay(path) -> report dict`` scores an attempt (default:
    :func:`scenarios.records.journal.recover`'s own replay without images).
    """

    recovered = pyqtSignal(object, object)  # ([(attempt file, attempt id)], [problem text])

    def __init__(
        self,
        attempts_dir: Path,
        db_url: str,
        replay: Callable[[Path], dict[str, Any]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.attempts_dir = Path(attempts_dir)
        self.db_url = db_url
        self.replay = replay
        self.setStyleSheet("QFrame { background: #fff4e5; color: #7a4b00; border-radius: 4px; }")
        row = QHBoxLayout(self)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.recover_button = QPushButton("Add them to the records as interrupted")
        self.dismiss_button = QPushButton("Later")
        row.addWidget(self.label, 1)
        row.addWidget(self.recover_button)
        row.addWidget(self.dismiss_button)
        self.recover_button.clicked.connect(self.recover_all)
        self.dismiss_button.clicked.connect(self.hide)
        self.recovered.connect(self._show_result)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="recovery"
        )
        self.entries: list[journal.JournalEntry] = []
        self.problems: list[str] = []
        self.scan()

    def scan(self) -> bool:
        """Look for interrupted attempts; shows the banner when there are any (or broken entries)."""
        self.entries, self.problems = journal.interrupted_attempts(self.attempts_dir)
        lines = []
        if self.entries:
            who = ", ".join(
                f"{e.trainee_id} / {e.scenario_id} ({e.started_utc[:16]})" for e in self.entries
            )
            lines.append(
                f"{len(self.entries)} interrupted attempt(s) found — add them to the records as "
                f"interrupted: {who}."
            )
        if self.problems:
            lines.append("Unreadable journal entries (left in place): " + "; ".join(self.problems))
        self.label.setText("\n".join(lines))
        self.recover_button.setVisible(bool(self.entries))
        self.recover_button.setEnabled(bool(self.entries))
        self.setVisible(bool(lines))
        return bool(lines)

    def recover_all(self) -> None:
        """Record every interrupted attempt (off the GUI thread)."""
        if not self.entries:
            return
        self.recover_button.setEnabled(False)
        self.label.setText(f"Recovering {len(self.entries)} interrupted attempt(s)…")
        entries = list(self.entries)
        future = self.executor.submit(self._recover, entries)
        future.add_done_callback(self._hand_over)

    def _hand_over(self, future: concurrent.futures.Future[Recovered]) -> None:
        """Worker thread: pass the result to the GUI thread (queued signal)."""
        with contextlib.suppress(RuntimeError):  # the window was closed and deleted meanwhile
            self.recovered.emit(*future.result())

    def _recover(self, entries: list[journal.JournalEntry]) -> Recovered:
        done: list[tuple[str, int]] = []
        problems: list[str] = []
        try:
            store = RecordStore.open(self.db_url)
        except RecordsError as error:
            return done, [str(error)]
        try:
            for entry in entries:
                try:
                    done.append(
                        (entry.attempt_path.name, journal.recover(store, entry, self.replay))
                    )
                except Exception as error:  # one bad attempt must not stop the others
                    problems.append(f"{entry.attempt_path.name}: not recovered ({error})")
        finally:
            store.close()
        return done, problems

    def _show_result(self, done: list[tuple[str, int]], problems: list[str]) -> None:
        lines = []
        if done:
            ids = ", ".join(f"{name} → attempt {attempt_id}" for name, attempt_id in done)
            lines.append(f"Recovered {len(done)} interrupted attempt(s) into the records: {ids}.")
        lines += problems + self.problems
        self.label.setText("\n".join(lines) or "Nothing to recover.")
        self.recover_button.hide()
        self.dismiss_button.setText("Close")
        self.show()


def offer_recovery(window: MainWindow, attempts_dir: Path, db_url: str) -> RecoveryOffer | None:
    """Put the recovery banner at the top of the trainee window when anything was interrupted."""
    central = window.centralWidget()
    offer = RecoveryOffer(attempts_dir, db_url, parent=central)
    if not (offer.entries or offer.problems):
        offer.deleteLater()
        return None
    central.layout().insertWidget(0, offer)
    window.recovery_offer = offer
    return offer


def shipped_scenario_titles() -> tuple[dict[str, str], set[str]]:
    """Scenario id → title of every shipped scenario, procedures before drills (for the sign-in
    list), and the ids of the C-arm drills."""
    from fluorosim.scenarios.loader import load_shipped, shipped_scenarios

    titles: dict[str, str] = {}
    drills: set[str] = set()
    for scenario_id in shipped_scenarios():
        try:
            scenario = load_shipped(scenario_id)
        except Exception as error:  # a broken shipped file must not keep the others from the list
            print(f"fluorosim: skipping scenario {scenario_id}: {error}", file=sys.stderr)
            continue
        titles[scenario_id] = scenario.title
        if scenario.procedure == DRILL_PROCEDURE:
            drills.add(scenario_id)
    ordered = sorted(titles, key=lambda i: (i in drills, i))
    return {i: titles[i] for i in ordered}, drills


def last_choice(settings: QSettings) -> SignInChoice | None:
    """The sign-in remembered from the previous run."""
    value = settings.value("signin/last")
    try:
        trainee, scenario, mode, seed, random_patient = value
        return SignInChoice(
            str(trainee), str(scenario), str(mode), int(seed), str(random_patient).lower() == "true"
        )
    except (TypeError, ValueError):
        return None


def run_gui(
    device_url: str = "mouse",
    scenario_id: str | None = None,
    trainee: str | None = None,
    mode: str = "learning",
    seed: int = 0,
    quit_after_s: float | None = None,
    patient_ref: str | None = None,
) -> int:
    """Show sign-in (unless trainee and scenario are given), then the window; returns the exit code.

    ``quit_after_s`` makes a smoke run (the README's ``make run`` is tested this way): when the
    attempt has started it takes one single shot, prints what the live monitor shows, and quits
    that many seconds later.
    """
    app = _widget_application()
    app.setApplicationName("fluorosim")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("fluorosim")
    settings = QSettings("fluorosim", "fluorosim")
    controller = SessionController(device_url=device_url, patient_ref=patient_ref)
    window = MainWindow(controller, settings)
    window.show()  # maximised the first time; later as it was left (MainWindow._restore_layout)
    offer_recovery(window, attempts_directory(), default_database_url())
    titles, drills = shipped_scenario_titles()
    if trainee and scenario_id:
        choice = SignInChoice(trainee, scenario_id, mode, seed, False)
    else:
        dialog = SignInDialog(titles, last_choice(settings), window, drills)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            window.close()
            return 0
        choice = dialog.choice()
    window.new_attempt_action.triggered.connect(
        lambda: _sign_in_again(window, titles, drills, settings)
    )
    if quit_after_s is not None:
        _smoke_run(app, window, controller, quit_after_s)
    window.start_attempt(choice)
    return app.exec()


def _widget_application() -> QApplication:
    """The running QApplication, or a new one (windows need a QApplication, not a bare core one)."""
    app = QApplication.instance()
    if app is None:
        return QApplication(sys.argv)
    if not isinstance(app, QApplication):
        raise RuntimeError("fluorosim's window needs a QApplication, not a QCoreApplication")
    return app


def _smoke_run(
    app: QApplication, window: MainWindow, controller: SessionController, quit_after_s: float
) -> None:
    """Take one shot once the attempt has started, report it, then quit (see run_gui)."""
    from PyQt6.QtCore import QTimer

    def started(info: dict[str, Any]) -> None:
        print(
            f"fluorosim: attempt started: {info.get('title')} ({info.get('mode')} mode)", flush=True
        )
        controller.single_shot()
        QTimer.singleShot(int(quit_after_s * 1000), window.close)

    def shown(image: np.ndarray, info: dict[str, Any]) -> None:
        print(
            f"fluorosim: shot {info.get('shot')} shown, {image.shape[1]}x{image.shape[0]}, "
            f"grey mean {float(image.mean()):.1f}, std {float(image.std()):.1f}",
            flush=True,
        )

    attempt_started = False

    def on_started(info: dict[str, Any]) -> None:
        nonlocal attempt_started
        attempt_started = True
        started(info)

    def problem(message: str) -> None:
        print(f"fluorosim: {message}", flush=True)
        if not attempt_started:  # nothing to smoke-test: fail instead of waiting for a shot
            QTimer.singleShot(0, lambda: app.exit(1))

    window.ask_to_leave = lambda: True  # quitting the smoke run keeps its attempt as interrupted
    controller.scenario_loaded.connect(on_started)
    controller.frame_ready.connect(shown)
    controller.problem.connect(problem)
    app.setQuitOnLastWindowClosed(True)


def _sign_in_again(
    window: MainWindow, titles: dict[str, str], drills: set[str], settings: QSettings
) -> None:
    dialog = SignInDialog(titles, last_choice(settings), window, drills)
    if dialog.exec() == QDialog.DialogCode.Accepted:
        window.start_attempt(dialog.choice())


def run_review(instructor_id: str, db_url: str | None = None) -> int:
    """``fluorosim run --review``: the instructor's review window on the records database."""
    from fluorosim.app.review_window import ReviewWindow, ensure_instructor

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("fluorosim")
    app.setApplicationVersion(__version__)
    try:
        store = RecordStore.open(db_url)
    except RecordsError as error:
        print(f"fluorosim: {error}", file=sys.stderr)
        return 1
    actor = ensure_instructor(store, instructor_id)
    if actor is None:
        store.close()
        print(f"fluorosim: '{instructor_id}' was not signed in as an instructor", file=sys.stderr)
        return 1
    window: Any = ReviewWindow(store, actor, owns_store=True)
    window.showMaximized()
    return app.exec()
