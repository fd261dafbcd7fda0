"""The trainee's keyboard: one key map that acts the same wherever focus is in the attempt window,
and the help card that lists it (F1).

:class:`TraineeKeys` is an application-wide event filter: it sees a key before the widget that has
focus (a spin box, a combo box, a button of a panel, the 3D view) and turns the trainee's keys into
commands, so holding Space is always the pedal and ↓ always tilts the C-arm. Only inside a text
field (a device address, a calibration entry) do the letter keys type instead; Space, the arrow
keys and Page Up/Down stay the pedal and the C-arm there too. The held keys (the pedal Space and
tap T) ignore auto-repeat: one press, one release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QLabel, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

#: Keyboard map shown by the help card (key, what it does).
SHORTCUTS = [
    ("Click on the live image", "put the instrument's entry point on the skin under the click"),
    ("Drag on the live image", "aim the instrument about its entry point"),
    ("Space (hold)", "fluoroscopy: beam on while held (the pedal)"),
    ("F", "single shot"),
    ("← / →", "orbital −/+ 2°"),
    ("↑ / ↓", "angular (tilt) cranial/caudal 2°"),
    ("Page Up / Page Down", "table longitudinal ±10 mm"),
    ("W / S, mouse wheel", "advance / withdraw the instrument 0.5 mm (Shift: 0.1 mm)"),
    ("A / D, Z / X", "aim the instrument left/right, up/down 1° about the entry point"),
    ("T (hold)", "tap/drill: pass cortical bone"),
    ("P", "pin the live image as the reference image"),
    ("I", "place the implant over the current trajectory"),
    ("N", "next step"),
    ("V", "swap the 3D view and the reference monitor (learning mode)"),
    ("Ctrl+Return", "finish the attempt"),
    ("F1", "show/hide this help"),
]

KEY_JOINT_NUDGES = {
    Qt.Key.Key_Left: ("orbital_deg", -2.0),
    Qt.Key.Key_Right: ("orbital_deg", 2.0),
    Qt.Key.Key_Up: ("angular_deg", 2.0),
    Qt.Key.Key_Down: ("angular_deg", -2.0),
    Qt.Key.Key_PageUp: ("table_longitudinal_mm", 10.0),
    Qt.Key.Key_PageDown: ("table_longitudinal_mm", -10.0),
}
KEY_AIM = {
    Qt.Key.Key_A: (-1.0, 0.0),
    Qt.Key.Key_D: (1.0, 0.0),
    Qt.Key.Key_Z: (0.0, 1.0),
    Qt.Key.Key_X: (0.0, -1.0),
}
#: Letter keys that act once per press (no auto-repeat).
SINGLE_KEYS = (Qt.Key.Key_F, Qt.Key.Key_P, Qt.Key.Key_I, Qt.Key.Key_N, Qt.Key.Key_V)
ADVANCE_STEP_MM = 0.5
FINE_ADVANCE_STEP_MM = 0.1


@dataclass(frozen=True)
class TraineeActions:
    """What the keys command (the main window fills it in)."""

    set_pedal: Callable[[bool], None]
    single_shot: Callable[[], None]
    nudge_joint: Callable[[str, float], None]
    advance: Callable[[float], None]
    aim: Callable[[float, float], None]
    set_tap: Callable[[bool], None]
    pin_reference: Callable[[], None]
    place_implant: Callable[[], None]
    next_step: Callable[[], None]
    swap_reference_and_3d: Callable[[], None]
    finish: Callable[[], None]


def is_text_field(widget: QObject) -> bool:
    """A widget where letters are typed (an editable line or text edit, not a spin box's)."""
    if isinstance(widget, QLineEdit):
        parent = widget.parentWidget()
        return not widget.isReadOnly() and not (
            parent is not None and parent.inherits("QAbstractSpinBox")
        )
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        return not widget.isReadOnly()
    return False


class TraineeKeys(QObject):
    """Install with ``QApplication.instance().installEventFilter(keys)``; acts for ``window``."""

    def __init__(self, window: QWidget, actions: TraineeActions) -> None:
        super().__init__(window)
        self.window = window
        self.actions = actions
        self.pedal_down = False
        self.tap_down = False

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 - Qt override
        if event is None:
            return False
        kind = event.type()
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self.window:
            return False  # dialogs and other windows keep their keys
        assert isinstance(event, QKeyEvent)
        handled = (
            self.key_press(event, is_text_field(watched))
            if kind == QEvent.Type.KeyPress
            else self.key_release(event)
        )
        if handled:
            event.accept()
        return handled

    def key_press(self, event: QKeyEvent, typing: bool = False) -> bool:
        """Act on a trainee key; False when the key is not one (or is typed into a text field)."""
        key = Qt.Key(event.key())
        modifiers = event.modifiers()
        repeat = event.isAutoRepeat()
        a = self.actions
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if not modifiers & Qt.KeyboardModifier.ControlModifier:
                return False
            if not repeat:
                a.finish()
            return True
        if modifiers & (
            Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
            | Qt.KeyboardModifier.MetaModifier
        ):
            return False  # menu shortcuts (Ctrl+N, Ctrl+Q…)
        if key == Qt.Key.Key_Space:
            if not repeat and not self.pedal_down:
                self.pedal_down = True
                a.set_pedal(True)
            return True
        if key in KEY_JOINT_NUDGES:
            a.nudge_joint(*KEY_JOINT_NUDGES[key])
            return True
        if typing:
            return False
        fine = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        if key in (Qt.Key.Key_W, Qt.Key.Key_S):
            step = FINE_ADVANCE_STEP_MM if fine else ADVANCE_STEP_MM
            a.advance(step if key == Qt.Key.Key_W else -step)
            return True
        if key in KEY_AIM:
            a.aim(*KEY_AIM[key])
            return True
        if key == Qt.Key.Key_T:
            if not repeat and not self.tap_down:
                self.tap_down = True
                a.set_tap(True)
            return True
        if key in SINGLE_KEYS:
            if not repeat:
                {
                    Qt.Key.Key_F: a.single_shot,
                    Qt.Key.Key_P: a.pin_reference,
                    Qt.Key.Key_I: a.place_implant,
                    Qt.Key.Key_N: a.next_step,
                    Qt.Key.Key_V: a.swap_reference_and_3d,
                }[key]()
            return True
        return False

    def key_release(self, event: QKeyEvent) -> bool:
        """The end of a held key (pedal, tap); auto-repeat releases are swallowed."""
        key = event.key()
        if key not in (Qt.Key.Key_Space, Qt.Key.Key_T):
            return False
        if event.isAutoRepeat():
            return True
        self.release_held(key)
        return True

    def release_held(self, key: int | None = None) -> None:
        """Release the pedal and/or tap (``None``: both), e.g. when the window loses focus."""
        if key in (None, Qt.Key.Key_Space) and self.pedal_down:
            self.pedal_down = False
            self.actions.set_pedal(False)
        if key in (None, Qt.Key.Key_T) and self.tap_down:
            self.tap_down = False
            self.actions.set_tap(False)


class HelpOverlay(QLabel):
    """A translucent keyboard-shortcut card over the window (F1)."""

    def __init__(self, parent: QWidget) -> None:
        rows = "".join(f"<tr><td><b>{key}</b></td><td>{what}</td></tr>" for key, what in SHORTCUTS)
        super().__init__(
            f"<h3>Keyboard</h3><table cellpadding='3'>{rows}</table>"
            "<p>The keys act wherever the focus is in this window; in a text field the letters "
            "type. Press F1 to close.</p>",
            parent,
        )
        self.setStyleSheet(
            "background: rgba(20, 24, 28, 230); color: white; padding: 16px; border-radius: 8px;"
        )
        self.setTextFormat(Qt.TextFormat.RichText)
        self.hide()

    def toggle(self) -> None:
        """Show (centred, on top) or hide the card."""
        self.adjustSize()
        parent = self.parentWidget()
        self.move((parent.width() - self.width()) // 2, (parent.height() - self.height()) // 2)
        self.setVisible(not self.isVisible())
        self.raise_()
