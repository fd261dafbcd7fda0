"""The window as a C-arm cart: monitor sizes on real screen sizes, remembered layout, keys that act
the same wherever focus is, sign-in defaults, F1 help, and the question when closing mid-attempt.

None of these needs an attempt running: the trainee's commands are watched where the window hands
them to the controller (its queued signals to the worker), so each test is quick.
"""

from __future__ import annotations

import pytest
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QWidget,
)

from fluorosim.app.controller import SessionController
from fluorosim.app.main_window import MainWindow
from fluorosim.app.widgets.signin import SignInChoice, SignInDialog


def ini(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


class Commands:
    """What the window sent the controller (its queued signals to the worker)."""

    def __init__(self, controller: SessionController) -> None:
        self.pedal: list[bool] = []
        self.joints: list[tuple[str, float]] = []
        self.shots = 0
        self.advances: list[float] = []
        controller._pedal.connect(self.pedal.append)
        controller._joint.connect(lambda name, value: self.joints.append((name, value)))
        controller._shot.connect(self._shot)
        controller._advance.connect(self.advances.append)

    def _shot(self) -> None:
        self.shots += 1

    def clear(self) -> None:
        self.pedal.clear()
        self.joints.clear()
        self.advances.clear()
        self.shots = 0


@pytest.fixture
def make_window(qtbot, tmp_path):
    made = []

    def make(settings: QSettings | None = None) -> MainWindow:
        controller = SessionController()
        window = MainWindow(controller, settings or ini(tmp_path))
        qtbot.addWidget(window)
        made.append(window)
        return window

    yield make
    for window in made:
        window.close()


def lay_out(qtbot, window: MainWindow, width: int, height: int) -> None:
    """A maximised window on a width×height screen: the window fills it, default layout (the
    offscreen screen is smaller, so the window is given the screen's size by hand)."""
    window.show()
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.resize(width, height)
    qtbot.waitUntil(lambda: window.width() == width and window.height() == height)
    window.default_layout()
    qtbot.wait(50)
    QApplication.processEvents()


@pytest.mark.parametrize(("width", "height", "fraction"), [(1920, 1080, 0.60), (1366, 768, 0.55)])
def test_live_monitor_dominates_the_screen(qtbot, make_window, width, height, fraction):
    window = make_window()
    lay_out(qtbot, window, width, height)
    live, reference = window.live_monitor, window.reference_monitor
    image = live.image_rect()
    assert image.width() == image.height() == live.width() == live.height()  # square
    assert image.height() >= fraction * height, (image.height(), height)
    assert reference.width() == live.width() and reference.height() == live.height()
    live_at = live.mapTo(window, live.rect().topLeft())
    reference_at = reference.mapTo(window, reference.rect().topLeft())
    assert live_at.y() == reference_at.y() and reference_at.x() >= live_at.x() + live.width()
    assert window.carm_dock.isVisible() and window.procedure_dock.isVisible()
    assert not window.carm_dock.isFloating()
    # the overlay stays legible: at least 13 logical px, both columns fit side by side
    font = live.overlay_font()
    assert font.pixelSize() >= 13
    from PyQt6.QtGui import QFontMetrics

    metrics = QFontMetrics(font)
    left, right = live.overlay_lines()
    live.set_overlay(shot_number=12, kvp=78, ma=2.1, mode="pulsed 7.5 pps", beam_on_s=93.4)
    left, right = live.overlay_lines()
    widest = max(metrics.horizontalAdvance(t) for t in left) + max(
        metrics.horizontalAdvance(t) for t in right
    )
    assert widest + 40 < live.width()
    assert (len(right) + 1) * metrics.height() < live.height() / 3


def test_overlay_font_grows_with_the_monitor(qtbot):
    from fluorosim.app.widgets.monitor import MonitorWidget

    monitor = MonitorWidget("LIVE")
    qtbot.addWidget(monitor)
    monitor.resize(460, 460)
    small = monitor.overlay_font().pixelSize()
    monitor.resize(700, 700)
    assert monitor.overlay_font().pixelSize() > small >= 13


def test_first_start_is_maximised_and_the_layout_is_remembered(qtbot, make_window, tmp_path):
    first = make_window()
    assert first.windowState() & Qt.WindowState.WindowMaximized
    lay_out(qtbot, first, 1366, 768)
    first.carm_dock.hide()  # the trainee closes the C-arm panel and floats the 3D view
    first.scene_dock.setFloating(True)
    first.close()
    settings = ini(tmp_path)
    assert settings.value("window/state") is not None
    second = make_window(settings)
    second.show()
    QApplication.processEvents()
    assert second.carm_dock.isHidden()
    assert second.scene_dock.isFloating()
    assert second.procedure_dock.isVisible()


FOCUSABLE = (QAbstractSpinBox, QComboBox, QAbstractSlider, QAbstractButton, QLineEdit)


def focus_targets(window: MainWindow) -> list[QWidget]:
    """One widget of each kind in each panel, the monitors and the 3D view."""
    targets: list[QWidget] = [window.live_monitor, window.reference_monitor, window.scene3d]
    for panel in (window.carm_panel, window.procedure_panel, window.instrument_panel):
        seen = set()
        for widget in panel.findChildren(QWidget):
            kind = next((k for k in FOCUSABLE if isinstance(widget, k)), None)
            if kind is not None and kind not in seen and widget.isVisibleTo(panel):
                seen.add(kind)
                targets.append(widget)
        targets.append(panel)
    return targets


def press(qtbot, widget: QWidget, key: Qt.Key, release: bool = True) -> None:
    qtbot.keyPress(widget, key)
    if release:
        qtbot.keyRelease(widget, key)


def test_keys_act_the_same_wherever_focus_is(qtbot, make_window):
    window = make_window()
    lay_out(qtbot, window, 1920, 1080)
    commands = Commands(window.controller)
    orbital = window.carm_panel.spin_boxes["orbital_deg"]
    targets = focus_targets(window)
    assert len(targets) >= 10
    for target in targets:
        commands.clear()
        target.setFocus()
        QApplication.processEvents()
        receiver = QApplication.focusWidget() or target
        before = orbital.value()
        press(qtbot, receiver, Qt.Key.Key_Space, release=False)
        qtbot.keyPress(receiver, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier)  # held
        qtbot.keyRelease(receiver, Qt.Key.Key_Space)
        assert commands.pedal == [True, False], (type(target).__name__, commands.pedal)
        assert commands.joints == [] and orbital.value() == before, type(target).__name__
        press(qtbot, receiver, Qt.Key.Key_Down)
        assert commands.joints == [("angular_deg", -2.0)], (type(target).__name__, commands.joints)
        assert orbital.value() == before
        if isinstance(target, QLineEdit):
            continue  # in a text field the letters type (below)
        press(qtbot, receiver, Qt.Key.Key_F)
        press(qtbot, receiver, Qt.Key.Key_W)
        assert commands.shots == 1 and commands.advances == [0.5], type(target).__name__


def test_held_pedal_auto_repeat_is_one_press(qtbot, make_window):
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QKeyEvent

    window = make_window()
    window.show()
    commands = Commands(window.controller)
    spin = window.carm_panel.spin_boxes["orbital_deg"]
    press_event = QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(spin, press_event)
    for _ in range(5):  # what X11 sends while a key is held: release/press pairs marked auto-repeat
        for kind in (QEvent.Type.KeyRelease, QEvent.Type.KeyPress):
            QApplication.sendEvent(
                spin, QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, "", True)
            )
    assert commands.pedal == [True]
    QApplication.sendEvent(
        spin, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier)
    )
    assert commands.pedal == [True, False] and commands.joints == []


