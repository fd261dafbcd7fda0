"""The controller only adapts: typed settings and calibration outcomes pass through it unchanged
(the decisions are tested headless in tests/scenarios)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QSettings

from fluorosim.app.controller import SessionController
from fluorosim.app.main_window import MainWindow
from fluorosim.haptics.calibration import register_paired_points
from fluorosim.haptics.serial_source import SerialStp1Source
from fluorosim.scenarios.technique import image_settings


def test_the_panel_sends_typed_settings_to_the_worker(qtbot, tmp_path):
    controller = SessionController()
    window = MainWindow(controller, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: controller.worker.image_settings is not None, timeout=5000)
        assert controller.worker.image_settings == image_settings()  # the panel's defaults
        window.carm_panel.pulse_mode.setCurrentText("single shot")
        window.carm_panel.magnification.setCurrentText("mag 1")
        window.carm_panel.flip_h.setChecked(True)
        qtbot.waitUntil(
            lambda: controller.worker.image_settings.orientation.flip_horizontal, timeout=5000
        )
        settings = controller.worker.image_settings
        assert settings.pedal_single_shot and settings.technique.magnification == 1
        assert settings.pulse_mode == "single shot"
    finally:
        controller.shutdown()


def test_the_status_says_a_registration_without_pivot_is_not_applied(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FLUOROSIM_CALIBRATION_DIR", str(tmp_path))
    controller = SessionController()
    try:
        controller.worker.source = SerialStp1Source("loop://")  # never started: no port opened
        points = np.array([[0, 0, 0], [100, 0, 0], [0, 80, 0], [0, 0, 60]], float)
        calibration = register_paired_points(points, points + [5.0, 0.0, 0.0])
        with qtbot.waitSignal(controller.problem, timeout=5000) as shown:
            controller.apply_calibration(calibration)
        message = shown.args[0]
        assert "not applied" in message and "pivot" in message and str(tmp_path) in message
        assert controller.worker.source.rig is None
    finally:
        controller.shutdown()


def test_panel_values_and_typed_settings_map_both_ways():
    from fluorosim.app.panel_settings import panel_values, settings_from_panel
    from fluorosim.render.carm import MonitorOrientation

    for pulse_mode in ("continuous", "pulsed 4 pps", "low dose", "single shot"):
        settings = image_settings(
            pulse_mode, "mag 2", 0.5, 0.7, True, MonitorOrientation(False, True, 3)
        )
        assert settings_from_panel(panel_values(settings)) == settings
