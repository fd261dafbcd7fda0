"""The middle of the window: a problem banner, the live and reference monitors side by side (the
reference place can show the 3D view or the score report instead), and under them the pedal, shot,
pin, swap and help buttons with the X-ray indicator.

It only builds and shows; the main window connects the buttons to the session.
"""

from __future__ import annotations

from PyQt6.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from fluorosim.app.widgets.cart_layout import MonitorPair, ReferenceSlot
from fluorosim.app.widgets.monitor import MonitorWidget

XRAY_ON_STYLE = "background: #c00; color: white; font-weight: bold; padding: 4px 10px;"
XRAY_OFF_STYLE = "background: #444; color: #bbb; padding: 4px 10px;"


class MonitorCart(QWidget):
    """Banner, monitors, buttons; the 3D view's dock is where the 3D view returns from a swap."""

    def __init__(self, scene_dock: QDockWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 6, 6, 4)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            "background: #fdecea; color: #b42318; padding: 6px; border-radius: 4px;"
        )
        self.banner.hide()
        column.addWidget(self.banner)
        self.live_monitor = MonitorWidget("LIVE")
        self.reference_monitor = MonitorWidget("REFERENCE")
        self.reference_monitor.placeholder = (
            "Reference monitor — press P to pin the live image here."
        )
        self.reference_slot = ReferenceSlot(self.reference_monitor, scene_dock)
        self.monitors = MonitorPair(self.live_monitor, self.reference_slot)
        column.addWidget(self.monitors, 1)
        controls = QHBoxLayout()
        self.pedal_button = QPushButton("Fluoro (hold Space)")
        self.pedal_button.setToolTip("Hold for fluoroscopy; the beam stays on while pressed")
        self.shot_button = QPushButton("Single shot (F)")
        self.pin_button = QPushButton("Pin as reference (P)")
        self.swap_button = QPushButton("3D view ⇄ reference (V)")
        self.swap_button.setToolTip("Show the 3D view large, in the reference monitor's place")
        self.help_button = QPushButton("Keys (F1)")
        self.xray_indicator = QLabel("X-RAY OFF")
        self.xray_indicator.setAccessibleName("X-ray indicator")
        for widget in (self.pedal_button, self.shot_button, self.pin_button, self.swap_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.help_button)
        controls.addWidget(self.xray_indicator)
        column.addLayout(controls)
        self.show_xray(False)

    def show_xray(self, on: bool) -> None:
        """Light the indicator and the live monitor's X-RAY ON while the beam is on."""
        self.xray_indicator.setText("X-RAY ON" if on else "X-RAY OFF")
        self.xray_indicator.setStyleSheet(XRAY_ON_STYLE if on else XRAY_OFF_STYLE)
        self.live_monitor.set_xray_on(on)