def test_letters_type_in_a_text_field(qtbot, make_window):
    window = make_window()
    window.show()
    commands = Commands(window.controller)
    address = window.instrument_panel.address
    qtbot.keyClicks(address, "ws")
    assert address.text() == "ws" and commands.advances == []


def test_buttons_never_take_the_keyboard_focus(qtbot, make_window):
    window = make_window()
    lay_out(qtbot, window, 1920, 1080)
    window.live_monitor.setFocus()
    minus = next(b for b in window.carm_panel.findChildren(QAbstractButton) if b.text() == "−")
    qtbot.mouseClick(minus, Qt.MouseButton.LeftButton)
    assert minus.focusPolicy() == Qt.FocusPolicy.NoFocus
    assert QApplication.focusWidget() is not minus
    qtbot.mouseClick(window.live_monitor, Qt.MouseButton.LeftButton)
    assert window.live_monitor.focusPolicy() & Qt.FocusPolicy.ClickFocus


def test_losing_the_window_releases_the_pedal(qtbot, make_window):
    window = make_window()
    window.show()
    commands = Commands(window.controller)
    qtbot.keyPress(window, Qt.Key.Key_Space)
    window.keys.release_held()  # what deactivation does (changeEvent)
    assert commands.pedal == [True, False]


def test_f1_shows_the_keyboard_help(qtbot, make_window):
    window = make_window()
    lay_out(qtbot, window, 1366, 768)
    assert window.help_action.shortcut().toString() == "F1"
    assert window.help_action in window.actions()
    window.help_action.trigger()
    assert window.help_overlay.isVisible()
    assert "Space (hold)" in window.help_overlay.text()
    window.help_button.click()
    assert not window.help_overlay.isVisible()


