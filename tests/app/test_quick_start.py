"""The README's quick start, executed: `make run` opens the real window (xcb, under Xvfb) on the
built-in patient, and the first shot shows an image. `make test` is this very suite."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("xvfb-run") is None, reason="xvfb-run not installed (CI installs xvfb)"
    ),
    pytest.mark.skipif(
        not (ROOT / ".venv" / ".installed").exists(), reason="make's .venv is not set up"
    ),
]


def test_make_run_shows_the_simulator_on_the_built_in_patient(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")
    }
    env.update(
        FLUOROSIM_DB_URL=f"sqlite:///{tmp_path / 'records.sqlite'}",
        FLUOROSIM_ATTEMPTS_DIR=str(tmp_path / "attempts"),
        HOME=str(tmp_path),
    )
    result = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1600x1000x24",
            "make",
            "-s",
            "run",
            "RUN_ARGS=--scenario sij-lateral --trainee quick-start --quit-after 3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "attempt started: SI-joint fusion" in output
    shown = re.search(r"shot 1 shown, 512x512, grey mean ([\d.]+), std ([\d.]+)", output)
    assert shown, output[-3000:]
    assert float(shown.group(2)) > 10, "the first image is blank"
