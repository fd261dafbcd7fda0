"""The X-ray beam as a spectrum: a filtered tungsten-anode spectrum per kVp, and the primary
transmission of a two-material (water / cortical bone) path through the patient.

A C-arm's beam is not one energy. Its low-energy photons are absorbed first, so the beam hardens
along its path: through 400 mm of pelvis the photons that arrive have a much higher mean energy
than those that entered, and they are attenuated less than a single effective energy predicts.
That is why a real lateral pelvis is not photon-starved at the tube's rate limit, and why the
dose-rate control raises the kVp for it (Bushberg et al., *The Essential Physics of Medical
Imaging*, 3rd ed.: x-ray spectra, beam hardening, automatic brightness control).

Model (stated so that anyone can check it):

1. **Spectrum.** Kramers' thick-target law for the bremsstrahlung photon fluence per keV,
   Φ(E) ∝ (kVp − E) / E (Kramers 1923; Bushberg ch. 6), in 1 keV bins from ``MIN_ENERGY_KEV`` to
   the kVp, through ``FILTRATION_MM_AL`` of aluminium (the tube's inherent filtration) and
   ``FILTRATION_MM_CU`` of copper (the added filter of a modern C-arm). Tungsten's K lines
   (59–69 keV, a few per cent of the photons above 70 kVp) and the anode's self-absorption are
   left out: the filtration stands in for the latter. The half-value layer at 80 kVp is then
   4.1 mm Al (:func:`half_value_layer_mm_al`), above the 2.9 mm Al that US rules require of a
   fluoroscope at 80 kVp (21 CFR 1020.30(m)).
2. **Attenuation.** Mass attenuation coefficients of water, ICRU-44 cortical bone (1.92 g/cm³),
   aluminium and copper, and the mass energy-absorption coefficient of air, from the NIST tables (Hubbell &
   Seltzer, NISTIR 5632, 1995; the same values as XCOM, Berger et al.), 10–150 keV, interpolated
   log–log between tabulated energies. At 50–80 keV they agree with the simulator's material
   table (models.materials, reference anatomy.md) to the table's three digits.
3. **Two materials.** Every voxel's attenuation is a water part plus a cortical-bone part
   (render.attenuation.bone_fraction): a ray's path is ``water_mm`` of water and ``bone_mm`` of
   cortical bone, and its primary transmission is Σ Φ'(E)·exp(−water_mm·μ_w(E) − bone_mm·μ_b(E))
   with Φ' the normalised spectrum (:meth:`Beam.transmission`). The detector counts photons
   (quantum-limited; the intensifier's energy weighting and absorption efficiency are left out).

:class:`Beam` holds one kVp's spectrum and a table of ln T over (water_mm, bone_mm), read
bilinearly per pixel (:meth:`Beam.transmission_line_integrals`): −ln T is the line integral that
the image chain turns back into T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

#: Lowest photon energy of the spectrum (keV): below it a filtered beam carries nothing (4 mm Al
#: transmits e^-28 at 10 keV).
MIN_ENERGY_KEV = 10.0
#: Inherent filtration of the tube (mm Al) and the C-arm's added copper filter (mm Cu): with them
#: the half-value layer at 80 kVp is 4.1 mm Al (module docstring).
FILTRATION_MM_AL = 3.0
FILTRATION_MM_CU = 0.1

#: Mass attenuation μ/ρ (cm²/g) of water, ICRU-44 cortical bone, aluminium and copper, and the
#: mass energy-absorption coefficient μen/ρ of dry air (Hubbell & Seltzer 1995), at _TABLE_KEV;
#: cortical bone also at 70 keV (XCOM via anatomy.md: log-log interpolation between 60 and
#: 80 keV would be 1.7 % high there).
_TABLE_KEV = (10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0)
_BONE_TABLE_KEV = (10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 100.0, 150.0)
_MASS_ATTENUATION_CM2_PER_G: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "water": (
        _TABLE_KEV,
        (5.329, 1.673, 0.8096, 0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505),
    ),
    "cortical_bone": (
        _BONE_TABLE_KEV,
        (28.51, 9.032, 4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2573, 0.2229, 0.1855, 0.1480),
    ),
    "aluminium": (
        _TABLE_KEV,
        (26.23, 7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378),
    ),
    "copper": (
        _TABLE_KEV,
        (215.9, 74.05, 33.79, 10.92, 4.862, 2.613, 1.593, 0.7630, 0.4584, 0.2217),
    ),
}
_AIR_MASS_ENERGY_ABSORPTION_CM2_PER_G = (
    _TABLE_KEV,
    (4.742, 1.334, 0.5389, 0.1537, 0.06833, 0.04098, 0.03041, 0.02407, 0.02325, 0.02496),
)
_DENSITY_G_PER_CM3 = {"water": 1.0, "cortical_bone": 1.92, "aluminium": 2.699, "copper": 8.96}
_KEV_TO_J = 1.602176634e-16

#: The ln-T table's grid: water 0 … WATER_TABLE_MAX_MM, cortical bone 0 … BONE_TABLE_MAX_MM
#: (beyond them ln T is extended linearly along the last step).
WATER_TABLE_MAX_MM = 1000.0
WATER_TABLE_STEP_MM = 2.0
BONE_TABLE_MAX_MM = 200.0
BONE_TABLE_STEP_MM = 0.5


def _log_log(
    table: tuple[tuple[float, ...], tuple[float, ...]], energy_kev: NDArray[np.float64]
) -> NDArray[np.float64]:
    energies, coefficients = table
    values: NDArray[np.float64] = np.exp(
        np.interp(np.log(energy_kev), np.log(energies), np.log(coefficients))
    )
    return values


def mu_per_mm(material: str, energy_kev: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Linear attenuation (mm⁻¹) of water, cortical bone, aluminium or copper at ``energy_kev``."""
    if material not in _MASS_ATTENUATION_CM2_PER_G:
        raise ValueError(f"no spectrum table for {material!r}")
    energy = np.asarray(energy_kev, dtype=np.float64)
    if np.any(energy < _TABLE_KEV[0]) or np.any(energy > _TABLE_KEV[-1]):
        raise ValueError(f"energy outside {_TABLE_KEV[0]:g}–{_TABLE_KEV[-1]:g} keV")
    mass = _log_log(_MASS_ATTENUATION_CM2_PER_G[material], energy)
    mu: NDArray[np.float64] = mass * _DENSITY_G_PER_CM3[material] / 10.0
    return mu