def test_swap_puts_the_3d_view_large_in_the_reference_place(qtbot, make_window):
    window = make_window()
    lay_out(qtbot, window, 1920, 1080)
    qtbot.keyClick(window, Qt.Key.Key_V)
    assert window.reference_slot.swapped
    QApplication.processEvents()
    assert window.scene3d.width() == window.live_monitor.width() >= 600
    assert not window.scene_dock.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_V)
    assert not window.reference_slot.swapped
    assert window.reference_slot.currentWidget() is window.reference_monitor
    assert window.scene_dock.widget() is window.scene3d


def test_closing_mid_attempt_asks_and_keeps_it_as_interrupted(qtbot, make_window, monkeypatch):
    window = make_window()
    window.show()
    interrupted = []
    monkeypatch.setattr(window.controller, "attempt_in_progress", lambda: True)
    monkeypatch.setattr(window.controller, "interrupt", lambda: interrupted.append(True))
    monkeypatch.setattr(window, "ask_to_leave", lambda: False)
    window.close()
    assert window.isVisible() and interrupted == []  # "Cancel": the attempt goes on
    monkeypatch.setattr(window, "ask_to_leave", lambda: True)
    window.close()
    assert not window.isVisible() and interrupted == [True]


SCENARIOS = {
    "drill-inlet": "C-arm drill: inlet",
    "ield-l5s1": "Interlaminar endoscopic decompression L5-S1",
    "sij-lateral": "SI-joint fusion, lateral",
}


def test_signin_lists_procedures_first_and_defaults_to_one(qtbot):
    dialog = SignInDialog(SCENARIOS, None, drills={"drill-inlet"})
    qtbot.addWidget(dialog)
    ids = [dialog.scenario.itemData(i) for i in range(dialog.scenario.count())]
    assert [i for i in ids if i] == ["ield-l5s1", "sij-lateral", "drill-inlet"]
    assert dialog.choice().scenario_id == "ield-l5s1"


def test_signin_remembers_the_last_trainee_and_scenario(qtbot, make_window, tmp_path, monkeypatch):
    from fluorosim.app.gui import last_choice

    window = make_window()
    monkeypatch.setattr(window.controller, "start_attempt", lambda choice: None)
    window.start_attempt(SignInChoice("ada", "drill-inlet", "exam", 7, False))
    remembered = last_choice(ini(tmp_path))
    assert remembered == SignInChoice("ada", "drill-inlet", "exam", 7, False)
    dialog = SignInDialog(SCENARIOS, remembered, drills={"drill-inlet"})
    qtbot.addWidget(dialog)
    assert dialog.choice() == remembered


def test_shipped_scenarios_put_procedures_before_drills():
    from fluorosim.app.gui import shipped_scenario_titles

    titles, drills = shipped_scenario_titles()
    order = list(titles)
    assert drills and set(drills) < set(order)
    assert all(order.index(p) < order.index(d) for p in order if p not in drills for d in drills)
    assert order[0] not in drills
