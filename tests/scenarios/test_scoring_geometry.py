"""Scoring geometry against analytic answers: shaft sampling, depths, distances, angles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluorosim.models.patient import Patient
from fluorosim.scenarios.attempt import PoseSample
from fluorosim.scenarios.scoring.composite import composite_score
from fluorosim.scenarios.scoring.geometry import (
    distance_to_labels_mm,
    path_in_tissue_mm,
    segment_distance_mm,
    shaft_points,
    trajectory_errors_deg,
)
from fluorosim.scenarios.scoring.report import Metric
from fluorosim.scenarios.scoring.steps import count_withdrawals_and_redirections


def slab_patient() -> Patient:
    """1 mm voxels, 60³: body everywhere except a 10 mm air margin; a 'root' slab x∈[30, 34]."""
    labels = np.zeros((60, 60, 60), dtype=np.uint8)
    labels[10:50, 10:50, 10:50] = 1  # muscle
    labels[30:35, 10:50, 10:50] = 2  # root (5 voxels: x = 30..34)
    return Patient(
        np.zeros_like(labels, dtype=np.int16),
        labels,
        np.eye(4),
        {"background": 0, "muscle": 1, "root_L5_left": 2},
        {},
    )


def test_shaft_stops_at_the_skin_and_measures_the_path_in_tissue():
    patient = slab_patient()
    tip = np.array([40.0, 30.0, 30.0])
    points = shaft_points(patient, tip, np.array([1.0, 0.0, 0.0]), 100.0)
    # from x = 40 back to x = 10 (last voxel inside is x = 10, voxel faces at 9.5)
    assert path_in_tissue_mm(points) == pytest.approx(30.0, abs=0.5)
    assert np.allclose(points[0], tip)


def test_distance_to_a_slab_is_the_analytic_gap():
    patient = slab_patient()
    for x, expected in ((20.0, 10.0), (27.0, 3.0), (32.0, 0.0), (40.0, 6.0)):
        got = distance_to_labels_mm(patient, np.array([[x, 30.0, 30.0]]), [2])
        assert got == pytest.approx(expected, abs=1e-6)
    assert distance_to_labels_mm(patient, np.array([[15.0, 30.0, 30.0]]), [2], cap_mm=5.0) == 5.0


def test_segment_distance_exact_cases():
    assert segment_distance_mm([0, 0, 0], [10, 0, 0], [5, -5, 3], [5, 5, 3]) == pytest.approx(3.0)
    assert segment_distance_mm([0, 0, 0], [1, 0, 0], [3, 0, 0], [4, 0, 0]) == pytest.approx(2.0)
    assert segment_distance_mm([0, 0, 0], [0, 0, 10], [4, 0, 0], [4, 0, 10]) == pytest.approx(4.0)
    skew = segment_distance_mm([0, 0, 0], [10, 10, 0], [0, 10, 7], [10, 0, 7])
    assert skew == pytest.approx(7.0)


def test_trajectory_errors_split_axial_and_sagittal():
    planned = np.array([-1.0, 0.0, 0.0])
    tilted = np.array([-math.cos(math.radians(20)), 0.0, math.sin(math.radians(20))])
    axial, sagittal = trajectory_errors_deg(tilted, planned)
    assert axial == pytest.approx(0.0, abs=1e-9)
    assert sagittal == pytest.approx(20.0)  # a medial pin tilted 20° cranially
    turned = np.array([-math.cos(math.radians(15)), math.sin(math.radians(15)), 0.0])
    axial, _ = trajectory_errors_deg(turned, planned)
    assert axial == pytest.approx(15.0)
    planned_ap = np.array([0.0, -1.0, 0.0])
    cranial = np.array([0.0, -math.cos(math.radians(12)), math.sin(math.radians(12))])
    _, sagittal = trajectory_errors_deg(cranial, planned_ap)
    assert sagittal == pytest.approx(12.0)


def test_withdrawal_and_redirection_counting():
    d = np.array([1.0, 0.0, 0.0])
    turned = np.array([math.cos(math.radians(8)), math.sin(math.radians(8)), 0.0])
    poses = [
        PoseSample(float(i), "pin", np.zeros(3), v, "s") for i, v in enumerate([d, d, d, d, turned])
    ]
    depths = [5.0, 20.0, 15.0, 25.0, 25.0]
    assert count_withdrawals_and_redirections(poses, depths) == (1, 1)
    assert count_withdrawals_and_redirections(poses[:2], depths[:2]) == (0, 0)


def test_composite_is_the_weighted_mean_of_measured_credits():
    metrics = [
        Metric("a", 1, "", "", True, weight=2.0),
        Metric("b", 1, "", "", False, weight=1.0),
        Metric("c", 1, "", "", True, weight=1.0, credit=0.5),
        Metric("d", None, "", "", None, weight=5.0),  # not measured: left out
    ]
    assert composite_score(metrics) == pytest.approx(100.0 * (2.0 + 0.0 + 0.5) / 4.0)


def test_a_breach_is_visible_only_on_shots_whose_field_holds_the_tip(synthetic_patient):
    from fluorosim.scenarios.attempt import ShotRecord
    from fluorosim.scenarios.scoring.breaches import tip_in_field

    ap = ShotRecord(1, 0.0, {"orbital_deg": 0.0}, "ap", "single", "s")
    lateral = ShotRecord(2, 0.0, {"orbital_deg": 90.0}, "lateral", "single", "s")
    home = synthetic_patient.landmark("S1_superior_endplate_center")
    assert tip_in_field(synthetic_patient, ap, home)
    # 9" intensifier: ≈230 mm field at the detector, ≈1.8× magnification → ≈65 mm radius at the
    # isocentre; 100 mm to the side is outside the AP field but inside the lateral's (along the beam)
    aside = home + np.array([100.0, 0.0, 0.0])
    assert not tip_in_field(synthetic_patient, ap, aside)
    assert tip_in_field(synthetic_patient, lateral, aside)