def air_kerma_per_photon_ugy_mm2(energy_kev: NDArray[np.float64]) -> NDArray[np.float64]:
    """Air kerma (µGy) that one photon per mm² delivers: E · (μen/ρ)air."""
    mu_en = _log_log(_AIR_MASS_ENERGY_ABSORPTION_CM2_PER_G, np.asarray(energy_kev, np.float64))
    gy_m2 = np.asarray(energy_kev) * _KEV_TO_J * mu_en * 0.1  # cm²/g → m²/kg
    per: NDArray[np.float64] = gy_m2 * 1e6 * 1e6  # Gy·m² → µGy·mm²
    return per


def filtered_spectrum(
    kvp: float,
    filtration_mm_al: float = FILTRATION_MM_AL,
    filtration_mm_cu: float = FILTRATION_MM_CU,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(bin centres keV, photon fluence per bin, summing to 1) of the filtered Kramers spectrum."""
    if not (math.isfinite(kvp) and MIN_ENERGY_KEV + 1.0 < kvp <= _TABLE_KEV[-1]):
        raise ValueError(f"kVp must lie in {MIN_ENERGY_KEV + 1:g}–{_TABLE_KEV[-1]:g}, got {kvp!r}")
    if not (filtration_mm_al >= 0 and filtration_mm_cu >= 0):
        raise ValueError(
            f"filtration must be ≥ 0 mm, got {filtration_mm_al!r} mm Al, {filtration_mm_cu!r} mm Cu"
        )
    edges = np.arange(MIN_ENERGY_KEV, kvp, 1.0)
    edges = np.append(edges, kvp)
    centres = 0.5 * (edges[1:] + edges[:-1])
    widths = np.diff(edges)
    fluence = (kvp - centres) / centres * widths
    fluence *= np.exp(
        -mu_per_mm("aluminium", centres) * filtration_mm_al
        - mu_per_mm("copper", centres) * filtration_mm_cu
    )
    return centres, fluence / fluence.sum()


@dataclass(frozen=True)
class Beam:
    """One kVp's filtered spectrum and the primary transmission of water + bone paths."""

    kvp: float
    filtration_mm_al: float = FILTRATION_MM_AL
    filtration_mm_cu: float = FILTRATION_MM_CU
    energies_kev: NDArray[np.float64] = field(init=False, repr=False)
    fluence: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        energies, fluence = filtered_spectrum(
            self.kvp, self.filtration_mm_al, self.filtration_mm_cu
        )
        object.__setattr__(self, "energies_kev", energies)
        object.__setattr__(self, "fluence", fluence)

    @cached_property
    def _log_table(self) -> NDArray[np.float32]:
        """ln T on the (water, bone) grid, computed when a frame first needs it (~10 ms)."""
        water_mm = np.arange(0.0, WATER_TABLE_MAX_MM + WATER_TABLE_STEP_MM / 2, WATER_TABLE_STEP_MM)
        bone_mm = np.arange(0.0, BONE_TABLE_MAX_MM + BONE_TABLE_STEP_MM / 2, BONE_TABLE_STEP_MM)
        mu_w = mu_per_mm("water", self.energies_kev)
        mu_b = mu_per_mm("cortical_bone", self.energies_kev)
        table = np.empty((water_mm.size, bone_mm.size), np.float32)
        bone_part = np.exp(-np.outer(bone_mm, mu_b)) * self.fluence  # (nb, nE)
        for i, w in enumerate(water_mm):
            transmitted = bone_part @ np.exp(-w * mu_w)
            table[i] = np.log(np.maximum(transmitted, 1e-300))
        return table

    # -- exact sums --------------------------------------------------------------------------
    def transmission(
        self, water_mm: NDArray[Any] | float, bone_mm: NDArray[Any] | float = 0.0
    ) -> NDArray[np.float64]:
        """Primary photon transmission Σ Φ'(E) exp(−water·μ_w(E) − bone·μ_b(E)), summed exactly."""
        water = np.asarray(water_mm, dtype=np.float64)[..., None]
        bone = np.asarray(bone_mm, dtype=np.float64)[..., None]
        mu_w = mu_per_mm("water", self.energies_kev)
        mu_b = mu_per_mm("cortical_bone", self.energies_kev)
        out: NDArray[np.float64] = np.exp(-water * mu_w - bone * mu_b) @ self.fluence
        return out

    def mean_energy_kev(self, water_mm: float = 0.0) -> float:
        """Photon-mean energy of the beam after ``water_mm`` of water."""
        weights = self.fluence * np.exp(-water_mm * mu_per_mm("water", self.energies_kev))
        return float(weights @ self.energies_kev / weights.sum())

    def photons_per_mm2_per_ugy(self) -> float:
        """Photon fluence per air kerma of the beam as it leaves the tube (photons/(mm²·µGy))."""
        return float(1.0 / (self.fluence @ air_kerma_per_photon_ugy_mm2(self.energies_kev)))

    def effective_water_mu_per_mm(self, water_mm: float) -> float:
        """−ln T / thickness of a water slab: the beam's effective μ of water through it."""
        if water_mm <= 0:
            return float(self.fluence @ mu_per_mm("water", self.energies_kev))
        return float(-math.log(float(self.transmission(water_mm))) / water_mm)

    # -- per pixel -----------------------------------------------------------------------------
    def transmission_line_integrals(
        self, water_mm: NDArray[np.float32], bone_mm: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        """−ln T per pixel (float32), from the ln-T table read bilinearly (module docstring)."""
        water = np.ascontiguousarray(water_mm, dtype=np.float32)
        bone = np.ascontiguousarray(bone_mm, dtype=np.float32)
        if water.shape != bone.shape:
            raise ValueError(f"water {water.shape} and bone {bone.shape} paths differ in shape")
        flat = _table_lookup(
            water.ravel(),
            bone.ravel(),
            self._log_table,
            1.0 / WATER_TABLE_STEP_MM,
            1.0 / BONE_TABLE_STEP_MM,
        )
        return flat.reshape(water.shape)


@njit(cache=True, nogil=True, parallel=True)
def _table_lookup(
    water: NDArray[np.float32],
    bone: NDArray[np.float32],
    log_table: NDArray[np.float32],
    per_water_step: float,
    per_bone_step: float,
) -> NDArray[np.float32]:
    """−(bilinear ln T) at each (water, bone); negative paths count as 0, paths past the table's
    end continue along its last step."""
    n = water.size
    out = np.empty(n, np.float32)
    last_i = log_table.shape[0] - 2
    last_j = log_table.shape[1] - 2
    for p in prange(n):
        x = max(float(water[p]), 0.0) * per_water_step
        y = max(float(bone[p]), 0.0) * per_bone_step
        i = min(int(x), last_i)
        j = min(int(y), last_j)
        fx = x - i
        fy = y - j
        a = log_table[i, j]
        b = log_table[i + 1, j]
        c = log_table[i, j + 1]
        d = log_table[i + 1, j + 1]
        out[p] = -((1.0 - fx) * ((1.0 - fy) * a + fy * c) + fx * ((1.0 - fy) * b + fy * d))
    return out


@lru_cache(maxsize=64)
def beam(kvp: float) -> Beam:
    """The :class:`Beam` of a kVp with the C-arm's filtration (cached, with its ln-T table)."""
    return Beam(float(kvp))


def half_value_layer_mm_al(
    kvp: float,
    filtration_mm_al: float = FILTRATION_MM_AL,
    filtration_mm_cu: float = FILTRATION_MM_CU,
) -> float:
    """Aluminium thickness (mm) that halves the beam's air kerma (bisection on the spectrum)."""
    energies, fluence = filtered_spectrum(kvp, filtration_mm_al, filtration_mm_cu)
    kerma = fluence * air_kerma_per_photon_ugy_mm2(energies)
    mu_al = mu_per_mm("aluminium", energies)
    low, high = 0.0, 50.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if float(kerma @ np.exp(-mu_al * middle)) > 0.5 * float(kerma.sum()):
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)
