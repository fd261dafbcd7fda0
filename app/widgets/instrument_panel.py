"""The instrument panel: device picker with live status, rate and diagnostics counters; the
calibration wizard (pivot, landmark registration, gimbal zero) with each step's error; and the
mouse-mode controls.

The panel never opens a port itself: it asks for a device URL through ``device_requested`` and shows
what the session's source reports. The wizard collects poses from the samples it is shown and calls
:mod:`haptics.calibration`, which refuses bad input with a reason that the wizard displays.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fluorosim.haptics.calibration import (
    CalibrationError,
    gimbal_calibration,
    pivot_calibration,
    register_paired_points,
)

DEVICE_KINDS = [
    ("Mouse and keyboard", "mouse"),
    ("STP/1 serial rig (port path)", "stp1"),
    ("NDI Aurora/Polaris (serial port)", "ndi"),
    ("NDI Vega (host:port)", "ndi_tcp"),
    ("OpenIGTLink from PLUS (host:port)", "igtl"),
    ("Replay a recording (file)", "replay"),
]

MOUSE_HELP = (
    "Mouse instrument: click on the monitor to pick the skin entry point; drag to aim about it; "
    "wheel or W/S to advance or withdraw 0.5 mm (Shift: 0.1 mm); A/D and Z/X aim by 1°; "
    "hold T to tap/drill through cortical bone (the advance slows in cortex)."
)


def device_url(kind: str, text: str) -> str:
    """The instrument-source URL for a picker choice and the address the user typed."""
    text = text.strip()
    if kind == "mouse":
        return "mouse"
    if kind == "stp1":
        return text
    if kind == "ndi":
        return f"ndi:{text}"
    if kind == "ndi_tcp":
        return f"ndi+tcp://{text}"
    if kind == "igtl":
        return f"igtl://{text}"
    return text


class CalibrationWizard(QGroupBox):
    """Pivot calibration, paired-point registration and gimbal zero, step by step."""

    calibration_done = pyqtSignal(object)  # haptics.calibration.Calibration

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Calibration", parent)
        layout = QVBoxLayout(self)
        self.pivot_poses: list[np.ndarray] = []
        self.registration_pairs: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.landmarks: dict[str, np.ndarray] = {}
        self.latest_raw: dict = {}
        row = QHBoxLayout()
        self.pivot_add = QPushButton("Pivot: add pose")
        self.pivot_solve = QPushButton("Pivot: solve")
        row.addWidget(self.pivot_add)
        row.addWidget(self.pivot_solve)
        layout.addLayout(row)
        reg_row = QHBoxLayout()
        self.landmark_choice = QComboBox()
        self.landmark_choice.setToolTip(
            "Touch this landmark on the physical model with the tool tip, then press Add"
        )
        self.reg_add = QPushButton("Registration: add point")
        self.reg_solve = QPushButton("Registration: solve")
        reg_row.addWidget(self.landmark_choice, 1)
        reg_row.addWidget(self.reg_add)
        reg_row.addWidget(self.reg_solve)
        layout.addLayout(reg_row)
        self.gimbal_zero = QPushButton("Gimbal: zero at reference pose")
        layout.addWidget(self.gimbal_zero)
        self.result = QLabel("Not calibrated.")
        self.result.setWordWrap(True)
        layout.addWidget(self.result)
        self.pivot_add.clicked.connect(self.add_pivot_pose)
        self.pivot_solve.clicked.connect(self.solve_pivot)
        self.reg_add.clicked.connect(self.add_registration_point)
        self.reg_solve.clicked.connect(self.solve_registration)
        self.gimbal_zero.clicked.connect(self.zero_gimbal)

    def set_landmarks(self, landmarks: dict[str, np.ndarray]) -> None:
        """Registration landmarks offered (name → LPS point on the printed model)."""
        self.landmarks = {
            name: np.asarray(p, float)
            for name, p in landmarks.items()
            if np.asarray(p).shape == (3,)
        }
        self.landmark_choice.clear()
        self.landmark_choice.addItems(sorted(self.landmarks))

    def show_raw(self, raw: dict) -> None:
        """Keep the newest raw sample fields (tracker pose, gimbal angles)."""
        self.latest_raw = dict(raw)

    def _say(self, text: str, ok: bool) -> None:
        self.result.setText(text)
        self.result.setStyleSheet("color: #1a7f37" if ok else "color: #b42318")

    def add_pivot_pose(self) -> None:
        pose = self.latest_raw.get("tracker_from_tool")
        if pose is None:
            self._say(
                "No tracked tool pose yet: pivot calibration needs a 6-DOF tracker (STP/1 POSE, NDI, OpenIGTLink).",
                False,
            )
            return
        self.pivot_poses.append(np.asarray(pose, float))
        self._say(
            f"Pivot: {len(self.pivot_poses)} poses collected; pivot the tip in a divot through ≥ 30° in every direction.",
            True,
        )

    def solve_pivot(self) -> None:
        try:
            calibration = pivot_calibration(np.asarray(self.pivot_poses).reshape(-1, 4, 4))
        except (CalibrationError, ValueError) as error:
            self._say(f"Pivot refused: {error}", False)
            return
        accepted = calibration.accepted("optical")
        self._say(
            f"Pivot: RMS {calibration.error_mm:.2f} mm ({'accepted' if accepted else 'above 1 mm, repeat'}).",
            accepted,
        )
        if accepted:
            self.calibration_done.emit(calibration)

    def add_registration_point(self) -> None:
        tip = self.latest_raw.get("tip_tracker_mm")
        name = self.landmark_choice.currentText()
        if tip is None or not name:
            self._say("No tracked tip position yet (or no landmark chosen).", False)
            return
        self.registration_pairs.append((name, np.asarray(tip, float), self.landmarks[name]))
        self._say(
            f"Registration: {len(self.registration_pairs)} points ({', '.join(p[0] for p in self.registration_pairs)}).",
            True,
        )

    def solve_registration(self) -> None:
        try:
            calibration = register_paired_points(
                [p[1] for p in self.registration_pairs],
                [p[2] for p in self.registration_pairs],
                "Tracker",
                "Patient",
            )
        except (CalibrationError, ValueError) as error:
            self._say(f"Registration refused: {error}", False)
            return
        self._say(
            f"Registration: FRE {calibration.error_mm:.2f} mm over {len(self.registration_pairs)} landmarks.",
            True,
        )
        self.calibration_done.emit(calibration)

    def zero_gimbal(self) -> None:
        raw = self.latest_raw
        if "yaw_deg" not in raw:
            self._say("No gimbal reading yet: connect an STP/1 gimbal rig.", False)
            return
        try:
            calibration = gimbal_calibration(
                raw["yaw_deg"], raw["pitch_deg"], raw.get("roll_deg", 0.0), raw.get("depth_mm", 0.0)
            )
        except (CalibrationError, ValueError) as error:
            self._say(f"Gimbal zero refused: {error}", False)
            return
        self._say("Gimbal zeroed at the reference pose.", True)
        self.calibration_done.emit(calibration)


class InstrumentPanel(QWidget):
    """Device picker, status, counters, calibration wizard, mouse help."""

    device_requested = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        picker = QGroupBox("Instrument device")
        form = QFormLayout(picker)
        self.kind = QComboBox()
        for title, kind in DEVICE_KINDS:
            self.kind.addItem(title, kind)
        self.address = QLineEdit()
        self.address.setPlaceholderText("/dev/ttyACM0, 127.0.0.1:18944, or a file")
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(self._browse)
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(browse)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(
            lambda: self.device_requested.emit(
                device_url(self.kind.currentData(), self.address.text())
            )
        )
        self.status = QLabel("mouse: OK")
        self.status.setAccessibleName("Instrument status")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b42318")
        form.addRow("Device", self.kind)
        form.addRow("Address", address_row)
        form.addRow(self.connect_button)
        form.addRow("Status", self.status)
        form.addRow(self.message)
        layout.addWidget(picker)
        self.counters = QTableWidget(0, 2)
        self.counters.setHorizontalHeaderLabels(["diagnostic", "count"])
        self.counters.verticalHeader().setVisible(False)
        self.counters.setMaximumHeight(140)
        layout.addWidget(self.counters)
        self.wizard = CalibrationWizard()
        layout.addWidget(self.wizard)
        self.mouse_help = QLabel(MOUSE_HELP)
        self.mouse_help.setWordWrap(True)
        layout.addWidget(self.mouse_help)
        layout.addStretch(1)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Recording to replay", "", "Recordings (*.mha *.jsonl *.json)"
        )
        if path:
            self.address.setText(path)
            self.kind.setCurrentIndex([k for _, k in DEVICE_KINDS].index("replay"))

    def show_status(
        self, name: str, status: str, rate_hz: float | None, message: str, counters: dict[str, int]
    ) -> None:
        """Show the source's name, status, rate, last problem and diagnostics counters."""
        rate = f", {rate_hz:.0f} Hz" if rate_hz else ""
        self.status.setText(f"{name}: {status}{rate}")
        colour = {"OK": "#1a7f37", "STALE": "#b7791f"}.get(status, "#b42318")
        self.status.setStyleSheet(f"color: {colour}; font-weight: bold")
        self.message.setText(message)
        self.counters.setRowCount(len(counters))
        for row, (key, value) in enumerate(sorted(counters.items())):
            self.counters.setItem(row, 0, QTableWidgetItem(key.replace("_", " ")))
            self.counters.setItem(row, 1, QTableWidgetItem(str(value)))
        self.mouse_help.setVisible(name.startswith("mouse"))
