"""A whole attempt through the window with the mouse instrument, as a trainee does it.

Sign in to sij-lateral, press the Lateral view button, take a single shot (F), advance the pin (W),
hold the pedal (Space) for fluoroscopy, finish, and read the score report. Checks what is shown:
the image is not blank, the counters move, the X-ray indicator lights, the report names findings,
and the attempt lands in the records with its attempt file.
"""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QSettings, Qt

from fluorosim.app.controller import SessionController
from fluorosim.app.main_window import MainWindow
from fluorosim.app.widgets.signin import SignInChoice
from fluorosim.scenarios.records.database import RecordStore

pytestmark = pytest.mark.slow
LOAD_TIMEOUT_MS = 300_000  # the first build of the patient and the renderer's JIT warm-up


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUOROSIM_DB_URL", f"sqlite:///{tmp_path / 'records.sqlite'}")
    monkeypatch.setenv("FLUOROSIM_ATTEMPTS_DIR", str(tmp_path / "attempts"))
    controller = SessionController()
    main = MainWindow(
        controller, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    )
    qtbot.addWidget(main)
    main.ask_to_leave = lambda: True  # closing mid-attempt keeps it as interrupted, unasked
    main.show()
    yield main
    main.close()


def start(qtbot, main, scenario="sij-lateral", mode="learning"):
    problems = []
    main.controller.problem.connect(problems.append)
    main.tips = []
    main.controller.tool_changed.connect(lambda tip, direction: main.tips.append(np.array(tip)))
    with qtbot.waitSignal(main.controller.scenario_loaded, timeout=LOAD_TIMEOUT_MS):
        main.start_attempt(SignInChoice("t-gui", scenario, mode, 0, False))
    return problems


