"""The projection matrix agrees with the explicit ray–plane intersection."""

import numpy as np

from fluorosim.render.geometry import ProjectionGeometry


def simple_geometry() -> ProjectionGeometry:
    # source 600 mm below the origin (anterior, −y), detector plane 400 mm above (posterior, +y)
    return ProjectionGeometry(
        source_lps_mm=np.array([0.0, -600.0, 0.0]),
        detector_origin_lps_mm=np.array([-150.0 + 0.25, 400.0, -150.0 + 0.25]),
        detector_u_lps=np.array([1.0, 0.0, 0.0]),
        detector_v_lps=np.array([0.0, 0.0, 1.0]),
        pixel_mm=0.5,
        width_px=600,
        height_px=600,
    ).validate()


def test_pixel_centre_projects_to_itself_and_origin_to_centre():
    geometry = simple_geometry()
    centres = geometry.pixel_centers_lps()
    assert np.allclose(geometry.project(centres[7, 11]), [11, 7])
    assert np.allclose(geometry.project(np.zeros(3)), [299.5, 299.5])
    assert geometry.sid_mm == 1000.0
    assert np.isclose(geometry.magnification_at(np.zeros(3)), 1000 / 600)


def test_projection_matches_ray_intersection():
    geometry = simple_geometry()
    point = np.array([20.0, 30.0, -15.0])
    ray = point - geometry.source_lps_mm
    t = (400.0 - geometry.source_lps_mm[1]) / ray[1]
    hit = geometry.source_lps_mm + t * ray
    expected = (hit - geometry.detector_origin_lps_mm) / 0.5
    assert np.allclose(geometry.project(point), [expected[0], expected[2]])
    resized = geometry.resized(300, 300)
    assert np.allclose(resized.project(point), (geometry.project(point) + 0.5) / 2 - 0.5)
