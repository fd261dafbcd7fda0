"""Clicks and drags on the live monitor: image pixel → raw detector pixel → skin point on the ray."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

from fluorosim.app.controller import raw_pixel, skin_point_on_ray
from fluorosim.app.widgets.monitor import MonitorWidget
from fluorosim.models.patient import Patient
from fluorosim.render.carm import MonitorOrientation


@pytest.mark.parametrize(
    "orientation",
    [
        MonitorOrientation(),
        MonitorOrientation(flip_horizontal=True),
        MonitorOrientation(flip_vertical=True),
        MonitorOrientation(rotate_quarter_turns=1),
        MonitorOrientation(True, False, 3),
    ],
)
def test_raw_pixel_inverts_the_monitor_orientation(orientation):
    raw = np.zeros((6, 8), np.uint8)
    raw[2, 5] = 255  # a marker at raw (col 5, row 2)
    shown = orientation.apply(raw)
    row, col = np.argwhere(shown == 255)[0]
    # the centre of the shown marker pixel is the centre of raw pixel (5, 2)
    assert raw_pixel(col + 0.5, row + 0.5, shown.shape, orientation) == pytest.approx((5.5, 2.5))
    # an offset inside the pixel turns with the image
    inside = raw_pixel(col + 0.75, row + 0.5, shown.shape, orientation)
    assert np.linalg.norm(np.subtract(inside, (5.5, 2.5))) == pytest.approx(0.25)


def slab_patient() -> Patient:
    """A body from y = −50 to +50 mm (1 mm voxels) in air."""
    labels = np.zeros((40, 160, 40), np.uint8)
    labels[:, 30:130, :] = 1
    lps_from_voxel = np.eye(4)
    lps_from_voxel[:3, 3] = [-20, -80, -20]
    return Patient(
        np.where(labels, 40, -1000).astype(np.int16),
        labels,
        lps_from_voxel,
        {"background": 0, "muscle": 1},
        {},
    )


def test_skin_point_is_the_crossing_nearer_the_instrument():
    patient = slab_patient()
    source = np.array([0.0, -600.0, 0.0])
    pixel = np.array([0.0, 400.0, 0.0])
    near_front = skin_point_on_ray(patient, source, pixel, np.array([0.0, -70.0, 0.0]))
    near_back = skin_point_on_ray(patient, source, pixel, np.array([0.0, 90.0, 0.0]))
    assert near_front[1] == pytest.approx(-50.0, abs=1.0)
    assert near_back[1] == pytest.approx(49.0, abs=1.0)
    assert (
        skin_point_on_ray(
            patient, np.array([500.0, -600.0, 0.0]), np.array([500.0, 400.0, 0.0]), None
        )
        is None
    )


def test_monitor_reports_clicks_and_drags_in_image_pixels(qtbot):
    monitor = MonitorWidget("LIVE")
    qtbot.addWidget(monitor)
    monitor.resize(400, 400)
    monitor.show()
    monitor.set_image(np.zeros((512, 512), np.uint8))
    clicks, drags = [], []
    monitor.clicked.connect(lambda c, r: clicks.append((c, r)))
    monitor.dragged.connect(lambda dx, dy: drags.append((dx, dy)))
    qtbot.mouseClick(monitor, Qt.MouseButton.LeftButton, pos=QPoint(100, 300))
    assert clicks and clicks[0] == pytest.approx((128.0, 384.0), abs=2.0)
    qtbot.mousePress(monitor, Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    qtbot.mouseMove(monitor, QPoint(220, 200))
    qtbot.mouseMove(monitor, QPoint(240, 190))
    qtbot.mouseRelease(monitor, Qt.MouseButton.LeftButton, pos=QPoint(240, 190))
    assert len(clicks) == 1  # a drag is not a click
    total = np.sum(drags, axis=0)
    assert total[0] == pytest.approx(40 * 512 / 400, abs=2) and total[1] < 0
