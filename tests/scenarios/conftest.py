"""Fixtures for the scenario tests: the synthetic patient and a renderer stand-in (tests only).

The stand-in renders no anatomy: it returns a small noisy image drawn with the injected generator
(so replays must reproduce the random stream) and a dose record of fixed size per frame, with the
real C-arm projection geometry (for the hands-in-the-beam check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tests.scenarios.synthetic import build_synthetic_patient


@dataclass
class StandInDose:
    """Per-frame dose of the stand-in: 0.1 s beam-on, 0.02 Gy·cm², 0.15 mGy."""

    beam_on_s: float = 0.1
    kap_gycm2: float = 0.02
    air_kerma_mgy: float = 0.15


@dataclass
class StandInFrame:
    """What the session reads from a frame."""

    image: np.ndarray
    dose: Any
    geometry: Any


class StandInRenderer:
    """Tests only: records the calls, draws a noisy image depending on joints and instruments."""

    def __init__(self, patient):
        self.patient = patient
        self.calls: list[tuple[dict, int]] = []

    def render_frame(self, joints, instruments=(), exposure=None, chain_settings=None, rng=None):
        from fluorosim.render import carm, views

        self.calls.append((joints.as_dict(), len(instruments)))
        geometry = carm.carm_geometry(
            joints, "ii9", views.home_isocenter_lps(self.patient), size_px=32
        )
        base = int(abs(hash(joints.key())) % 200)
        noise = rng.integers(0, 50, size=(32, 32)) if rng is not None else 0
        image = np.clip(base + noise + 5 * len(instruments), 0, 255).astype(np.uint8)
        return StandInFrame(image, StandInDose(), geometry)


@pytest.fixture(scope="session")
def synthetic_patient():
    """The synthetic test patient (built once per test session)."""
    return build_synthetic_patient()


@pytest.fixture
def stand_in_renderer(synthetic_patient):
    """A fresh renderer stand-in."""
    return StandInRenderer(synthetic_patient)
