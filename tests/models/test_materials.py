"""μ table: reproduces the XCOM values at the tabulated energies and interpolates log-log."""

import math

import numpy as np
import pytest

from fluorosim.models import materials


@pytest.mark.parametrize("material", materials.MATERIALS)
def test_tabulated_values_are_reproduced_in_per_mm(material):
    for energy_kev, mu_per_cm in materials.tabulated_mu_per_cm(material).items():
        assert materials.mu_per_mm(material, energy_kev) == pytest.approx(mu_per_cm / 10, rel=1e-12)


def test_interpolation_is_log_log_between_table_points():
    # halfway in log E between 50 and 60 keV the log of μ is the mean of the end logs
    energy = math.sqrt(50 * 60)
    expected = math.sqrt(16.5 * 10.1) / 10
    assert materials.mu_per_mm("steel_316l", energy) == pytest.approx(expected, rel=1e-12)


def test_mu_falls_with_energy_and_metals_outrank_bone():
    energies = np.linspace(35, 120, 30)
    for material in materials.MATERIALS:
        mu = materials.mu_per_mm(material, energies)
        assert np.all(np.diff(mu) < 0), material
    at_60 = {m: materials.mu_per_mm(m, 60.0) for m in materials.MATERIALS}
    assert (
        at_60["steel_316l"]
        > at_60["nitinol"]
        > at_60["titanium"]
        > at_60["ti6al4v"]
        > at_60["cortical_bone"]
        > at_60["muscle"]
        > at_60["water"]
        > at_60["adipose"]
    )


def test_mass_attenuation_of_water_and_bone_is_consistent_with_density():
    # μ/ρ of cortical bone exceeds water's at diagnostic energies (photo-electric effect of Ca)
    water = materials.mu_per_mm("water", 60.0) / materials.DENSITY_G_PER_CM3["water"]
    bone = materials.mu_per_mm("cortical_bone", 60.0) / materials.DENSITY_G_PER_CM3["cortical_bone"]
    assert bone > water


def test_unknown_material_and_bad_energy_give_clear_errors():
    with pytest.raises(materials.MaterialError, match="unknown material 'lead'"):
        materials.mu_per_mm("lead", 60.0)
    with pytest.raises(materials.MaterialError, match="outside the supported range"):
        materials.mu_per_mm("water", 10.0)
    with pytest.raises(materials.MaterialError, match="outside the supported range"):
        materials.mu_per_mm("water", float("nan"))
