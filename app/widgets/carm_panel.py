"""The C-arm panel: every joint with its limits and readout, nudge buttons, named views, and the
image settings (collimation, magnification, pulse mode, invert, monitor rotate/flip).

The panel owns no pose: it shows the joints the session reports (``show_joints``) and asks for
moves through signals; the session validates them.
"""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from fluorosim.render.carm import JOINT_LIMITS, CArmJoints

JOINT_TITLES = {
    "orbital_deg": ("Orbital", "°", 1.0),
    "angular_deg": ("Angular (tilt)", "°", 1.0),
    "wigwag_deg": ("Wig-wag", "°", 1.0),
    "lift_mm": ("Vertical lift", "mm", 5.0),
    "horizontal_mm": ("Horizontal in/out", "mm", 5.0),
    "table_longitudinal_mm": ("Table longitudinal", "mm", 5.0),
    "table_lateral_mm": ("Table lateral", "mm", 5.0),
    "table_height_mm": ("Table height", "mm", 5.0),
}

#: Named views offered as buttons in learning mode: (label, view, needs_side, needs_level).
VIEW_BUTTONS = [
    ("AP", "ap"),
    ("Lateral", "lateral"),
    ("True lateral (sacrum)", "true_lateral_sacrum"),
    ("Inlet", "inlet"),
    ("Outlet", "outlet"),
    ("Oblique", "oblique"),
    ("Ferguson", "ferguson"),
    ("Contralateral oblique", "contralateral_oblique"),
]

PULSE_MODES = [
    "continuous",
    "pulsed 15 pps",
    "pulsed 7.5 pps",
    "pulsed 4 pps",
    "low dose",
    "single shot",
]


