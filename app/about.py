"""The About box's text: fluorosim's version and the versions of the libraries a bug report needs."""

from __future__ import annotations

import platform

import numpy as np

from fluorosim.app import __version__


def about_text() -> str:
    """fluorosim and library versions."""
    import numba
    import vtk
    from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    return (
        f"<h3>fluorosim {__version__}</h3>"
        "<p>Simulator for fluoroscopy-guided spine procedures: SI-joint fusion and endoscopic lumbar "
        "decompression.</p>"
        f"<p>Python {platform.python_version()} · Qt {QT_VERSION_STR} · PyQt {PYQT_VERSION_STR} · "
        f"VTK {vtk.vtkVersion.GetVTKVersion()} · numpy {np.__version__} · numba {numba.__version__}</p>"
        "<p>Open source under the MIT licence. Synthetic patient; not for clinical use.</p>"
    )
