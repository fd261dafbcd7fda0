"""The learning-mode 3D view: the patient's surfaces, the C-arm's beam cone and the instrument.

VTK renders off-screen (pyvista) into an image this widget paints, so the same code runs on a real
display, under Xvfb and in offscreen Qt (OSMesa). Dragging rotates the camera; the wheel zooms.
Rendering happens only when something changed. Hidden in exam mode.
"""

from __future__ import annotations

import time

import numpy as np
import pyvista as pv
from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer
from PyQt6.QtGui import QColor, QImage, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget

#: Colours of surfaces by label-name prefix.
SURFACE_STYLE = {
    "bone": ("#e8dcc0", 1.0),
    "neural": ("#f2d21b", 1.0),
    "vessel": ("#c0392b", 1.0),
    "skin": ("#d9a38c", 0.12),
}


MIN_RENDER_INTERVAL_S = 0.1


def instrument_matrix(
    tip: np.ndarray, direction: np.ndarray, length_mm: float, radius_mm: float
) -> np.ndarray:
    """4x4 placing the unit shaft (z from −1 to 0) with its tip at ``tip`` along ``direction``."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    matrix = np.eye(4)
    matrix[:3, 0] = x * radius_mm
    matrix[:3, 1] = y * radius_mm
    matrix[:3, 2] = z * length_mm
    matrix[:3, 3] = tip
    return matrix


class Scene3DWidget(QWidget):
    """A small off-screen VTK scene shown as an image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.plotter: pv.Plotter | None = None
        self._image: QImage | None = None
        self._dirty = True
        self._drag_from: QPointF | None = None
        self._actors: dict[str, object] = {}
        self.surface_names: list[str] = []
        self._last_render_s = 0.0
        self._render_pending = False
        self.setToolTip("3D view (learning mode): drag to rotate, wheel to zoom")

    def _ensure_plotter(self) -> pv.Plotter:
        if self.plotter is None:
            self.plotter = pv.Plotter(
                off_screen=True, window_size=(max(self.width(), 240), max(self.height(), 200))
            )
            self.plotter.set_background("#1e2226")
            self.plotter.add_axes(labels_off=False)
        return self.plotter

    def set_surfaces(self, surfaces: dict[str, tuple[pv.PolyData, str]]) -> None:
        """Replace the patient surfaces: name → (mesh in LPS mm, style key of SURFACE_STYLE)."""
        plotter = self._ensure_plotter()
        for name in self.surface_names:
            plotter.remove_actor(self._actors.pop(name, None))
        self.surface_names = []
        for name, (mesh, style) in surfaces.items():
            colour, opacity = SURFACE_STYLE.get(style, ("#cccccc", 1.0))
            self._actors[name] = plotter.add_mesh(
                mesh, color=colour, opacity=opacity, smooth_shading=True, name=name
            )
            self.surface_names.append(name)
        plotter.view_vector((0.0, 1.0, 0.3), viewup=(0.0, 0.0, 1.0))
        plotter.reset_camera()
        self._dirty = True
        self.update()

    def set_beam(
        self, source_lps_mm: np.ndarray | None, detector_corners_lps_mm: np.ndarray | None
    ) -> None:
        """Show the beam as a translucent pyramid from the focal spot to the detector corners."""
        plotter = self._ensure_plotter()
        if source_lps_mm is None or detector_corners_lps_mm is None:
            plotter.remove_actor(self._actors.pop("beam", None))
        else:
            points = np.vstack([source_lps_mm, detector_corners_lps_mm])
            faces = np.hstack(
                [[3, 0, 1, 2], [3, 0, 2, 3], [3, 0, 3, 4], [3, 0, 4, 1], [4, 1, 2, 3, 4]]
            )
            self._actors["beam"] = plotter.add_mesh(
                pv.PolyData(points, faces), color="#5dade2", opacity=0.15, name="beam"
            )
        self._dirty = True
        self.update()

    def set_instrument(
        self,
        tip_lps_mm: np.ndarray | None,
        direction_lps: np.ndarray | None,
        length_mm: float = 150.0,
        radius_mm: float = 1.6,
    ) -> None:
        """Show the instrument shaft ending at its tip (None hides it).

        The shaft actor is built once and moved by its transform: a tracked instrument updates
        dozens of times a second and must not rebuild geometry each time.
        """
        plotter = self._ensure_plotter()
        actor = self._actors.get("instrument")
        if tip_lps_mm is None or direction_lps is None:
            if actor is not None:
                actor.SetVisibility(False)
        else:
            if actor is None:
                # a unit-length shaft from z = −1 (handle) to z = 0 (tip), radius 1
                shaft = pv.Cylinder(
                    center=(0.0, 0.0, -0.5), direction=(0.0, 0.0, 1.0), radius=1.0, height=1.0
                )
                actor = plotter.add_mesh(shaft, color="#aab7b8", name="instrument")
                self._actors["instrument"] = actor
            actor.SetVisibility(True)
            actor.user_matrix = instrument_matrix(
                np.asarray(tip_lps_mm, float),
                np.asarray(direction_lps, float),
                length_mm,
                radius_mm,
            )
        self._dirty = True
        self.update()

    def render_image(self) -> QImage:
        """Render (if anything changed, at most ten times a second) and return the image."""
        plotter = self._ensure_plotter()
        now = time.monotonic()
        if (
            self._image is not None
            and self._dirty
            and now - self._last_render_s < MIN_RENDER_INTERVAL_S
        ):
            if not self._render_pending:
                self._render_pending = True
                QTimer.singleShot(int(1000 * MIN_RENDER_INTERVAL_S), self._render_later)
            return self._image
        if self._dirty or self._image is None:
            self._last_render_s = now
            width, height = max(self.width(), 240), max(self.height(), 200)
            plotter.window_size = (width, height)
            pixels = np.ascontiguousarray(plotter.screenshot(return_img=True))
            h, w, _ = pixels.shape
            self._image = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
            self._dirty = False
        return self._image

    def _render_later(self) -> None:
        self._render_pending = False
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#1e2226"))
        if self.isVisible() and self.plotter is not None:
            painter.drawImage(QRectF(self.rect()), self.render_image())
        else:
            painter.setPen(QColor(160, 160, 160))
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter, "3D view: building the patient surfaces…"
            )
        painter.end()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._dirty = True
        super().resizeEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._drag_from = event.position()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._drag_from is None or self.plotter is None:
            return
        delta = event.position() - self._drag_from
        self._drag_from = event.position()
        self.plotter.camera.azimuth -= delta.x() * 0.5
        self.plotter.camera.elevation += delta.y() * 0.5
        self._dirty = True
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._drag_from = None

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.plotter is not None:
            self.plotter.camera.zoom(1.1 if event.angleDelta().y() > 0 else 1 / 1.1)
            self._dirty = True
            self.update()

    def close_scene(self) -> None:
        """Release the VTK window."""
        if self.plotter is not None:
            self.plotter.close()
            self.plotter = None
