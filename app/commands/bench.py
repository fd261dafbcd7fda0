"""``fluorosim bench``: print performance figures of the renderer and devices"""

from __future__ import annotations

import argparse

from app.commands.pending import not_available

HELP = "print performance figures of the renderer and devices"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim bench``."""
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Not yet available: explains which issue delivers it."""
    return not_available("bench", 4, "performance benchmarks")
