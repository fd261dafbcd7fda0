"""models/io/EXPORT.md, the folder layout `fluorosim phantom export` writes and a lab opens
elsewhere, agrees with the real writer and readers: every file written matches a documented row
(and every row is written), every field of patient.json and landmarks.json is documented, and the
examples read with the real readers (landmarks, and patient.json through ``import_ct``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from fluorosim.models.io import export
from fluorosim.models.io.ct_import import import_ct
from fluorosim.models.io.export import export_patient
from fluorosim.models.io.markups import read_landmarks_json
from tests.markdown import first_column, section

DOCUMENT = Path(export.__file__).with_name("EXPORT.md")


def _section(title: str) -> str:
    return section(DOCUMENT, title)


def _example(caption: str) -> str:
    examples = _section("## Examples")
    rest = examples[examples.index(caption) :]
    return re.search(r"```json\n(.*?)```", rest, flags=re.S).group(1)


def _pattern(documented: str) -> re.Pattern[str]:
    """``meshes/<structure>.stl`` → a regex matching that file name; ``<nnnn>`` is four digits."""
    parts = re.split(r"(<[a-z]+>)", documented)
    body = "".join(
        r"\d{4}" if p == "<nnnn>" else "[^/]+" if p.startswith("<") else re.escape(p) for p in parts
    )
    return re.compile(body + r"\Z")


def test_every_file_written_is_documented_and_every_documented_file_written(tmp_path, patient):
    out = tmp_path / "out"
    written = [p.relative_to(out).as_posix() for p in export_patient(patient, out, dicom=True)]
    rows = first_column(_section("## Files").split("### ")[0])
    patterns = {row: _pattern(row) for row in rows}
    undocumented = [name for name in written if not any(p.match(name) for p in patterns.values())]
    assert not undocumented
    unwritten = [row for row, p in patterns.items() if not any(p.match(n) for n in written)]
    assert not unwritten
    assert "dicom/CT_0001.dcm" in written and len(rows) == 10


def test_every_field_of_the_json_files_is_documented(tmp_path, patient):
    out = tmp_path / "out"
    export_patient(patient, out, meshes=False)
    record = json.loads((out / "patient.json").read_text(encoding="utf-8"))
    assert set(record) == set(first_column(_section("### `patient.json`")))
    assert record["format"] == export.PATIENT_FORMAT and record["version"] == 1
    landmarks = json.loads((out / "landmarks.json").read_text(encoding="utf-8"))
    assert set(landmarks) == set(first_column(_section("### `landmarks.json`")))


def test_the_examples_read_with_the_real_readers(tmp_path, patient):
    labels = json.loads(_example("`labels.json`:"))
    assert labels["background"] == 0 and all(isinstance(v, int) for v in labels.values())
    landmarks_path = tmp_path / "landmarks.json"
    landmarks_path.write_text(_example("`landmarks.json`:"), encoding="utf-8")
    landmarks = read_landmarks_json(landmarks_path)
    np.testing.assert_array_equal(landmarks["L4_body_center"], [0.0, -5.0, 40.0])
    assert landmarks["sij_surface_left"].shape == (3, 3)
    # the example patient.json, in a folder with the patient's volumes, imports with its parameters
    out = tmp_path / "out"
    export_patient(patient, out, meshes=False)
    example = json.loads(_example("`patient.json`"))
    assert example["shape"] == list(patient.shape)
    np.testing.assert_allclose(example["lps_from_voxel"], patient.lps_from_voxel)
    (out / "patient.json").write_text(json.dumps(example), encoding="utf-8")
    imported = import_ct(out)
    assert imported.parameters["seed"] == 7 and imported.parameters["sex"] == "female"
    np.testing.assert_array_equal(imported.labels, patient.labels)
