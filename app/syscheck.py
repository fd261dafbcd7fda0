"""Check the system packages fluorosim needs before anything else runs, and name the apt-get to fix it.

The PyQt6 and VTK wheels carry Qt and VTK themselves but load system libraries: Qt links OpenGL,
EGL, fontconfig, xkbcommon, GLib, D-Bus and X11, and for a real window the xcb libraries; VTK's
wheel (9.7) ships no OpenGL of its own and loads ``libGL``/``libEGL`` and, for the off-screen 3D
view the tests force (``VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow``), ``libOSMesa`` at
run time. No wheel on PyPI carries OSMesa for VTK, so it is a system package. A missing library
makes Qt abort with a plugin traceback or VTK crash with a segmentation fault; this check prints
instead one line naming every missing package in a single ``apt-get install``.

The check uses only the standard library (``make`` runs it with the system Python before it
creates the virtual environment) and looks the libraries up in the dynamic linker's cache
(``ldconfig -p``) plus ``LD_LIBRARY_PATH``, or in the directories given with ``--library-path``.

    python -m app.syscheck --gui     # what `make run` needs (a window on X11)
    python -m app.syscheck           # what `make test` needs (the above, OSMesa, Xvfb, poppler)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    """A Debian package and what of it must be present: shared libraries (sonames; a tuple of
    alternatives counts as present when any one is) and executables on PATH."""

    package: str
    why: str
    libraries: tuple[str | tuple[str, ...], ...] = ()
    programs: tuple[str, ...] = ()


#: Qt's offscreen platform (tests, `fluorosim render` of reports) and Qt's own libraries. The
#: libraries a package pulls in as Debian dependencies are checked under that package.
HEADLESS: tuple[Requirement, ...] = (
    Requirement("libgl1", "OpenGL, linked by QtGui and loaded by VTK", ("libGL.so.1",)),
    Requirement("libegl1", "EGL, linked by QtGui", ("libEGL.so.1",)),
    Requirement("libx11-6", "X11 client library, linked by QtGui", ("libX11.so.6",)),
    Requirement(
        "libglib2.0-0", "GLib, linked by QtCore", ("libglib-2.0.so.0", "libgthread-2.0.so.0")
    ),
    Requirement(
        "libfontconfig1", "fonts for Qt (brings FreeType and a font)", ("libfontconfig.so.1",)
    ),
    Requirement("libxkbcommon0", "keyboard maps, linked by QtGui", ("libxkbcommon.so.0",)),
    Requirement("libdbus-1-3", "D-Bus, linked by QtDBus", ("libdbus-1.so.3",)),
)
#: What Qt's xcb platform plugin links for a real window on X11 (`make run`, or under Xvfb).
WINDOW: tuple[Requirement, ...] = (
    Requirement(
        "libxkbcommon-x11-0",
        "keyboard maps on X11",
        ("libxkbcommon-x11.so.0", "libxcb-xkb.so.1", "libxcb.so.1"),
    ),
    Requirement(
        "libxcb-cursor0",
        "the xcb platform plugin (brings xcb-image, -render, -render-util, -shm, -util)",
        (
            "libxcb-cursor.so.0",
            "libxcb-image.so.0",
            "libxcb-render.so.0",
            "libxcb-render-util.so.0",
            "libxcb-shm.so.0",
            "libxcb-util.so.1",
        ),
    ),
    Requirement("libxcb-icccm4", "the xcb platform plugin", ("libxcb-icccm.so.4",)),
    Requirement("libxcb-keysyms1", "the xcb platform plugin", ("libxcb-keysyms.so.1",)),
    Requirement("libxcb-randr0", "the xcb platform plugin (screens)", ("libxcb-randr.so.0",)),
    Requirement("libxcb-shape0", "the xcb platform plugin", ("libxcb-shape.so.0",)),
    Requirement("libxcb-xfixes0", "the xcb platform plugin", ("libxcb-xfixes.so.0",)),
    Requirement("libxcb-sync1", "the xcb platform plugin", ("libxcb-sync.so.1",)),
    Requirement("libx11-xcb1", "the xcb platform plugin", ("libX11-xcb.so.1",)),
)
#: What only the test suite needs: VTK's off-screen window, the README's `make run` under Xvfb,
#: and reading the PDF reports back.
TESTS: tuple[Requirement, ...] = (
    Requirement(
        "libosmesa6",
        "VTK's off-screen OpenGL (the 3D view in the tests)",
        (("libOSMesa.so.8", "libOSMesa.so.6"),),
    ),
    Requirement(
        "xvfb", "a virtual X server for the README's `make run` test", (), ("xvfb-run", "Xvfb")
    ),
    Requirement("xauth", "xvfb-run's X authority", (), ("xauth",)),
    Requirement("poppler-utils", "reading the PDF reports back", (), ("pdftotext",)),
)

#: Where shared libraries live when the linker cache cannot be read.
STANDARD_LIBRARY_DIRS = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
)


def requirements(gui: bool) -> tuple[Requirement, ...]:
    """What `make run` (``gui=True``) or `make test` (``gui=False``: everything) needs."""
    return HEADLESS + WINDOW if gui else HEADLESS + WINDOW + TESTS


def all_packages() -> list[str]:
    """Every system package of the README's apt-get line (what `make test` needs), in order."""
    return [requirement.package for requirement in requirements(gui=False)]


