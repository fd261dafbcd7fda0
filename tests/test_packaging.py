"""fluorosim installs under one name (issue 14): ``fluorosim.app``, ``fluorosim.models``, ….

The folders stay where the layout puts them (``app/``, ``models/``, …); ``pyproject.toml`` maps
them under the ``fluorosim`` namespace, so no generic ``app`` or ``models`` package lands in
site-packages. These tests keep the mapping complete, keep the bare names out of every import,
and check that a built wheel carries the code, the scenarios and the real-anatomy asset a fresh
install needs.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "render", "haptics", "models", "scenarios")


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_installed_under_fluorosim():
    config = _setuptools_config()
    listed = set(config["packages"])
    for top in PACKAGES:
        assert config["package-dir"][f"fluorosim.{top}"] == top
        for init in (ROOT / top).rglob("__init__.py"):
            dotted = ".".join(init.parent.relative_to(ROOT).parts)
            assert f"fluorosim.{dotted}" in listed, f"{dotted} is missing from pyproject's packages"
    assert not any(name.split(".")[0] in PACKAGES for name in listed)


def _bare_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            f"{path.relative_to(root)}:{node.lineno}: {n}"
            for n in names
            if n.split(".")[0] in PACKAGES
        ]
    return found


def test_nothing_imports_the_bare_package_names():
    """``import models`` would load a second copy of the package (or someone else's ``models``)."""
    files = [p for d in (*PACKAGES, "tests", "assets") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 100
    bare = [hit for path in files for hit in _bare_imports(path)]
    assert not bare, "\n".join(bare)


def test_the_bare_import_check_catches_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from models.labels import LABEL_TABLE\nimport fluorosim.models\nimport app\n"
    )
    assert _bare_imports(sample, tmp_path) == ["sample.py:1: models.labels", "sample.py:3: app"]


@pytest.mark.slow
def test_the_wheel_installs_fluorosim_with_its_data(tmp_path):
    """Build the wheel, install it into a bare folder and load the shipped data from there."""
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("fluorosim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"fluorosim", wheel.name.split("-py")[0] + ".dist-info"}, tops
    for needed in (
        "fluorosim/app/cli.py",
        "fluorosim/models/template/asset.py",
        "fluorosim/assets/anatomy/vhm_lumbosacral.npz",
        "fluorosim/assets/anatomy/LICENSE-artisynth",
        "fluorosim/assets/instruments.toml",
        "fluorosim/scenarios/data/sij-lateral.toml",
        "fluorosim/haptics/STP1.md",
    ):
        assert needed in names, f"{needed} is not in the wheel"
    assert not any(n.startswith("fluorosim/__init__") for n in names)  # a namespace package
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "fluorosim = fluorosim.app.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )

    target = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    probe = (
        "import fluorosim.models.template.asset as a, fluorosim.models.instruments as i\n"
        "t = a.load_template(); c = i.load_catalogue()\n"
        "print(a.__file__); print(len(c))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    module_file, count = result.stdout.split()
    assert Path(module_file).is_relative_to(target), module_file
    assert int(count) > 0
