"""``fluorosim render``: render a fluoroscopy image of the patient to a file, headless"""

from __future__ import annotations

import argparse

from app.commands.pending import not_available

HELP = "render a fluoroscopy image of the patient to a file, headless"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim render``."""
    parser.add_argument("--view", help="named C-arm view (ap, lateral, inlet, outlet, ...)")
    parser.add_argument("--out", help="output image file (PNG)")


def run(args: argparse.Namespace) -> int:
    """Not yet available: explains which issue delivers it."""
    return not_available("render", 4, "headless fluoroscopy rendering")
