"""The ``fluorosim`` command line: one subcommand per module in :mod:`app.commands`.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Importing this module must stay cheap and Qt-free: the GUI is imported only by ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fluorosim.app import __version__

#: Subcommand name → module under app.commands, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "run": "fluorosim.app.commands.run",
    "render": "fluorosim.app.commands.render",
    "phantom": "fluorosim.app.commands.phantom",
    "devices": "fluorosim.app.commands.devices",
    "replay": "fluorosim.app.commands.replay",
    "report": "fluorosim.app.commands.report",
    "bench": "fluorosim.app.commands.bench",
    "gallery": "fluorosim.app.commands.gallery",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="fluorosim",
        description=(
            "Simulator for fluoroscopy-guided spine procedures: SI-joint fusion and endoscopic "
            "lumbar decompression, with synthetic C-arm images, tracked instruments and scoring."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fluorosim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("fluorosim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