def sonames_in(directories: Iterable[str | os.PathLike[str]]) -> set[str]:
    """File names of the shared libraries in ``directories`` (missing directories are skipped)."""
    found: set[str] = set()
    for directory in directories:
        try:
            found.update(entry.name for entry in os.scandir(directory) if ".so" in entry.name)
        except OSError:
            continue
    return found


def system_sonames() -> set[str]:
    """Sonames the dynamic linker can find: its cache (``ldconfig -p``), ``LD_LIBRARY_PATH``, and
    the standard directories."""
    found = sonames_in(p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p)
    found |= sonames_in(STANDARD_LIBRARY_DIRS)
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            listing = subprocess.run(
                [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in listing.splitlines()[1:]:
            name = line.strip().split(" ", 1)[0]
            if name:
                found.add(name)
        break
    return found


def missing_packages(
    gui: bool,
    sonames: Collection[str] | None = None,
    program_path: str | None = None,
    platform: str = sys.platform,
) -> list[str]:
    """The Debian packages missing for `make run` (``gui``) or `make test`, in install order.

    ``sonames`` are the shared libraries present (default: :func:`system_sonames`);
    ``program_path`` is the PATH searched for programs (default: the environment's).
    """
    if not platform.startswith("linux"):
        return []  # the Windows and macOS wheels carry everything they need
    present = system_sonames() if sonames is None else set(sonames)
    missing = []
    for requirement in requirements(gui):
        libraries_ok = all(
            any(name in present for name in ((lib,) if isinstance(lib, str) else lib))
            for lib in requirement.libraries
        )
        programs_ok = all(
            shutil.which(program, path=program_path) is not None for program in requirement.programs
        )
        if not (libraries_ok and programs_ok):
            missing.append(requirement.package)
    return missing


def install_line(packages: Sequence[str]) -> str:
    """The one line printed when packages are missing."""
    return (
        "fluorosim: missing system packages; install them with: "
        f"sudo apt-get install {' '.join(packages)}"
    )


def display_problem(gui: bool, environ: Mapping[str, str] | None = None) -> str | None:
    """A one-line message when a window is wanted but there is no display to show it on."""
    env = os.environ if environ is None else environ
    if not gui or not sys.platform.startswith("linux"):
        return None
    if env.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "fluorosim run needs a display: no DISPLAY or WAYLAND_DISPLAY is set "
        "(on a server, run it under Xvfb: xvfb-run -a make run)."
    )


def problems(
    gui: bool, sonames: Collection[str] | None = None, program_path: str | None = None
) -> list[str]:
    """Every problem as one line each: the missing packages (one line), then the display."""
    lines = []
    packages = missing_packages(gui, sonames, program_path)
    if packages:
        lines.append(install_line(packages))
    display = display_problem(gui)
    if display:
        lines.append(display)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the system can run fluorosim, else print one line per problem and exit 1."""
    parser = argparse.ArgumentParser(
        prog="python -m app.syscheck",
        description="Check the system packages fluorosim needs (the tests' set unless --gui).",
    )
    parser.add_argument(
        "--gui", action="store_true", help="check what `make run` needs (a real window)"
    )
    parser.add_argument(
        "--library-path",
        default=None,
        metavar="DIRS",
        help="look for the libraries only in these ':'-separated directories "
        "(default: the dynamic linker's cache, LD_LIBRARY_PATH and the standard directories)",
    )
    parser.add_argument(
        "--program-path",
        default=None,
        metavar="DIRS",
        help="look for the programs only on this PATH (default: $PATH)",
    )
    args = parser.parse_args(argv)
    sonames = (
        None
        if args.library_path is None
        else sonames_in(p for p in args.library_path.split(":") if p)
    )
    found = problems(args.gui, sonames, args.program_path)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
