"""Widgets of the review window: tables, PNG pixmaps, and the replay timeline (every image of one
attempt: scrub, play, jump to each shot)."""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fluorosim.app.widgets.monitor import MonitorWidget
from fluorosim.scenarios.records.review import ReplayFrame


def png_pixmap(data: bytes) -> QPixmap:
    """A QPixmap from PNG bytes."""
    pixmap = QPixmap()
    pixmap.loadFromData(data, "PNG")
    return pixmap


def make_table(headers: list[str]) -> QTableWidget:
    """A read-only table selecting whole rows, its last column stretched."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def fit_columns(table: QTableWidget, stretch: int) -> None:
    """Every column sized to its contents except ``stretch``, which takes (and elides in) the rest."""
    header = table.horizontalHeader()
    header.setStretchLastSection(False)
    for column in range(table.columnCount()):
        mode = (
            QHeaderView.ResizeMode.Stretch
            if column == stretch
            else QHeaderView.ResizeMode.ResizeToContents
        )
        header.setSectionResizeMode(column, mode)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


def fill_table(
    table: QTableWidget, rows: list[list[str]], user_data: list[Any] | None = None
) -> None:
    """Replace the table's rows; ``user_data[r]`` goes on every item of row r (UserRole)."""
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            item = QTableWidgetItem(value)
            if user_data is not None:
                item.setData(Qt.ItemDataRole.UserRole, user_data[r])
            table.setItem(r, c, item)


class ReplayTimeline(QWidget):
    """Every image of one attempt on a timeline: scrub, play, jump to each shot."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.status = QLabel("Open an attempt to replay its images.")
        layout.addWidget(self.status)
        self.monitor = MonitorWidget("REPLAY")
        self.monitor.placeholder = "Open an attempt to replay its images."
        layout.addWidget(self.monitor, 1)
        controls = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.shot_jump = QComboBox()
        self.time_label = QLabel("—")
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(QLabel("Jump to"))
        controls.addWidget(self.shot_jump)
        controls.addWidget(self.time_label)
        layout.addLayout(controls)
        self.frames: list[ReplayFrame] = []
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._advance)
        self.play_button.clicked.connect(self.toggle_play)
        self.slider.valueChanged.connect(self.show_index)
        self.shot_jump.activated.connect(self.jump_to_shot)
        self.set_frames([])

    def set_frames(self, frames: list[ReplayFrame]) -> None:
        """(t_s, image, info) of every frame in order; info has ``shot`` and ``view``."""
        self.stop()
        self.frames = frames
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(frames) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.shot_jump.clear()
        seen = set()
        for index, (t_s, _, info) in enumerate(frames):
            shot = info.get("shot")
            if shot not in seen:
                seen.add(shot)
                self.shot_jump.addItem(
                    f"shot {shot} at {t_s:05.1f} s ({info.get('view') or 'free pose'})", index
                )
        for widget in (self.play_button, self.slider, self.shot_jump):
            widget.setEnabled(bool(frames))
        self.show_index(0)

    def jump_to_shot(self, combo_index: int) -> None:
        """Show the first frame of the shot at ``combo_index`` of the jump list."""
        frame_index = self.shot_jump.itemData(combo_index)
        if frame_index is not None:
            self.slider.setValue(int(frame_index))

    def show_index(self, index: int) -> None:
        if not self.frames:
            self.monitor.set_image(None)
            self.monitor.set_overlay(shot_number=0, view_name="")
            self.time_label.setText("—")
            return
        t_s, image, info = self.frames[max(0, min(index, len(self.frames) - 1))]
        self.monitor.set_image(image)
        self.monitor.set_overlay(
            shot_number=int(info.get("shot") or 0),
            view_name=str(info.get("view") or ""),
            beam_on_s=float(info.get("beam_on_s", 0.0)),
            air_kerma_mgy=float(info.get("air_kerma_mgy", 0.0)),
            kap_gycm2=float(info.get("kap_gycm2", 0.0)),
        )
        self.time_label.setText(f"{t_s:6.1f} s  ({index + 1}/{len(self.frames)})")
        self._follow_shot(index)

    def _follow_shot(self, frame_index: int) -> None:
        """Point the "Jump to" box at the shot whose frames are being shown."""
        combo_index = -1
        for i in range(self.shot_jump.count()):
            if int(self.shot_jump.itemData(i)) <= frame_index:
                combo_index = i
        if combo_index >= 0 and combo_index != self.shot_jump.currentIndex():
            self.shot_jump.blockSignals(True)
            self.shot_jump.setCurrentIndex(combo_index)
            self.shot_jump.blockSignals(False)

    def step(self, delta: int) -> None:
        """Show the next (+1) or previous (−1) frame."""
        if self.frames:
            self.stop()
            self.slider.setValue(max(0, min(self.slider.maximum(), self.slider.value() + delta)))

    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.stop()
        elif self.frames:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start(250)
            self.play_button.setText("Pause")

    def stop(self) -> None:
        self.timer.stop()
        self.play_button.setText("Play")

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.stop()
        else:
            self.slider.setValue(self.slider.value() + 1)