class CArmPanel(QWidget):
    """Joint readouts and controls; emits the user's requests."""

    joint_change_requested = pyqtSignal(str, float)  # joint name, new value
    view_requested = pyqtSignal(str)
    image_settings_changed = pyqtSignal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spin_boxes: dict[str, QDoubleSpinBox] = {}
        self.view_buttons: dict[str, QPushButton] = {}
        self._updating = False
        layout = QVBoxLayout(self)
        joints_box = QGroupBox("C-arm joints")
        grid = QGridLayout(joints_box)
        for row, (name, (title, unit, step)) in enumerate(JOINT_TITLES.items()):
            low, high = JOINT_LIMITS[name]
            label = QLabel(title)
            spin = QDoubleSpinBox()
            spin.setRange(low, high)
            spin.setDecimals(1)
            spin.setSingleStep(step)
            spin.setSuffix(f" {unit}")
            spin.setKeyboardTracking(False)
            spin.setToolTip(f"{title}: travel {low:g} to {high:g} {unit}")
            spin.setAccessibleName(title)
            spin.valueChanged.connect(lambda value, n=name: self._spin_changed(n, value))
            minus = QPushButton("−")
            plus = QPushButton("+")
            for button, sign in ((minus, -1), (plus, 1)):
                button.setFixedWidth(28)
                button.setAutoRepeat(True)
                button.setToolTip(f"Nudge {title} by {sign * step:+g} {unit}")
                button.clicked.connect(lambda _=False, n=name, d=sign * step: self.nudge(n, d))
            limits = QLabel(f"[{low:g}, {high:g}]")
            limits.setStyleSheet("color: gray")
            grid.addWidget(label, row, 0)
            grid.addWidget(minus, row, 1)
            grid.addWidget(spin, row, 2)
            grid.addWidget(plus, row, 3)
            grid.addWidget(limits, row, 4)
            self.spin_boxes[name] = spin
        layout.addWidget(joints_box)

        self.views_box = QGroupBox("Named views (learning mode)")
        views_layout = QGridLayout(self.views_box)
        for index, (title, view) in enumerate(VIEW_BUTTONS):
            button = QPushButton(title)
            button.setToolTip(f"Move the C-arm to the ideal {title} for this patient")
            button.clicked.connect(lambda _=False, v=view: self.view_requested.emit(v))
            views_layout.addWidget(button, index // 2, index % 2)
            self.view_buttons[view] = button
        layout.addWidget(self.views_box)

        image_box = QGroupBox("Image")
        form = QFormLayout(image_box)
        self.pulse_mode = QComboBox()
        self.pulse_mode.addItems(PULSE_MODES)
        self.pulse_mode.setCurrentText("pulsed 7.5 pps")
        self.magnification = QComboBox()
        self.magnification.addItems(["normal", "mag 1", "mag 2"])
        self.iris = QSlider()
        self.iris.setOrientation(self.iris.orientation().Horizontal)
        self.iris.setRange(30, 100)
        self.iris.setValue(100)
        self.iris.setToolTip("Iris collimator: percentage of the full field")
        self.shutters = QSlider()
        self.shutters.setOrientation(self.shutters.orientation().Horizontal)
        self.shutters.setRange(30, 100)
        self.shutters.setValue(100)
        self.shutters.setToolTip("Shutter leaves: percentage of the full field width")
        self.invert = QCheckBox("Invert (bone white)")
        flips = QHBoxLayout()
        self.flip_h = QCheckBox("Flip L/R")
        self.flip_v = QCheckBox("Flip U/D")
        self.rotate = QComboBox()
        self.rotate.addItems(["0°", "90°", "180°", "270°"])
        flips.addWidget(self.flip_h)
        flips.addWidget(self.flip_v)
        flips.addWidget(QLabel("Rotate"))
        flips.addWidget(self.rotate)
        self.orientation_label = QLabel("monitor: standard (AP: patient left on right)")
        self.orientation_label.setWordWrap(True)
        form.addRow("Pulse mode", self.pulse_mode)
        form.addRow("Magnification", self.magnification)
        form.addRow("Iris", self.iris)
        form.addRow("Shutters", self.shutters)
        form.addRow(self.invert)
        form.addRow(flips)
        form.addRow(self.orientation_label)
        for widget_signal in (
            self.pulse_mode.currentTextChanged,
            self.magnification.currentTextChanged,
            self.iris.valueChanged,
            self.shutters.valueChanged,
            self.invert.toggled,
            self.flip_h.toggled,
            self.flip_v.toggled,
            self.rotate.currentIndexChanged,
        ):
            widget_signal.connect(
                lambda *_: self.image_settings_changed.emit(self.image_settings())
            )
        layout.addWidget(image_box)
        layout.addStretch(1)

    def image_settings(self) -> dict:
        """The current image settings as plain values."""
        return {
            "pulse_mode": self.pulse_mode.currentText(),
            "magnification": self.magnification.currentText(),
            "iris_fraction": self.iris.value() / 100.0,
            "shutter_fraction": self.shutters.value() / 100.0,
            "invert": self.invert.isChecked(),
            "flip_horizontal": self.flip_h.isChecked(),
            "flip_vertical": self.flip_v.isChecked(),
            "rotate_quarter_turns": self.rotate.currentIndex(),
        }

    def set_learning_mode(self, learning: bool) -> None:
        """Named-view buttons exist only in learning mode."""
        self.views_box.setVisible(learning)
        for button in self.view_buttons.values():
            button.setEnabled(learning)

    def show_joints(self, joints: CArmJoints) -> None:
        """Show the session's joints without echoing them back as requests."""
        self._updating = True
        try:
            for name, value in joints.as_dict().items():
                self.spin_boxes[name].setValue(value)
        finally:
            self._updating = False

    def nudge(self, name: str, delta: float) -> None:
        """Ask to move one joint by ``delta`` (clamped to its travel)."""
        low, high = JOINT_LIMITS[name]
        self.joint_change_requested.emit(
            name, min(high, max(low, self.spin_boxes[name].value() + delta))
        )

    def _spin_changed(self, name: str, value: float) -> None:
        if not self._updating:
            self.joint_change_requested.emit(name, value)
