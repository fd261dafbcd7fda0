"""The system check: every required system library or program, hidden from it, is named by its
Debian package in one `apt-get install` line; `make test` / `make run` stop there before creating
the virtual environment; the README, `.ci/run` and the check name the very same packages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fluorosim.app import syscheck

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only check")
ROOT = Path(__file__).resolve().parents[2]
EVERYTHING = syscheck.requirements(gui=False)


def sonames_of(requirement: syscheck.Requirement) -> set[str]:
    return {
        name for lib in requirement.libraries for name in ((lib,) if isinstance(lib, str) else lib)
    }


def fake_system(tmp_path: Path, hidden: syscheck.Requirement | None) -> tuple[set[str], str]:
    """Every required library and program present except those of ``hidden``."""
    sonames = set().union(*(sonames_of(r) for r in EVERYTHING if r is not hidden))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for requirement in EVERYTHING:
        if requirement is hidden:
            continue
        for program in requirement.programs:
            path = bin_dir / program
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
    return sonames, str(bin_dir)


def test_nothing_missing_means_no_line(tmp_path):
    sonames, path = fake_system(tmp_path, None)
    assert syscheck.missing_packages(False, sonames, path) == []
    assert syscheck.missing_packages(True, sonames, path) == []


@pytest.mark.parametrize("requirement", EVERYTHING, ids=lambda r: r.package)
def test_each_hidden_requirement_is_named_by_its_package(tmp_path, requirement):
    sonames, path = fake_system(tmp_path, requirement)
    assert syscheck.missing_packages(False, sonames, path) == [requirement.package]
    in_window_set = requirement in syscheck.requirements(gui=True)
    assert syscheck.missing_packages(True, sonames, path) == (
        [requirement.package] if in_window_set else []
    )
    if requirement.libraries:  # hiding a single library of a package is enough
        for soname in sorted(sonames_of(requirement)):
            alternatives = next(
                lib
                for lib in requirement.libraries
                if soname in ((lib,) if isinstance(lib, str) else lib)
            )
            if not isinstance(alternatives, str):
                continue  # one of several alternatives: the others stand in for it
            partial = sonames | (sonames_of(requirement) - {soname})
            assert syscheck.missing_packages(False, partial, path) == [requirement.package]


def test_osmesa_either_soname_will_do(tmp_path):
    osmesa = next(r for r in EVERYTHING if r.package == "libosmesa6")
    sonames, path = fake_system(tmp_path, osmesa)
    assert syscheck.missing_packages(False, sonames | {"libOSMesa.so.6"}, path) == []
    assert syscheck.missing_packages(False, sonames | {"libOSMesa.so.8"}, path) == []


def test_empty_search_paths_give_one_line_naming_every_package(tmp_path, capsys):
    (tmp_path / "lib").mkdir()
    (tmp_path / "bin").mkdir()
    code = syscheck.main(
        ["--library-path", str(tmp_path / "lib"), "--program-path", str(tmp_path / "bin")]
    )
    assert code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "fluorosim: missing system packages; install them with: sudo apt-get install "
        + " ".join(syscheck.all_packages())
    ]


def test_library_path_lists_the_directory(tmp_path):
    (tmp_path / "libGL.so.1").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert syscheck.sonames_in([tmp_path, tmp_path / "absent"]) == {"libGL.so.1"}


def test_this_machine_passes_when_ci_installed_everything():
    if os.environ.get("CI") != "true":
        pytest.skip("only CI is sure to have installed the packages")
    assert syscheck.missing_packages(False) == []


def test_display_needed_for_a_window():
    assert "Xvfb" in syscheck.display_problem(True, {})
    assert syscheck.display_problem(True, {"DISPLAY": ":0"}) is None
    assert syscheck.display_problem(True, {"QT_QPA_PLATFORM": "offscreen"}) is None
    assert syscheck.display_problem(False, {}) is None


def readme_packages() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") : readme.index("## Commands")]
    lines = re.findall(r"^sudo apt-get install (.+)$", quick_start, flags=re.MULTILINE)
    assert len(lines) == 1, lines
    return lines[0].split()


def ci_packages() -> list[str]:
    script = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"apt-get install -y[^\n]*\\\n((?:.*\\\n)*.*?)>/dev/null", script)
    assert command, "no apt-get install in .ci/run"
    return command.group(1).replace("\\", " ").split()


def test_readme_ci_and_check_name_the_same_packages():
    assert readme_packages() == syscheck.all_packages()
    assert sorted(set(ci_packages()) - {"postgresql"}) == sorted(syscheck.all_packages())


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target", ["test", "run"])
def test_make_stops_before_creating_the_environment(tmp_path, target):
    """In a fresh copy of the Makefile and the check, a missing library stops `make test` and
    `make run` with the one line, before the virtual environment exists."""
    (tmp_path / "app").mkdir()
    for name in ("Makefile", "pyproject.toml", "app/__init__.py", "app/syscheck.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "DISPLAY": ":99"}
    result = subprocess.run(
        ["make", "-s", target, f"SYSCHECK_ARGS=--library-path {tmp_path / 'empty'}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("fluorosim:")]
    assert len(lines) == 1 and "sudo apt-get install libgl1 libegl1" in lines[0], result.stderr
    assert ("libosmesa6" in lines[0]) == (target == "test")
    assert not (tmp_path / ".venv").exists()
