"""The shipped catalogue loads with every required entry; bad files name file, entry and field."""

import numpy as np
import pytest

from fluorosim.models import frames
from fluorosim.models.instruments import (
    REQUIRED_ENTRIES,
    CatalogueError,
    InstrumentPose,
    InstrumentSpec,
    cross_section_axes,
    load_catalogue,
)

GOOD_ENTRY = """
schema_version = 1
[instruments.pin]
kind = "pin"
shape = "cylinder"
material = "steel_316l"
diameter_mm = 3.2
length_mm = 200
"""


def test_shipped_catalogue_has_the_contract_entries_with_their_numbers():
    catalogue = load_catalogue()
    assert set(REQUIRED_ENTRIES) <= set(catalogue)
    pin = catalogue["guide_pin"]
    assert (pin.diameter_mm, pin.material, pin.shape) == (3.2, "steel_316l", "cylinder")
    implant = catalogue["sij_implant"]
    assert implant.shape == "triangular_prism" and implant.diameter_mm == 7.0
    assert 30 <= implant.length_mm <= 70 and implant.material in ("titanium", "ti6al4v")
    assert catalogue["working_cannula"].diameter_mm == 7.5
    assert catalogue["working_cannula"].shape == "tube"
    assert catalogue["allograft_dowel"].material == "cortical_bone"
    assert catalogue["nitinol_wire"].material == "nitinol"
    assert catalogue["jamshidi_needle"].handle_length_mm > 0


def test_good_minimal_file_loads(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(GOOD_ENTRY)
    spec = load_catalogue(path)["pin"]
    assert spec == InstrumentSpec("pin", "pin", 3.2, 200.0, "steel_316l", "cylinder")


@pytest.mark.parametrize(
    ("replace", "by", "field"),
    [
        ("diameter_mm = 3.2", "diameter_mm = -1", "diameter_mm"),
        ("diameter_mm = 3.2", 'diameter_mm = "thick"', "diameter_mm"),
        ('material = "steel_316l"', 'material = "unobtainium"', "material"),
        ('shape = "cylinder"', 'shape = "banana"', "shape"),
        ("length_mm = 200", "", "length_mm"),
        ("length_mm = 200", "length_mm = 200\ncolour = 3", "colour"),
        ('shape = "cylinder"', 'shape = "tube"', "inner_diameter_mm"),
        ("length_mm = 200", "length_mm = 200\ntip_bevel_mm = 500", "tip_bevel_mm"),
    ],
)
def test_bad_entry_names_file_entry_and_field(tmp_path, replace, by, field):
    path = tmp_path / "broken.toml"
    path.write_text(GOOD_ENTRY.replace(replace, by))
    with pytest.raises(CatalogueError) as error:
        load_catalogue(path)
    message = str(error.value)
    assert str(path) in message and "'pin'" in message and repr(field) in message


def test_broken_syntax_wrong_version_and_missing_file(tmp_path):
    path = tmp_path / "garbage.toml"
    path.write_bytes(b"schema_version = 1\n[instruments.pin\n\xff\x00")
    with pytest.raises(CatalogueError, match="garbage.toml"):
        load_catalogue(path)
    path.write_text(GOOD_ENTRY.replace("schema_version = 1", "schema_version = 7"))
    with pytest.raises(CatalogueError, match="schema_version"):
        load_catalogue(path)
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "absent.toml")


def test_pose_normalises_direction_and_finds_handle():
    spec = load_catalogue()["jamshidi_needle"]
    pose = InstrumentPose("jamshidi_needle", np.array([0.0, 10.0, 0.0]), np.array([0.0, 2.0, 0.0]))
    assert np.allclose(pose.direction_lps, [0, 1, 0])
    handle = pose.handle_points_lps(spec)
    assert np.allclose(handle[0], [0, 10 - spec.length_mm, 0])
    assert np.allclose(handle[2], [0, 10 - spec.length_mm - spec.handle_length_mm, 0])
    with pytest.raises(frames.FrameError):
        InstrumentPose("x", np.zeros(3), np.zeros(3))


def test_cross_section_axes_are_orthonormal_and_roll():
    for direction in ([1, 0, 0], [0, 0, 1], [0.3, -0.5, 0.8]):
        e1, e2 = cross_section_axes(direction)
        axis = frames.unit(direction)
        assert np.allclose([e1 @ e2, e1 @ axis, e2 @ axis], 0, atol=1e-12)
        assert np.allclose(np.cross(axis, e1), e2)
        r1, _ = cross_section_axes(direction, 90.0)
        assert np.allclose(r1, e2)


def test_poses_compare_and_hash_by_value():
    a = InstrumentPose("guide_pin", np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 2.0]))
    b = InstrumentPose("guide_pin", [1.0, 2.0, 3.0], [0.0, 0.0, 1.0])
    c = InstrumentPose("guide_pin", [1.0, 2.0, 3.5], [0.0, 0.0, 1.0])
    assert a == b and hash(a) == hash(b) and a != c
    assert len({a, b, c}) == 2
