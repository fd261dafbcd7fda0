"""Project-level checks: layering contracts, README ↔ CI agreement, the CLI surface, lint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fluorosim.app import cli

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ["app", "render", "haptics", "models", "scenarios"]


def readme_commands() -> tuple[str, str]:
    """The README's run and test commands (the lines ``make run`` / ``make test`` in code blocks)."""
    text = (ROOT / "README.md").read_text()
    run = re.search(r"^\s*(make run)\s*$", text, re.M)
    test = re.search(r"^\s*(make test)\s*$", text, re.M)
    assert run and test, "README must show `make run` and `make test` on their own lines"
    return run.group(1), test.group(1)


def test_ci_runs_the_readme_test_command():
    _, test_command = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^{re.escape(test_command)}\s*$", ci, re.M), (
        ".ci/run must run the README's test command"
    )
    assert "apt-get update" in ci


def test_import_contracts_hold():
    result = subprocess.run(
        [str(BIN / "lint-imports"), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_catch_qt_in_render(tmp_path):
    """A copy of the tree where render/ imports PyQt6 must fail the contracts.

    The copy is laid out as installed (``fluorosim/render/…``, ``fluorosim`` a namespace package) and
    found first on the path, so the contracts are checked on the copy, not on the installed tree.
    """
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / "fluorosim" / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "fluorosim" / "render" / "qt_leak.py").write_text(
        '"""A forbidden import."""\nimport PyQt6.QtCore\n'
    )
    result = subprocess.run(
        [str(BIN / "lint-imports"), "--config", str(tmp_path / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "fluorosim.render.qt_leak" in result.stdout and "PyQt6" in result.stdout


def test_no_opencv_with_qt5():
    text = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'"opencv-python[<>=~! "]', text)
    assert "opencv-python-headless" in text


def test_ruff_clean():
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_ruff_formatted():
    result = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_every_module_has_a_docstring():
    missing = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text().lstrip()
            if not text.startswith(('"""', "'''", 'r"""')):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules without a docstring: {missing}"


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ["run", "render", "phantom", "devices", "replay", "report", "bench"]:
        assert name in out


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_subcommand_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"fluorosim {name}" in capsys.readouterr().out


def test_console_script_installed():
    result = subprocess.run([str(BIN / "fluorosim"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "phantom" in result.stdout
