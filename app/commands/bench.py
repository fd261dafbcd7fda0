"""``fluorosim bench``: print performance figures of the renderer and devices.

The renderer's figures come from :mod:`render.bench`. Other packages contribute through the same
registry: a module listed in ``SELF_REGISTERING`` is imported (it calls
``render.bench.register_benchmark`` itself; app-level modules may), and a function listed in
``FUNCTIONS`` (for packages that must not import render, e.g. haptics) is registered here with its
figures prefixed by the benchmark's name. Absent modules are skipped silently.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

HELP = "print performance figures of the renderer and devices"

#: Modules that register their own benchmarks when imported.
SELF_REGISTERING: tuple[str, ...] = ("fluorosim.app.bench",)
#: name → (module, function returning a dict); registered with keys prefixed "<name>_".
FUNCTIONS: dict[str, tuple[str, str]] = {
    "serial_input": ("fluorosim.haptics.bench", "benchmark_serial_latency"),
    # the window driven offscreen through an attempt; longest event-loop stall (target ≤ 50 ms)
    "gui": ("fluorosim.app.bench_gui", "benchmark_event_loop"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim bench``."""
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (repeatable; e.g. renderer, serial_input)",
    )


def _prefixed(name: str, fn: Any) -> Any:
    def run() -> dict[str, Any]:
        figures = fn()
        if not isinstance(figures, dict):
            return {name: figures}
        return {k if k.startswith(f"{name}_") else f"{name}_{k}": v for k, v in figures.items()}

    return run


def register_optional_benchmarks() -> None:
    """Import the optional benchmark providers that exist in this build."""
    from fluorosim.render.bench import register_benchmark

    for module_name in SELF_REGISTERING:
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
    for name, (module_name, function_name) in FUNCTIONS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        function = getattr(module, function_name, None)
        if callable(function):
            register_benchmark(name, _prefixed(name, function))


def _print_table(results: dict[str, Any]) -> None:
    from fluorosim.render.bench import TARGETS

    for key, value in results.items():
        if isinstance(value, dict):
            continue
        target = TARGETS.get(key)
        note = ""
        if target is not None and isinstance(value, (int, float)):
            better = value >= target if key.endswith("fps") else value <= target
            note = f"   (target {'≥' if key.endswith('fps') else '≤'} {target:g}: {'met' if better else 'NOT met'})"
        print(f"{key:28s} {value}{note}")
    per_view = results.get("per_view_vs_exact")
    if isinstance(per_view, dict):
        for view, figures in per_view.items():
            print(f"  {view:26s} NCC {figures['ncc']}, mean rel. diff {figures['mean_rel_diff']}")


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks and print the figures (a table, or JSON with --json)."""
    from fluorosim.render.bench import BENCHMARKS, run_benchmarks

    register_optional_benchmarks()
    known = [name for name, _ in BENCHMARKS]
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        print(
            f"fluorosim bench: unknown benchmark(s) {unknown}; known: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    results = run_benchmarks(args.only)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_table(results)
    return 0
