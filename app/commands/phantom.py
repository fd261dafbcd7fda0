"""``fluorosim phantom``: build, inspect and export the simulated patient"""

from __future__ import annotations

import argparse

from app.commands.pending import not_available

HELP = "build, inspect and export the simulated patient"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim phantom``."""
    parser.add_argument("action", nargs="?", choices=["build", "show", "export"], default="show")


def run(args: argparse.Namespace) -> int:
    """Not yet available: explains which issue delivers it."""
    return not_available("phantom", 3, "the built-in patient generator")
