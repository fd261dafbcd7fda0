"""The learning-mode 3D view: the patient's surfaces, the C-arm's beam cone and the instrument.

VTK renders off-screen (pyvista) on a thread of its own, which owns the plotter; the widget posts
scene changes to it and paints the newest image it delivered. VTK releases the GIL while it renders,
so even a software (OSMesa/llvmpipe) render of a second never stalls the GUI's event loop. The same
code runs on a real display, under Xvfb and in offscreen Qt. Dragging rotates the camera; the wheel
zooms. Hidden in exam mode.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np
import pyvista as pv
import pyvista.plotting  # noqa: F401 - load it here: two render threads importing it lazily can race
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget

#: Colours of surfaces by style.
SURFACE_STYLE = {
    "bone": ("#e8dcc0", 1.0),
    "neural": ("#f2d21b", 1.0),
    "vessel": ("#c0392b", 1.0),
    "skin": ("#d9a38c", 0.12),
}
BACKGROUND = "#1e2226"


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


class SceneRenderThread:
    """Owns the VTK plotter; applies queued scene changes and renders when something changed."""

    def __init__(
        self, deliver: Callable[[QImage], None], size: tuple[int, int] = (320, 240)
    ) -> None:
        self.deliver = deliver
        self.size = size
        self.changes: queue.Queue[Callable[[pv.Plotter], None] | None] = queue.Queue()
        self.actors: dict[str, pv.Actor] = {}
        self.renders = 0
        self.thread = threading.Thread(target=self._run, name="fluorosim-3d", daemon=True)
        self.thread.start()

    def post(self, change: Callable[[pv.Plotter], None]) -> None:
        """Run ``change(plotter)`` on the render thread, then render."""
        self.changes.put(change)

    def stop(self) -> None:
        self.changes.put(None)
        self.thread.join(timeout=10)

    def _run(self) -> None:
        plotter = pv.Plotter(off_screen=True, window_size=self.size)
        plotter.set_background(BACKGROUND)
        plotter.add_axes()
        try:
            while True:
                change = self.changes.get()
                batch = [change]
                while not self.changes.empty():  # coalesce everything queued into one render
                    batch.append(self.changes.get_nowait())
                changes = [item for item in batch if item is not None]
                if len(changes) < len(batch):
                    return
                for item in changes:
                    try:
                        item(plotter)
                    except Exception as error:  # a bad mesh must not kill the view
                        print(f"fluorosim 3D view: {error}")
                plotter.render()  # screenshot() alone returns the previous picture after changes
                pixels = np.ascontiguousarray(plotter.screenshot(return_img=True))
                height, width, _ = pixels.shape
                self.renders += 1
                self.deliver(
                    QImage(  # type: ignore[call-overload]  # PyQt6 takes any buffer; its stub says bytes
                        pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888
                    ).copy()
                )
        finally:
            plotter.close()


class Scene3DWidget(QWidget):
    """A small off-screen VTK scene shown as an image."""

    image_ready = pyqtSignal(QImage)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image: QImage | None = None
        self._drag_from: QPointF | None = None
        self.surface_names: list[str] = []
        self.image_ready.connect(self._show_image)
        self.renderer = SceneRenderThread(self.image_ready.emit)
        self.setToolTip("3D view (learning mode): drag to rotate, wheel to zoom")

    def _show_image(self, image: QImage) -> None:
        self._image = image
        self.update()

    def set_surfaces(self, surfaces: dict[str, tuple[pv.PolyData, str]]) -> None:
        """Replace the patient surfaces: name → (mesh in LPS mm, style key of SURFACE_STYLE)."""
        old_names = list(self.surface_names)
        self.surface_names = list(surfaces)
        actors = self.renderer.actors

        def change(plotter: pv.Plotter) -> None:
            for name in old_names:
                plotter.remove_actor(actors.pop(name, None))
            for name, (mesh, style) in surfaces.items():
                colour, opacity = SURFACE_STYLE.get(style, ("#cccccc", 1.0))
                actors[name] = plotter.add_mesh(
                    mesh, color=colour, opacity=opacity, smooth_shading=True, name=name
                )
            plotter.view_vector((0.0, 1.0, 0.3), viewup=(0.0, 0.0, 1.0))
            plotter.reset_camera()

        self.renderer.post(change)

    def set_beam(
        self, source_lps_mm: np.ndarray | None, detector_corners_lps_mm: np.ndarray | None
    ) -> None:
        """Show the beam as a translucent pyramid from the focal spot to the detector corners."""
        actors = self.renderer.actors

        def change(plotter: pv.Plotter) -> None:
            if source_lps_mm is None or detector_corners_lps_mm is None:
                plotter.remove_actor(actors.pop("beam", None))
                return
            points = np.vstack([source_lps_mm, detector_corners_lps_mm])
            faces = np.hstack(
                [[3, 0, 1, 2], [3, 0, 2, 3], [3, 0, 3, 4], [3, 0, 4, 1], [4, 1, 2, 3, 4]]
            )
            actors["beam"] = plotter.add_mesh(
                pv.PolyData(points, faces), color="#5dade2", opacity=0.15, name="beam"
            )

        self.renderer.post(change)

    def set_instrument(
        self,
        tip_lps_mm: np.ndarray | None,
        direction_lps: np.ndarray | None,
        length_mm: float = 150.0,
        radius_mm: float = 1.6,
    ) -> None:
        """Show the instrument shaft ending at its tip (None hides it); moved by its transform."""
        actors = self.renderer.actors
        matrix = (
            None
            if tip_lps_mm is None or direction_lps is None
            else instrument_matrix(
                np.asarray(tip_lps_mm, float),
                np.asarray(direction_lps, float),
                length_mm,
                radius_mm,
            )
        )

        def change(plotter: pv.Plotter) -> None:
            actor = actors.get("instrument")
            if matrix is None:
                if actor is not None:
                    actor.SetVisibility(False)
                return
            if actor is None:
                # a unit-length shaft from z = −1 (handle) to z = 0 (tip), radius 1
                shaft = pv.Cylinder(
                    center=(0.0, 0.0, -0.5), direction=(0.0, 0.0, 1.0), radius=1.0, height=1.0
                )
                actor = actors["instrument"] = plotter.add_mesh(
                    shaft, color="#aab7b8", name="instrument"
                )
            actor.SetVisibility(True)
            actor.user_matrix = matrix

        self.renderer.post(change)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(BACKGROUND))
        if self._image is not None:
            painter.drawImage(QRectF(self.rect()), self._image)
        else:
            painter.setPen(QColor(160, 160, 160))
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter, "3D view: building the patient surfaces…"
            )
        painter.end()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        size = (max(self.width(), 240), max(self.height(), 200))

        def change(plotter: pv.Plotter) -> None:
            plotter.window_size = size

        self.renderer.post(change)
        super().resizeEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._drag_from = event.position()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._drag_from is None:
            return
        delta = event.position() - self._drag_from
        self._drag_from = event.position()

        def change(plotter: pv.Plotter) -> None:
            plotter.camera.azimuth -= delta.x() * 0.5
            plotter.camera.elevation += delta.y() * 0.5

        self.renderer.post(change)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._drag_from = None

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        factor = 1.1 if event.angleDelta().y() > 0 else 1 / 1.1
        self.renderer.post(lambda plotter: plotter.camera.zoom(factor))

    def close_scene(self) -> None:
        """Stop the render thread and release the VTK window."""
        self.renderer.stop()
