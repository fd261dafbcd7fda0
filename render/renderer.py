"""The fluoroscopy renderer: C-arm pose → anatomy paths (cached) → beam → + instruments → image.

:class:`FluoroRenderer` owns one patient's attenuation volume at a reference energy
(``energy_kev``) and its cortical-bone fraction (render.attenuation, docstring 3), projected
together by one :class:`~render.drr_joint.JointDRR` (both line integrals in one ray pass). For a
pose it renders both at the resolution the volume supports (``anatomy_px``: 1.5 px per voxel
footprint, 208² for 1 mm voxels on the ii9; ``oblique_anatomy_px``, 1.25 px per voxel, for poses
more than 20° off every volume axis) and upsamples them bicubically to the display grid: per
pixel the path in millimetres of cortical bone and of water. The exposure's polyenergetic beam
(render.spectrum, at the kVp the dose-rate control chose) turns those two paths into its primary
transmission, handed to the image chain as −ln T. Paths and transmission are cached per pose, so
a still C-arm with a moving instrument only adds the instruments' analytic line integrals and
runs the image chain.

The drag preview goes through the same beam: a 128² joint projection of 2×-coarser copies of both
volumes, water and bone paths, −ln T at the kVp the dose-rate control meters for the pose (the
technique a full frame of that pose uses, cached with it), windowed and resized as 8-bit.

The instruments, the image chain and the dose come from render/instrument_projection.py,
render/image_chain.py and render/dose.py (issue #4 part 2), called from the three integration
methods ``_instrument_line_integrals``, ``_apply_chain`` and ``_exposure_dose``. Without an
explicit exposure a frame is continuous fluoroscopy at the kVp and tube current the automatic
dose-rate control settles at for the pose (render.metering; the renderer's ``kvp`` is where its kVp
starts), so every frame has a dose.
:func:`plain_display` (noiseless) serves the drag preview.

Threading: the DRR kernels release the GIL, so a GUI calls :meth:`render_frame` / :meth:`preview`
from a worker thread (e.g. ``concurrent.futures.ThreadPoolExecutor``) and never blocks its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from fluorosim.models.instruments import InstrumentPose, InstrumentSpec
from fluorosim.models.patient import Patient
from fluorosim.render import carm
from fluorosim.render import dose as _dose
from fluorosim.render import image_chain as _image_chain
from fluorosim.render import instrument_projection as _instrument_projection
from fluorosim.render.attenuation import (
    AttenuationVolume,
    build_attenuation_volume,
    build_bone_volume,
    downsample_volume,
    effective_energy_kev,
    water_equivalent_mm,
)
from fluorosim.render.carm import CArmJoints, CArmModel, MonitorOrientation
from fluorosim.render.dose import DoseRecord
from fluorosim.render.drr_fast import SLAB_MAX_DEG, FastDRR, upsample
from fluorosim.render.drr_joint import JointDRR
from fluorosim.render.exposure import Exposure
from fluorosim.render.geometry import ProjectionGeometry
from fluorosim.render.image_chain import ChainSettings
from fluorosim.render.metering import DoseRateControl
from fluorosim.render.spectrum import beam
from fluorosim.render.views import home_isocenter_lps

#: Tube voltages the renderer accepts (the exposure model's range, render/exposure.py).
KVP_RANGE = (40.0, 150.0)


#: Anatomy pixels per voxel footprint on the detector (Nyquist-like margin over 1 px per voxel).
ANATOMY_OVERSAMPLE = 1.5
#: The same for a pose whose central ray is more than ``SLAB_MAX_DEG`` (20°) off every volume
#: axis. Rays along a grid axis project voxel faces edge-on into sharp steps; oblique rays cross
#: them at a slant, so their image holds less fine detail and, bicubically upsampled, 1.25 px per
#: voxel keeps NCC ≥ 0.9991 against the exact trilinear integral at every 512² display pixel
#: (generated patient, ii9: oblique 0.99983, inlet 0.99972, AP turned 21° orbital 0.99934 or
#: tilted 22° 0.99913), while its rays — which cannot use the slab copies — cost (176/208)² =
#: 0.72 of the axis-aligned resolution's.
OBLIQUE_OVERSAMPLE = 1.25
#: Block-averaging factor of the volume the drag preview reads.
PREVIEW_DOWNSAMPLE = 2
#: The bone crop starts a multiple of this many voxels from the μ crop: the slab width of the
#: fast DRR (render.drr_fast), so that both volumes' slab copies average the same slices. Not 6
#: (also even, so that the preview could block-average the same bone copy): the bone copies'
#: speed depends on their exact shape through cache-set conflicts of their strides, and on the
#: default patient the crop aligned to 3 (278 × 168 × 380) projected 7 % faster than the
#: unaligned one (278 × 166) and the one aligned to 6 (278 × 171) 13 % slower (one thread, 15
#: poses, reproducible); the preview crops its own.
BONE_ALIGN_VOXELS = 3


@dataclass
class FluoroFrame:
    """One rendered fluoroscopy frame.

    ``image`` is what the monitor shows (uint8, monitor orientation applied, dense = dark);
    ``line_integrals`` the total −ln T of the exposure's beam per raw detector pixel (anatomy +
    instruments, the image chain's input) and ``anatomy_line_integrals`` the anatomy alone, both
    on ``geometry``'s grid; ``kvp`` the exposure's tube voltage and ``energy_kev`` the energy at
    which the instruments' metal was attenuated (the beam's mean behind the reference patient).
    """

    image: NDArray[np.uint8]
    line_integrals: NDArray[np.float32]
    anatomy_line_integrals: NDArray[np.float32]
    geometry: ProjectionGeometry
    joints: CArmJoints
    kvp: float
    energy_kev: float
    orientation: MonitorOrientation
    dose: DoseRecord | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def plain_display(
    line_integrals: NDArray[np.float32],
    field_mask: NDArray[np.bool_] | None = None,
    invert: bool = False,
) -> NDArray[np.uint8]:
    """Stand-in image chain: noiseless Beer–Lambert, log-domain window on the field's 1–99 %.

    Dense structures dark (fluoroscopy convention) unless ``invert``. Used for the drag preview
    and whenever render/image_chain.py is not available.
    """
    li = np.asarray(line_integrals, dtype=np.float32)
    values = li[field_mask] if field_mask is not None and field_mask.any() else li
    low, high = np.percentile(values, [1.0, 99.0]) if values.size else (0.0, 1.0)
    span = max(float(high - low), 1e-6)
    # −log(I/I0) = ∫μ dl: the log-domain window is linear in the line integral
    brightness = np.clip((high - li) / span, 0.0, 1.0)
    if invert:
        brightness = 1.0 - brightness
    image: NDArray[np.uint8] = (brightness * 255.0 + 0.5).astype(np.uint8)
    if field_mask is not None:
        image[~field_mask] = 0
    return image


def field_mask(model: CArmModel, size_px: int) -> NDArray[np.bool_]:
    """Exposed field on the detector grid: inscribed circle for an intensifier, all for a panel."""
    if model.detector != "image_intensifier":
        return np.ones((size_px, size_px), dtype=bool)
    centre = (size_px - 1) / 2.0
    rows, cols = np.ogrid[:size_px, :size_px]
    return (rows - centre) ** 2 + (cols - centre) ** 2 <= (size_px / 2.0) ** 2


def instrument_energy_kev(kvp: float) -> float:
    """Energy at which the instruments' metal is attenuated in a frame at ``kvp``: the beam's
    photon-mean energy behind the reference patient's water (render.image_chain's scatter
    reference), where the metal meets it. Metal is near-black at any of these energies; a single
    one keeps its analytic projection one pass."""
    return beam(kvp).mean_energy_kev(_image_chain.SCATTER_WATER_REFERENCE_MM)


class FluoroRenderer:
    """Renders fluoroscopy frames of one patient for C-arm poses (see module docstring)."""

    def __init__(
        self,
        patient: Patient,
        model: str | CArmModel = "ii9",
        kvp: float = 75.0,
        display_px: int = 512,
        mode: str | None = None,
        anatomy_px: int | None = None,
        preview_px: int = 128,
        downsample: int = 1,
        orientation: MonitorOrientation | None = None,
        cache_size: int = 16,
        volume: AttenuationVolume | None = None,
    ) -> None:
        self.patient = patient
        self.model = carm.get_model(model)
        self.mode = mode or self.model.default_mode
        self.model.field_mm(self.mode)  # refuse an unknown mode now
        self.kvp = float(kvp)
        if not KVP_RANGE[0] <= self.kvp <= KVP_RANGE[1]:
            raise ValueError(
                f"kVp {kvp!r} outside the tube's {KVP_RANGE[0]:g}–{KVP_RANGE[1]:g} kVp"
            )
        self.energy_kev = effective_energy_kev(self.kvp)
        self.display_px = int(display_px)
        self.preview_px = int(preview_px)
        self.orientation = orientation or MonitorOrientation()
        self.home_isocenter_lps = home_isocenter_lps(patient)
        self.volume = volume or build_attenuation_volume(
            patient, kvp=self.kvp, downsample=downsample
        )
        self.anatomy_px = int(anatomy_px or self.supported_px())
        #: anatomy resolution of oblique poses (see OBLIQUE_OVERSAMPLE); an explicit anatomy_px
        #: is used for every pose
        self.oblique_anatomy_px = int(anatomy_px or self.supported_px(OBLIQUE_OVERSAMPLE))
        self.drr = FastDRR(self.volume)
        #: ∫μ dl and the cortical-bone path per ray (render.attenuation.build_bone_volume) in one
        #: pass; ``bone_drr`` projects the bone alone from the same copies. The bone crop starts
        #: a multiple of the slab width from the μ crop, so both volumes' slab copies average
        #: the same voxels (see BONE_ALIGN_VOXELS).
        self.anatomy_drr = JointDRR(
            self.drr, build_bone_volume(patient, downsample=downsample, align=BONE_ALIGN_VOXELS)
        )
        self.bone_drr = self.anatomy_drr.companion
        #: drag previews read 2×-coarser copies of both (8× less memory to stream per frame),
        #: the bone's crop starting on a block of the μ volume's
        self.preview_drr = JointDRR(
            FastDRR(downsample_volume(self.volume, PREVIEW_DOWNSAMPLE)),
            build_bone_volume(
                patient, downsample=downsample * PREVIEW_DOWNSAMPLE, align=BONE_ALIGN_VOXELS
            ),
        )
        self.field_mask = field_mask(self.model, self.display_px)
        self._preview_mask = field_mask(self.model, self.preview_px)
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._cache_size = int(cache_size)
        self._lock = threading.Lock()
        self._catalogue: dict[str, InstrumentSpec] | None = None
        #: the kVp and tube current the dose-rate control meters per pose (default_exposure)
        self.dose_rate_control = DoseRateControl(patient.hu, patient.lps_from_voxel, cache_size)

    def supported_px(self, oversample: float = ANATOMY_OVERSAMPLE) -> int:
        """Detector pixels the volume supports: field / (voxel × isocentre magnification).

        Times ``oversample`` and rounded up to a multiple of 16, at most the display size; the
        line integrals are then upsampled to the display (finer pixels add no anatomy detail).
        """
        voxel_mm = float(np.min(self.volume.spacing_mm))
        footprint_mm = voxel_mm * self.model.magnification_at_isocenter
        pixels = self.model.field_mm(self.mode) / footprint_mm * oversample
        return int(min(self.display_px, max(16, 16 * np.ceil(pixels / 16))))

    def anatomy_px_for(self, geometry: ProjectionGeometry) -> int:
        """Anatomy grid size for a pose: ``anatomy_px``, or ``oblique_anatomy_px`` when the central
        ray is more than SLAB_MAX_DEG off every axis of the volume (see OBLIQUE_OVERSAMPLE)."""
        direction = geometry.detector_center_lps_mm - geometry.source_lps_mm
        in_voxels = np.abs(self.drr.voxel_from_lps[:, :3] @ direction)
        dominant = float(in_voxels.max())
        across = float(np.sort(in_voxels)[1])  # the larger of the two in-slice components
        oblique = across > np.tan(np.radians(SLAB_MAX_DEG)) * dominant
        return self.oblique_anatomy_px if oblique else self.anatomy_px

    # -- geometry ---------------------------------------------------------------------------
    def geometry(self, joints: CArmJoints, size_px: int | None = None) -> ProjectionGeometry:
        """Projection geometry of a pose on a ``size_px``² grid (default: the display)."""
        return carm.carm_geometry(
            joints,
            self.model,
            self.home_isocenter_lps,
            size_px=size_px or self.display_px,
            mode=self.mode,
        )

    # -- anatomy ----------------------------------------------------------------------------
    def _cached(self, key: tuple[Any, ...], compute: Any) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def _anatomy(
        self, joints: CArmJoints
    ) -> tuple[ProjectionGeometry, NDArray[np.float32], NDArray[np.float32]]:
        """Display-grid geometry, ∫μ dl at ``energy_kev`` and the cortical-bone path (mm)."""

        def compute() -> tuple[ProjectionGeometry, NDArray[np.float32], NDArray[np.float32]]:
            geometry = self.geometry(joints)
            size_px = self.anatomy_px_for(geometry)
            coarse = geometry.resized(size_px, size_px)
            coarse_li, coarse_bone = self.anatomy_drr.line_integrals(coarse)
            li = upsample(coarse_li, self.display_px, self.display_px)
            bone = upsample(coarse_bone, self.display_px, self.display_px)
            li.setflags(write=False)
            bone.setflags(write=False)
            return geometry, li, bone

        return cast(
            tuple[ProjectionGeometry, NDArray[np.float32], NDArray[np.float32]],
            self._cached(("anatomy", joints.key(), self.mode, self.display_px), compute),
        )

    def anatomy_line_integrals(
        self, joints: CArmJoints
    ) -> tuple[ProjectionGeometry, NDArray[np.float32]]:
        """Display-grid geometry and anatomy ∫μ dl at ``energy_kev`` (float32, display_px²),
        cached per pose (one energy: the fast projector's output, as the exact one's)."""
        geometry, li, _ = self._anatomy(joints)
        return geometry, li

    def anatomy_paths(
        self, joints: CArmJoints
    ) -> tuple[ProjectionGeometry, NDArray[np.float32], NDArray[np.float32]]:
        """Display-grid geometry and per pixel the (water-equivalent mm, cortical bone mm)."""

        def compute() -> tuple[ProjectionGeometry, NDArray[np.float32], NDArray[np.float32]]:
            geometry, li, bone = self._anatomy(joints)
            water = water_equivalent_mm(li, bone, self.volume.energy_kev)
            water.setflags(write=False)
            return geometry, water, bone

        return cast(
            tuple[ProjectionGeometry, NDArray[np.float32], NDArray[np.float32]],
            self._cached(("paths", joints.key(), self.mode, self.display_px), compute),
        )

    def beam_line_integrals(
        self, joints: CArmJoints, kvp: float
    ) -> tuple[ProjectionGeometry, NDArray[np.float32]]:
        """Display-grid geometry and the anatomy's −ln T for the beam of ``kvp``, cached."""

        def compute() -> tuple[ProjectionGeometry, NDArray[np.float32]]:
            geometry, water, bone = self.anatomy_paths(joints)
            li = beam(kvp).transmission_line_integrals(water, bone)
            li.setflags(write=False)
            return geometry, li

        return cast(
            tuple[ProjectionGeometry, NDArray[np.float32]],
            self._cached(("beam", joints.key(), self.mode, self.display_px, float(kvp)), compute),
        )

    def preview_line_integrals(
        self, joints: CArmJoints
    ) -> tuple[ProjectionGeometry, NDArray[np.float32], float]:
        """The drag preview's grid (``preview_px``²), −ln T of the anatomy on it and its kVp.

        The same polyenergetic beam as a full frame (render.spectrum) through the water and bone
        paths of the 2×-coarser volumes, at the kVp the dose-rate control settles at for this
        pose (:meth:`default_exposure`), so the preview's bone-to-soft-tissue contrast is the
        frame's. The technique is metered per pose rather than taken from the last full frame:
        a drag from AP to lateral crosses poses whose kVp the control raises by 20 kV or more,
        and the metering is affordable and cached per pose, so the full frame at the end of the
        drag reuses it. Default patient, 2-core machine at load 2, 60 new poses: preview 8.9 ms
        median (μ-only at 50 keV before: 4.8 ms), of which the joint projection 6.2 ms (μ alone
        4.3), the metering 1.7 ms and the beam's table 0.15 ms.
        """
        geometry = self.geometry(joints).resized(self.preview_px, self.preview_px)
        li, bone = self.preview_drr.line_integrals(geometry)
        water = water_equivalent_mm(li, bone, self.preview_drr.primary.volume.energy_kev)
        kvp = self.default_exposure(joints).kvp
        return geometry, beam(kvp).transmission_line_integrals(water, bone), kvp

    def preview(self, joints: CArmJoints) -> NDArray[np.uint8]:
        """Fast low-resolution image for dragging the C-arm (noiseless, monitor orientation;
        :meth:`preview_line_integrals`)."""
        _, li, _ = self.preview_line_integrals(joints)
        # window at the preview's own resolution, then upsample the 8-bit image (the window's
        # percentiles over 128² instead of 512² pixels; a linear window commutes with resizing)
        small = plain_display(li, self._preview_mask)
        image = cv2.resize(
            small, (self.display_px, self.display_px), interpolation=cv2.INTER_LINEAR
        )
        image[~self.field_mask] = 0
        return self.orientation.apply(image)

    # -- full frame -------------------------------------------------------------------------
    def render_frame(
        self,
        joints: CArmJoints,
        instruments: Sequence[InstrumentPose] = (),
        exposure: Exposure | None = None,
        chain_settings: ChainSettings | None = None,
        rng: np.random.Generator | None = None,
    ) -> FluoroFrame:
        """Anatomy through the exposure's beam (cached) + instruments → image chain → monitor
        image, with the dose record."""
        if exposure is None:
            exposure = self.default_exposure(joints)
        geometry, anatomy = self.beam_line_integrals(joints, exposure.kvp)
        total = anatomy
        metal_kev = instrument_energy_kev(exposure.kvp)
        instrument_li = self._instrument_line_integrals(instruments, geometry, metal_kev)
        if instrument_li is not None:
            total = anatomy + instrument_li
        image, chain_extras = self._apply_chain(total, geometry, exposure, chain_settings, rng)
        return FluoroFrame(
            image=self.orientation.apply(image),
            line_integrals=np.asarray(total, dtype=np.float32),
            anatomy_line_integrals=anatomy,
            geometry=geometry,
            joints=joints,
            kvp=exposure.kvp,
            energy_kev=metal_kev,
            orientation=self.orientation,
            dose=self._exposure_dose(exposure, geometry, chain_settings),
            extras=chain_extras,
        )

    def default_exposure(self, joints: CArmJoints | None = None) -> Exposure:
        """Continuous fluoroscopy at the kVp and tube current the automatic dose-rate control
        settles at for the pose, starting from this renderer's kVp (render.metering; cached per
        pose), or this kVp and the typical current for the field without a pose."""
        field = self.model.field_mm(self.mode)
        if joints is None:
            return Exposure(self.kvp, _dose.typical_tube_current_ma(field, self.kvp))
        technique = self.dose_rate_control.technique(
            (joints.key(), self.mode, self.kvp),
            lambda: self.geometry(joints, 64),
            self.kvp,
            field,
        )
        return Exposure(technique.kvp, technique.ma)

    # -- integration points (issue #4 part 2) ------------------------------------------------
    def _instrument_line_integrals(
        self,
        instruments: Sequence[InstrumentPose],
        geometry: ProjectionGeometry,
        energy_kev: float,
    ) -> NDArray[np.float32] | None:
        """Σ μ·chord of the instruments at ``energy_kev`` on the display grid
        (render/instrument_projection.py)."""
        if not instruments:
            return None
        if self._catalogue is None:
            from fluorosim.models.instruments import load_catalogue

            self._catalogue = load_catalogue()
        return _instrument_projection.instrument_line_integrals(
            list(instruments), self._catalogue, geometry, energy_kev
        )

    def _apply_chain(
        self,
        line_integrals: NDArray[np.float32],
        geometry: ProjectionGeometry,
        exposure: Exposure | None,
        chain_settings: ChainSettings | None,
        rng: np.random.Generator | None,
    ) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        """Line integrals → displayed uint8 image (render/image_chain.py)."""
        image = _image_chain.apply_image_chain(
            line_integrals,
            geometry,
            settings=chain_settings,
            exposure=exposure,
            rng=rng if rng is not None else np.random.default_rng(0),
            model=self.model,
        )
        return image, {"chain": "image_chain"}

    def _exposure_dose(
        self,
        exposure: Exposure | None,
        geometry: ProjectionGeometry,
        chain_settings: ChainSettings | None = None,
    ) -> DoseRecord | None:
        """Dose record of this frame (render/dose.py), with the chain settings' collimation."""
        if exposure is None:
            return None
        collimation = chain_settings.collimation if chain_settings is not None else None
        return _dose.exposure_dose(exposure, geometry, model=self.model, collimation=collimation)