def test_whole_attempt_with_the_mouse(qtbot, window, tmp_path):
    problems = start(qtbot, window)
    assert "SI-joint fusion" in window.procedure_panel.title.text()
    assert window.procedure_panel.steps.count() == 3
    assert window.carm_panel.views_box.isVisible()

    qtbot.mouseClick(window.carm_panel.view_buttons["lateral"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: abs(window.carm_panel.spin_boxes["orbital_deg"].value() - 90.0) < 1.0,
        timeout=10_000,
    )
    with qtbot.waitSignal(window.controller.frame_ready, timeout=60_000):
        qtbot.keyClick(window, Qt.Key.Key_F)
    image = window.live_monitor.image
    assert image is not None and image.shape == (512, 512)
    assert image.std() > 10, "the fluoroscopy image is blank"
    assert "lateral" in window.live_monitor.overlay.view_name
    # through the pelvis the dose-rate control is at its limit and has raised the kV: shown
    assert window.live_monitor.overlay.kvp >= 95.0
    qtbot.waitUntil(
        lambda: window.procedure_panel.counter_labels["shots"].text() == "1", timeout=5_000
    )

    tips = window.tips  # the first is where the pin starts, on the skin
    monitor = window.live_monitor
    centre = monitor.image_rect().center().toPoint()
    poses_before = len(tips)
    qtbot.mousePress(monitor, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(monitor, centre + QPoint(30, 0))
    qtbot.mouseMove(monitor, centre + QPoint(60, 0))
    qtbot.mouseRelease(monitor, Qt.MouseButton.LeftButton, pos=centre + QPoint(60, 0))
    qtbot.waitUntil(lambda: len(tips) > poses_before, timeout=10_000)  # a drag re-aims the pin
    entry_before = tips[-1]
    qtbot.mouseClick(monitor, Qt.MouseButton.LeftButton, pos=centre + QPoint(0, -40))
    qtbot.waitUntil(
        lambda: np.linalg.norm(tips[-1] - entry_before) > 5.0, timeout=10_000
    )  # a click moves the entry
    qtbot.wait(300)
    start_tip = tips[-1]
    qtbot.keyPress(window, Qt.Key.Key_T)  # tap: cortical bone no longer slows the advance
    for _ in range(12):
        qtbot.keyClick(window, Qt.Key.Key_W)
    qtbot.keyRelease(window, Qt.Key.Key_T)
    qtbot.waitUntil(lambda: np.linalg.norm(tips[-1] - start_tip) >= 3.0, timeout=10_000)
    qtbot.wait(300)
    advanced_mm = np.linalg.norm(tips[-1] - start_tip)
    assert advanced_mm <= 12 * 0.5 + 1e-6  # never more than 0.5 mm a key press

    window.carm_panel.pulse_mode.setCurrentText(
        "pulsed 15 pps"
    )  # the panel's technique reaches the session
    qtbot.waitUntil(
        lambda: window.controller.worker.session.technique.pulse_rate_pps == 15.0, timeout=10_000
    )
    with qtbot.waitSignal(window.controller.xray_changed, timeout=10_000) as on:
        qtbot.keyPress(window, Qt.Key.Key_Space)
    assert on.args == [True]
    assert window.xray_indicator.text() == "X-RAY ON"
    qtbot.wait(800)
    assert window.live_monitor.overlay.mode == "pulsed 15 pps"
    with qtbot.waitSignal(window.controller.xray_changed, timeout=10_000):
        qtbot.keyRelease(window, Qt.Key.Key_Space)
    assert window.xray_indicator.text() == "X-RAY OFF"
    qtbot.waitUntil(
        lambda: window.procedure_panel.counter_labels["shots"].text() == "2", timeout=5_000
    )
    assert float(window.procedure_panel.counter_labels["beam_on_s"].text().split()[0]) > 0
    qtbot.waitUntil(lambda: window.live_monitor.overlay.last_image_hold, timeout=5_000)
    # one kerma-area product, in one unit, in the three places the window shows it
    kap = window.procedure_panel.counter_labels["kap_gycm2"].text()
    assert kap.endswith(" dGy·cm²") and float(kap.split()[0]) > 0
    assert kap in window.status_dose.text()
    assert kap in window.live_monitor.overlay_lines()[1][-2]

    saved: list[str] = []  # connected before Finish: the file may be saved before the report shows
    window.controller.attempt_saved.connect(saved.append)
    with qtbot.waitSignal(window.controller.report_ready, timeout=60_000) as finished:
        qtbot.mouseClick(window.procedure_panel.finish_button, Qt.MouseButton.LeftButton)
    report = finished.args[0]
    text = window.procedure_panel.report.toPlainText()
    assert f"Score {report['score']:.0f} / 100" in text
    assert report["findings"] and report["findings"][0] in text
    assert window.procedure_panel.same_button.isEnabled()
    qtbot.waitUntil(lambda: len(saved) == 1, timeout=30_000)
    attempt_file = saved[0]
    with RecordStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        attempts = store.attempts("t-gui")
        assert len(attempts) == 1 and attempts[0].attempt_file == attempt_file
        assert attempts[0].score == pytest.approx(report["score"])
        assert store.verify().ok
    assert not [p for p in problems if "unexpectedly" in p], problems


def test_exam_mode_hides_views_and_3d(qtbot, window):
    start(qtbot, window, mode="exam")
    assert not window.carm_panel.views_box.isVisible()
    assert not window.scene_dock.isVisible()
    refused = []
    window.controller.problem.connect(refused.append)
    window.controller.go_to_view(
        "lateral"
    )  # e.g. a stale shortcut: the session refuses it in exam mode
    qtbot.waitUntil(lambda: any("Refused" in p for p in refused), timeout=10_000)


def test_attempt_with_an_emulated_stp1_gimbal_unplugged_midway(qtbot, window):
    """An STP/1 gimbal rig on a pty drives the pin; unplugging it shows DISCONNECTED at once and
    the attempt carries on when it comes back (same path); nothing recorded is lost."""
    from fluorosim.haptics.emulators import make_emulator

    emulator = make_emulator(
        "gimbal", faults="unplug", unplug_every_s=4.0, unplug_for_s=1.5, rate_hz=100
    )
    emulator.start()
    try:
        problems = start(qtbot, window)
        statuses = []
        window.controller.device_status.connect(
            lambda name, status, rate, message, counters: statuses.append(status)
        )
        window.controller.open_device(emulator.path)
        qtbot.waitUntil(lambda: "OK" in statuses and len(window.tips) >= 5, timeout=20_000)
        qtbot.waitUntil(lambda: "DISCONNECTED" in statuses, timeout=20_000)
        assert "DISCONNECTED" in window.instrument_panel.status.text() or "DISCONNECTED" in statuses
        lost_at = len(statuses)
        qtbot.waitUntil(lambda: "OK" in statuses[lost_at:], timeout=20_000)
        tips_before = len(window.tips)

        def moving_again() -> bool:  # the replugged device restarts its sweep: the pin moves again
            after = window.tips[tips_before:]
            return len(after) > 5 and max(np.linalg.norm(t - after[0]) for t in after) > 0.3

        qtbot.waitUntil(moving_again, timeout=30_000)
        with qtbot.waitSignal(window.controller.frame_ready, timeout=60_000):
            qtbot.keyClick(window, Qt.Key.Key_F)
        assert window.live_monitor.image.std() > 10
        with qtbot.waitSignal(window.controller.attempt_saved, timeout=60_000) as saved:
            window.controller.finish()
        assert not [p for p in problems if "unexpectedly" in p], problems
        from fluorosim.scenarios.recording import read_attempt

        recorded = read_attempt(saved.args[0])
        poses = [
            command for _, command in recorded.actions if type(command).__name__ == "InstrumentPose"
        ]
        assert (
            len(poses) >= tips_before
        )  # every pose shown before the unplug is in the attempt file
    finally:
        emulator.stop()


def test_closing_mid_attempt_keeps_it_as_interrupted(qtbot, window, tmp_path):
    start(qtbot, window)
    with qtbot.waitSignal(window.controller.frame_ready, timeout=60_000):
        qtbot.keyClick(window, Qt.Key.Key_F)
    asked = []
    window.ask_to_leave = lambda: asked.append(True) or True
    window.close()
    assert asked == [True]
    with RecordStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}") as store:
        attempts = store.attempts("t-gui")
        assert len(attempts) == 1 and attempts[0].status == "interrupted"
        assert attempts[0].attempt_file  # the attempt file is kept with it
    from fluorosim.scenarios.records import journal

    assert journal.interrupted_attempts(tmp_path / "attempts")[0] == []  # not offered again


def test_preparing_the_attempt_can_be_cancelled(qtbot, window):
    cancelled = []
    window.controller.start_cancelled.connect(lambda: cancelled.append(True))
    progress = window.start_attempt(SignInChoice("t-gui", "sij-lateral", "learning", 0, False))
    from PyQt6.QtWidgets import QPushButton

    cancel = next(b for b in progress.findChildren(QPushButton) if b.text() == "Cancel")
    cancel.click()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=LOAD_TIMEOUT_MS)
    assert not window.controller.attempt_in_progress()
    assert "cancelled" in window.banner.text()
