"""A C-arm monitor: the fluoroscopy image with its overlay (shot, view, kV/mA, mode, time, dose).

The image is a uint8 numpy array from the renderer; the widget scales it to fit, keeps its aspect,
and paints at the screen's device pixel ratio so it stays sharp on high-DPI displays. The overlay
text is sized in logical pixels from the monitor's size (1/36 of its side, never under 13 px), so it
keeps its proportion on a small laptop and a large monitor, and its physical size on a high-DPI
screen (Qt scales logical pixels by the device pixel ratio); it sits on a dark band so it stays
readable over bright bone. An "X-RAY ON"
indicator lights while the beam is on; when the pedal is released the last image stays (last-image
hold) with "LIH" in the corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

MIN_OVERLAY_PX = 13
#: Overlay fields a pinned reference image keeps from the live monitor.
PINNED_FIELDS: tuple[str, ...] = ("shot_number", "view_name", "kvp", "ma", "mode", "beam_on_s")
PINNED_FIELDS += ("air_kerma_mgy", "kap_gycm2")


def kap_text(kap_gycm2: float) -> str:
    """Kerma-area product as the window shows it everywhere (monitor, counters, status bar):
    dGy·cm², the unit published procedure doses are given in (e.g. ≈29 dGy·cm² for a
    transforaminal endoscopic discectomy)."""
    return f"{kap_gycm2 * 10.0:.2f} dGy·cm²"


@dataclass
class MonitorOverlay:
    """The text shown over the image."""

    title: str = "LIVE"
    shot_number: int = 0
    view_name: str = ""  # shown in learning mode only
    kvp: float = 0.0
    ma: float = 0.0
    mode: str = ""
    beam_on_s: float = 0.0
    air_kerma_mgy: float = 0.0
    kap_gycm2: float = 0.0
    last_image_hold: bool = False


class MonitorWidget(QWidget):
    """One monitor of the C-arm cart; reports clicks and drags in image pixels (col, row)."""

    clicked = pyqtSignal(float, float)  # image column, row of a click (no drag)
    dragged = pyqtSignal(float, float)  # drag step in image pixels (right, down)

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.overlay = MonitorOverlay(title=title)
        self.image: np.ndarray | None = None
        self._qimage: QImage | None = None
        self.xray_on = False
        self.placeholder = "No image yet — press Space for fluoroscopy or F for a single shot."
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAccessibleName(f"{title} monitor")
        self._press: QPointF | None = None
        self._last: QPointF | None = None
        self._dragging = False

    def image_rect(self) -> QRectF:
        """Where the image is drawn in the widget (square, centred)."""
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_image(self, point: QPointF) -> tuple[float, float] | None:
        """Image (col, row) under a widget point, or None outside the image."""
        if self.image is None:
            return None
        rect = self.image_rect()
        if not rect.contains(point):
            return None
        height, width = self.image.shape
        return (
            (point.x() - rect.x()) / rect.width() * width,
            (point.y() - rect.y()) / rect.height() * height,
        )

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._press = self._last = event.position()
        self._dragging = False

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._last is None or self.image is None:
            return
        position = event.position()
        if (position - self._press).manhattanLength() > 4:
            self._dragging = True
        if self._dragging:
            scale = self.image.shape[1] / max(1.0, self.image_rect().width())
            self.dragged.emit(
                (position.x() - self._last.x()) * scale, (position.y() - self._last.y()) * scale
            )
        self._last = position

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._press is not None and not self._dragging:
            pixel = self.to_image(event.position())
            if pixel is not None:
                self.clicked.emit(*pixel)
        self._press = self._last = None
        self._dragging = False

    def set_image(self, image: np.ndarray | None) -> None:
        """Show a uint8 (H, W) image (None clears the monitor)."""
        if image is None:
            self.image = None
            self._qimage = None
        else:
            self.image = np.ascontiguousarray(image, dtype=np.uint8)
            height, width = self.image.shape
            self._qimage = QImage(  # type: ignore[call-overload]  # any buffer; the stub says bytes
                self.image.data, width, height, width, QImage.Format.Format_Grayscale8
            ).copy()
        self.update()

    def set_overlay(self, **values: object) -> None:
        """Update overlay fields by name."""
        for key, value in values.items():
            setattr(self.overlay, key, value)
        self.update()

    def pin_from(self, live: MonitorWidget, image: np.ndarray) -> None:
        """Show a copy of ``image`` with the live monitor's overlay (all but its title and LIH)."""
        self.set_image(image.copy())
        self.set_overlay(**{k: getattr(live.overlay, k) for k in PINNED_FIELDS})

    def set_xray_on(self, on: bool) -> None:
        """Light or clear the X-RAY ON indicator."""
        self.xray_on = on
        self.update()

    def overlay_lines(self) -> tuple[list[str], list[str]]:
        """The overlay text (left column, right column), as painted — tests read this."""
        o = self.overlay
        left = [o.title]
        if o.shot_number:
            left.append(f"Shot {o.shot_number}")
        if o.view_name:
            left.append(o.view_name)
        right = []
        if o.kvp:
            right.append(f"{o.kvp:.0f} kV  {o.ma:.1f} mA")
        if o.mode:
            right.append(o.mode)
        right.append(f"Fluoro {int(o.beam_on_s // 60):02d}:{o.beam_on_s % 60:04.1f}")
        right.append(f"{o.air_kerma_mgy:.2f} mGy  {kap_text(o.kap_gycm2)}")
        if o.last_image_hold:
            right.append("LIH")
        return left, right

    def overlay_font(self) -> QFont:
        """The overlay's font: 1/36 of the monitor's side in logical pixels, at least 13 px."""
        font = QFont(self.font())
        font.setPixelSize(max(MIN_OVERLAY_PX, round(min(self.width(), self.height()) / 36)))
        return font

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        if self._qimage is not None:
            target = self.image_rect()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, self._qimage)
        else:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
        painter.setFont(self.overlay_font())
        metrics = painter.fontMetrics()
        left, right = self.overlay_lines()
        band = QColor(0, 0, 0, 150)
        for lines, at_right in ((left, False), (right, True)):
            width = max((metrics.horizontalAdvance(line) for line in lines), default=0) + 12
            x = self.width() - width - 2 if at_right else 2
            painter.fillRect(QRectF(x, 2, width, len(lines) * metrics.height() + 12), band)
        painter.setPen(QColor(255, 214, 0))
        for index, line in enumerate(left):
            painter.drawText(8, 8 + metrics.ascent() + index * metrics.height(), line)
        for index, line in enumerate(right):
            width = metrics.horizontalAdvance(line)
            painter.drawText(
                self.width() - width - 8, 8 + metrics.ascent() + index * metrics.height(), line
            )
        if self.xray_on:
            label = "X-RAY ON"
            box = QRectF(
                8,
                self.height() - metrics.height() - 16,
                metrics.horizontalAdvance(label) + 16,
                metrics.height() + 8,
            )
            painter.fillRect(box, QColor(200, 0, 0))
            painter.setPen(QPen(QColor(255, 255, 255)))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        painter.end()
