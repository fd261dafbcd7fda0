"""GUI widgets, driven with qtbot: what the trainee sees on the monitors and panels."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDialogButtonBox

from fluorosim.app.widgets.carm_panel import CArmPanel
from fluorosim.app.widgets.instrument_panel import InstrumentPanel, device_url
from fluorosim.app.widgets.monitor import MonitorWidget
from fluorosim.app.widgets.procedure_panel import ProcedurePanel
from fluorosim.app.widgets.signin import SignInDialog
from fluorosim.render.carm import JOINT_LIMITS, CArmJoints


def test_monitor_shows_image_and_overlay(qtbot):
    monitor = MonitorWidget("LIVE")
    qtbot.addWidget(monitor)
    monitor.resize(400, 400)
    monitor.show()
    image = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    monitor.set_image(image)
    monitor.set_overlay(
        shot_number=3,
        view_name="lateral",
        kvp=75,
        ma=2.5,
        mode="pulsed 7.5 pps",
        beam_on_s=12.4,
        air_kerma_mgy=1.25,
        kap_gycm2=0.05,
        last_image_hold=True,
    )
    monitor.set_xray_on(True)
    left, right = monitor.overlay_lines()
    assert left == ["LIVE", "Shot 3", "lateral"]
    assert "75 kV  2.5 mA" in right and "Fluoro 00:12.4" in right and "LIH" in right
    assert "1.25 mGy  0.50 dGy·cm²" in right  # 0.05 Gy·cm² = 0.5 dGy·cm²
    grab = monitor.grab().toImage()
    # the centre of the widget shows the image: a mid-grey ramp, not the black background
    centre = grab.pixelColor(grab.width() // 2, grab.height() // 2)
    assert 90 < centre.red() < 170
    # the X-RAY ON box is red in the bottom-left corner
    corner = grab.pixelColor(20, grab.height() - 15)
    assert corner.red() > 150 and corner.green() < 60


def test_signin_needs_a_name(qtbot):
    dialog = SignInDialog({"sij-lateral": "SI-joint fusion, lateral", "teld-l4l5": "TELD L4-5"})
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    qtbot.keyClicks(dialog.trainee, "t-007")
    assert ok.isEnabled()
    dialog.scenario.setCurrentIndex(1)
    dialog.mode.setCurrentIndex(1)
    choice = dialog.choice()
    assert (choice.trainee_id, choice.scenario_id, choice.mode) == ("t-007", "teld-l4l5", "exam")


def test_carm_panel_requests_and_shows_joints(qtbot):
    panel = CArmPanel()
    qtbot.addWidget(panel)
    requests = []
    panel.joint_change_requested.connect(lambda name, value: requests.append((name, value)))
    panel.show_joints(CArmJoints(orbital_deg=90.0, angular_deg=-25.0))
    assert requests == []  # showing the session's pose is not a request
    assert panel.spin_boxes["orbital_deg"].value() == 90.0
    panel.nudge("orbital_deg", 5.0)
    assert requests[-1] == ("orbital_deg", 95.0)
    panel.nudge("orbital_deg", 500.0)
    assert requests[-1] == ("orbital_deg", JOINT_LIMITS["orbital_deg"][1])
    views = []
    panel.view_requested.connect(views.append)
    qtbot.mouseClick(panel.view_buttons["inlet"], Qt.MouseButton.LeftButton)
    assert views == ["inlet"]
    panel.set_learning_mode(False)
    assert not panel.view_buttons["inlet"].isEnabled()
    settings = []
    panel.image_settings_changed.connect(settings.append)
    panel.invert.setChecked(True)
    assert settings[-1]["invert"] is True


def test_procedure_panel_report(qtbot):
    panel = ProcedurePanel()
    qtbot.addWidget(panel)
    panel.show_scenario("SI-joint fusion — learning mode", ["Guide pin S1", "Implant 1"])
    panel.show_counters({"shots": 4, "beam_on_s": 3.25, "kap_gycm2": 0.012, "air_kerma_mgy": 0.4})
    assert panel.counter_labels["shots"].text() == "4"
    assert panel.counter_labels["beam_on_s"].text() == "3.2 s"
    assert panel.counter_labels["kap_gycm2"].text() == "0.12 dGy·cm²"  # as on the monitor
    panel.show_report(
        {
            "score": 42.0,
            "passed": False,
            "metrics": {
                "tip_to_target_mm": {
                    "value": 8.5,
                    "unit": "mm",
                    "reference": "≤ 5",
                    "passed": False,
                }
            },
            "findings": [
                "Pin 1 entered the right S1 foramen by 3.1 mm at 04:12; visible on the outlet view at shot 14."
            ],
        }
    )
    text = panel.report.toPlainText()
    assert "Score 42 / 100 — NOT YET" in text
    assert "right S1 foramen by 3.1 mm" in text
    assert "tip to target mm" in text and "8.5" in text
    assert panel.same_button.isEnabled() and not panel.finish_button.isEnabled()


def test_instrument_panel_urls_and_status(qtbot):
    panel = InstrumentPanel()
    qtbot.addWidget(panel)
    assert device_url("ndi", "/dev/ttyUSB0") == "ndi:/dev/ttyUSB0"
    assert device_url("igtl", "127.0.0.1:18944") == "igtl://127.0.0.1:18944"
    urls = []
    panel.device_requested.connect(urls.append)
    panel.kind.setCurrentIndex(1)
    panel.address.setText("/dev/ttyACM0")
    qtbot.mouseClick(panel.connect_button, Qt.MouseButton.LeftButton)
    assert urls == ["/dev/ttyACM0"]
    panel.show_status(
        "STP/1 /dev/ttyACM0",
        "DISCONNECTED",
        0.0,
        "device unplugged; reconnecting",
        {"checksum_failures": 3},
    )
    assert panel.status.text() == "STP/1 /dev/ttyACM0: DISCONNECTED"
    assert panel.message.text() == "device unplugged; reconnecting"
    assert (
        panel.counters.item(0, 0).text() == "checksum failures"
        and panel.counters.item(0, 1).text() == "3"
    )


def test_calibration_wizard_refuses_bad_input(qtbot):
    panel = InstrumentPanel()
    qtbot.addWidget(panel)
    wizard = panel.wizard
    wizard.solve_pivot()
    assert "refused" in wizard.result.text()
    wizard.set_landmarks({"a": [0, 0, 0], "b": [10, 0, 0], "c": [20, 0, 0], "d": [30, 0, 0]})
    for name, tip in zip("abcd", ([0, 0, 0], [10, 0, 0], [20, 0, 0], [30, 0, 0]), strict=True):
        wizard.landmark_choice.setCurrentText(name)
        wizard.show_raw({"tip_tracker_mm": np.array(tip, float)})
        wizard.add_registration_point()
    wizard.solve_registration()  # collinear landmarks cannot fix a rotation
    assert "Registration refused" in wizard.result.text()


def test_scene3d_renders_off_the_gui_thread(qtbot):
    import pyvista as pv

    from fluorosim.app.widgets.scene3d import Scene3DWidget

    scene = Scene3DWidget()
    qtbot.addWidget(scene)
    scene.resize(320, 240)
    scene.show()
    scene.set_surfaces({"bone": (pv.Sphere(radius=40.0), "bone")})

    def centre_red() -> int:
        image = scene._image
        return (
            -1 if image is None else image.pixelColor(image.width() // 2, image.height() // 2).red()
        )

    # an earlier picture (the resize's) may arrive first: wait for the sphere to fill the centre
    qtbot.waitUntil(lambda: centre_red() > 120, timeout=60_000)
    first = scene._image.copy()
    scene.set_instrument(
        np.array([45.0, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0]), length_mm=150.0, radius_mm=6.0
    )
    qtbot.waitUntil(lambda: scene._image != first, timeout=60_000)
    scene.close_scene()
    assert not scene.renderer.thread.is_alive()


def test_a_long_step_wraps_in_a_narrow_procedure_panel(qtbot):
    """The step list under the monitors is narrow: a long step shows on two lines, whole, with no
    sideways scroll bar, and its tooltip holds the whole text."""
    panel = ProcedurePanel()
    qtbot.addWidget(panel)
    long_step = (
        "Needle through Kambin's triangle into the L4-5 disc, tip at the medial pedicular line"
    )
    panel.show_scenario("Transforaminal endoscopic decompression", [long_step, "Guidewire"])
    panel.resize(520, 220)  # wide: steps, counters and report side by side
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.wait(50)
    steps = panel.steps
    assert steps.width() < steps.fontMetrics().horizontalAdvance(long_step)
    assert steps.horizontalScrollBar().maximum() == 0
    wrapped = steps.visualItemRect(steps.item(0)).height()
    single = steps.visualItemRect(steps.item(1)).height()
    assert wrapped >= 2 * steps.fontMetrics().lineSpacing() > single
    assert steps.item(0).toolTip() == long_step
