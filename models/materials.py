"""Linear attenuation coefficients of the tissues and instrument materials the simulator renders.

The table is the NIST XCOM table (Berger et al., XCOM: Photon Cross Sections Database, NIST SRD 8;
linear attenuation in cm⁻¹), at
50, 60, 70 and 80 keV, for the densities listed there. Between tabulated energies (and a little
beyond them, 30–150 keV) μ is interpolated linearly in log(μ)–log(E): photo-electric and Compton
attenuation are close to power laws there, and none of these materials has an absorption edge in
that range (the highest, Ni K at 8.3 keV and Fe K at 7.1 keV, lie far below).

Public API: ``MATERIALS`` (names), ``DENSITY_G_PER_CM3``, ``mu_per_mm(material, energy_kev)``,
``MaterialError``. Units: energy in keV, μ in mm⁻¹ (the table is in cm⁻¹; divided by 10).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Tabulated photon energies (keV) of ``_MU_PER_CM``.
TABLE_ENERGIES_KEV: tuple[float, ...] = (50.0, 60.0, 70.0, 80.0)

#: Linear attenuation coefficient in cm⁻¹ at ``TABLE_ENERGIES_KEV`` (NIST XCOM via anatomy.md).
_MU_PER_CM: dict[str, tuple[float, float, float, float]] = {
    "water": (0.227, 0.206, 0.193, 0.184),
    "adipose": (0.202, 0.188, 0.178, 0.171),
    "muscle": (0.239, 0.216, 0.202, 0.192),
    "cortical_bone": (0.815, 0.604, 0.494, 0.428),
    "titanium": (5.47, 3.45, 2.42, 1.83),
    "ti6al4v": (5.17, 3.28, 2.30, 1.75),
    "steel_316l": (16.5, 10.1, 6.85, 4.98),
    "nitinol": (12.3, 7.58, 5.15, 3.77),
}

#: Densities (g/cm³) that the table above assumes (anatomy.md).
DENSITY_G_PER_CM3: dict[str, float] = {
    "water": 1.00,
    "adipose": 0.95,
    "muscle": 1.05,
    "cortical_bone": 1.92,
    "titanium": 4.51,
    "ti6al4v": 4.43,
    "steel_316l": 8.0,
    "nitinol": 6.45,
}

#: Material names accepted by :func:`mu_per_mm`.
MATERIALS: tuple[str, ...] = tuple(_MU_PER_CM)

#: Energy range (keV) over which the log-log interpolation/extrapolation is trusted.
ENERGY_RANGE_KEV: tuple[float, float] = (30.0, 150.0)

_LOG_E = np.log(np.asarray(TABLE_ENERGIES_KEV))


class MaterialError(ValueError):
    """An unknown material name or an energy outside the trusted range."""


def _check_material(material: str) -> None:
    if material not in _MU_PER_CM:
        raise MaterialError(
            f"unknown material {material!r}; expected one of: {', '.join(MATERIALS)}"
        )


def mu_per_mm(material: str, energy_kev: float | ArrayLike) -> float | NDArray[np.float64]:
    """Linear attenuation coefficient (mm⁻¹) of ``material`` at ``energy_kev``.

    Log-log interpolation of the XCOM table; beyond 50/80 keV the end segments are extended
    (power-law extrapolation), allowed within ``ENERGY_RANGE_KEV``. Scalar in → float out.
    """
    _check_material(material)
    energy = np.asarray(energy_kev, dtype=np.float64)
    low, high = ENERGY_RANGE_KEV
    if not np.all(np.isfinite(energy)) or np.any(energy < low) or np.any(energy > high):
        raise MaterialError(
            f"energy {str(energy_kev)} keV is outside the supported range {low:g}–{high:g} keV"
        )
    log_mu = np.log(np.asarray(_MU_PER_CM[material]) / 10.0)
    log_e = np.log(energy)
    # segment index: 0..2, extended at both ends for extrapolation
    index = np.clip(np.searchsorted(_LOG_E, log_e) - 1, 0, len(_LOG_E) - 2)
    slope = (log_mu[index + 1] - log_mu[index]) / (_LOG_E[index + 1] - _LOG_E[index])
    result = np.exp(log_mu[index] + slope * (log_e - _LOG_E[index]))
    if result.ndim == 0:
        return float(result)
    out: NDArray[np.float64] = result
    return out


def tabulated_mu_per_cm(material: str) -> dict[float, float]:
    """The raw table row for ``material``: {energy keV: μ cm⁻¹} (for reports and tests)."""
    _check_material(material)
    return dict(zip(TABLE_ENERGIES_KEV, _MU_PER_CM[material], strict=True))
