"""Test-wide settings: headless Qt, a writable numba cache, and the shared reference data path.

QT_QPA_PLATFORM is set here, before anything imports Qt, so that only tests/app ever creates a
QApplication and it does so offscreen.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "fluorosim-numba-cache"))
os.environ.setdefault(
    "FLUOROSIM_CACHE_DIR", str(Path(tempfile.gettempdir()) / "fluorosim-test-cache")
)

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Read-only reference data beside the repository (never copied into it).
SHARED_DATA = Path(os.environ.get("FLUOROSIM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT
