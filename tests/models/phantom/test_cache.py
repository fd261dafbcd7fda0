"""The patient cache: a second request loads the identical patient; damage → rebuilt, no crash."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from fluorosim.models.phantom import PatientParameters, cache
from fluorosim.models.phantom.cache import cache_key, load_or_build_patient

FAST = PatientParameters(voxel_mm=3.0)


@pytest.fixture
def counted_builds(monkeypatch):
    calls = []
    real = cache.build_patient

    def counting(params, progress=None):
        calls.append(params)
        return real(params, parts=("lumbar", "neural"), progress=progress)

    monkeypatch.setattr(cache, "build_patient", counting)
    return calls


def test_second_request_is_read_from_disk_and_identical(tmp_path, counted_builds):
    first = load_or_build_patient(FAST, cache_dir=tmp_path)
    second = load_or_build_patient(FAST, cache_dir=tmp_path)
    assert len(counted_builds) == 1
    assert np.array_equal(first.hu, second.hu)
    assert np.array_equal(first.labels, second.labels)
    assert np.allclose(first.lps_from_voxel, second.lps_from_voxel)
    assert first.label_table == second.label_table
    assert first.landmarks.keys() == second.landmarks.keys()
    for name in first.landmarks:
        assert np.allclose(first.landmarks[name], second.landmarks[name])
    assert second.parameters["seed"] == 0
    # written atomically: no temporary files left behind
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npz"]


def test_key_depends_on_parameters_and_generator_version(monkeypatch):
    assert cache_key(FAST) != cache_key(PatientParameters(voxel_mm=3.0, seed=1))
    assert cache_key(FAST) == cache_key(PatientParameters(voxel_mm=3.0))
    before = cache_key(FAST)
    monkeypatch.setattr(cache, "generator_version", lambda: "another-version")
    assert cache_key(FAST) != before


@pytest.mark.parametrize("damage", ["truncate_npz", "garbage_json", "garbage_npz"])
def test_damaged_entry_is_rebuilt_with_a_warning(tmp_path, counted_builds, caplog, damage):
    original = load_or_build_patient(FAST, cache_dir=tmp_path)
    npz = next(tmp_path.glob("*.npz"))
    js = next(tmp_path.glob("*.json"))
    if damage == "truncate_npz":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif damage == "garbage_json":
        js.write_bytes(b"\x00\xff not json")
    else:
        npz.write_bytes(b"PK garbage" * 100)
    with caplog.at_level(logging.WARNING, logger="fluorosim.models.phantom.cache"):
        rebuilt = load_or_build_patient(FAST, cache_dir=tmp_path)
    assert len(counted_builds) == 2
    assert np.array_equal(rebuilt.labels, original.labels)
    assert any("rebuilding the patient" in r.getMessage() for r in caplog.records)
    # the entry was repaired: the next request reads it again
    load_or_build_patient(FAST, cache_dir=tmp_path)
    assert len(counted_builds) == 2


def test_environment_variable_chooses_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FLUOROSIM_CACHE_DIR", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path / "patients"


def test_unwritable_cache_still_returns_the_patient(tmp_path, counted_builds, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="fluorosim.models.phantom.cache"):
        patient = load_or_build_patient(FAST, cache_dir=blocker / "sub")
    assert patient.labels.any()
    assert any("could not write" in r.getMessage() for r in caplog.records)


def test_a_build_reports_each_stage_with_a_rising_fraction():
    """The window's progress dialog hears every stage of a build (the bones, each part, the
    painting), in order, with fractions rising from 0 below 1."""
    heard: list[tuple[str, float]] = []
    cache.build_patient(
        FAST, parts=("lumbar", "neural"), progress=lambda text, f: heard.append((text, f))
    )
    texts = [text for text, _ in heard]
    fractions = [f for _, f in heard]
    assert texts[0].startswith("Fitting the real-anatomy bones")
    assert any("thecal sac and nerve roots" in text for text in texts)
    assert texts[-1].startswith("Painting")
    assert fractions[0] == 0.0 and fractions[-1] < 1.0
    assert all(b > a for a, b in zip(fractions, fractions[1:], strict=False))


def test_cancelling_a_build_leaves_nothing_in_the_cache(tmp_path, counted_builds):
    """A progress callback that raises (the trainee pressed Cancel) stops the build at that stage;
    nothing half-built is cached, and the next request builds the patient whole."""

    class CancelledError(Exception):
        pass

    def cancel_at_the_second_stage(text: str, fraction: float) -> None:
        if fraction > 0.0:
            raise CancelledError(text)

    with pytest.raises(CancelledError, match="Building"):
        load_or_build_patient(FAST, cache_dir=tmp_path, progress=cancel_at_the_second_stage)
    assert list(tmp_path.iterdir()) == []
    patient = load_or_build_patient(FAST, cache_dir=tmp_path)
    assert len(counted_builds) == 2 and patient.labels.any()
    assert len(list(tmp_path.glob("patient-*.npz"))) == 1
