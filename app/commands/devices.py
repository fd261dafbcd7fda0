"""``fluorosim devices``: list serial ports, monitor any instrument source, run device emulators.

``fluorosim devices list`` — serial ports with USB VID:PID, serial number and description.
``fluorosim devices monitor URL [--seconds S] [--json]`` — open the source ``URL`` names
(see haptics/urls.py), count samples, rate, dropped lines by reason and status changes, print the
last pose. JSON keys: ``samples``, ``rate_hz``, ``dropped`` {reason: count}, ``statuses`` (in
order), ``last_pose`` ({"status", "t_s", "tip_lps_mm", "direction_lps", "buttons"} or null),
``counters``, ``message``.
``fluorosim devices emulate gimbal|pose|imu|ndi [--pty | --tcp PORT] [--script FILE]
[--faults garbage,checksum,gaps,unplug] [--seconds S]`` — run an emulator and print the port to
connect to (the pty path is a symlink that survives emulated unplug/replug cycles).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

HELP = "list, monitor and emulate instrument tracking devices"

#: How often monitor prints a progress line (text mode), s.
MONITOR_PRINT_PERIOD_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fluorosim devices``."""
    parser.add_argument(
        "action",
        nargs="?",
        choices=["list", "monitor", "emulate"],
        default="list",
        help="list ports, monitor a source, or run an emulator (default: list)",
    )
    parser.add_argument(
        "target",
        nargs="?",
        help="monitor: source URL (/dev/ttyACM0, socket://h:p, ndi:…, igtl://…, file.mha, mouse); "
        "emulate: gimbal, pose, imu or ndi",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop after this many seconds (monitor default 5; emulate: forever)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--pty", action="store_true", help="emulate on a pseudo-terminal (default)")
    parser.add_argument(
        "--tcp",
        type=int,
        metavar="PORT",
        default=None,
        help="emulate on 127.0.0.1:PORT (0 = any free port)",
    )
    parser.add_argument(
        "--script",
        metavar="FILE",
        default=None,
        help="JSON motion keyframes [{t_s, yaw, pitch, roll, depth, buttons}, …]",
    )
    parser.add_argument(
        "--faults",
        default=None,
        help="comma-separated faults to inject: garbage,checksum,gaps,unplug",
    )
    parser.add_argument("--rate", type=int, default=100, help="emulated stream rate, Hz")
    parser.add_argument("--seed", type=int, default=0, help="random seed of noise and faults")


def _fail(text: str) -> int:
    print(f"fluorosim devices: {text}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Dispatch to list / monitor / emulate."""
    if args.action == "list":
        return list_ports(args.json)
    if args.action == "monitor":
        if not args.target:
            return _fail(
                "monitor needs a source URL, e.g. 'fluorosim devices monitor /dev/ttyACM0'"
            )
        return monitor(args.target, 5.0 if args.seconds is None else args.seconds, args.json)
    if not args.target:
        return _fail("emulate needs a kind: gimbal, pose, imu or ndi")
    return emulate(args)


def list_ports(as_json: bool = False) -> int:
    """Print the serial ports pyserial sees."""
    import serial.tools.list_ports

    ports = []
    for info in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        vid_pid = f"{info.vid:04X}:{info.pid:04X}" if info.vid is not None else None
        ports.append(
            {
                "device": info.device,
                "vid_pid": vid_pid,
                "serial_number": info.serial_number,
                "description": info.description,
            }
        )
    if as_json:
        print(json.dumps(ports, indent=2))
        return 0
    if not ports:
        print("no serial ports found")
    for port in ports:
        vid_pid = port["vid_pid"] or "—"
        serial_number = f" SN {port['serial_number']}" if port["serial_number"] else ""
        print(f"{port['device']:<24} {vid_pid:<10} {port['description']}{serial_number}")
    return 0


def _pose_json(sample: Any) -> dict | None:
    if sample is None:
        return None
    return {
        "status": sample.status.value,
        "t_s": sample.t_s,
        "tip_lps_mm": None if sample.tip_lps_mm is None else [float(v) for v in sample.tip_lps_mm],
        "direction_lps": None
        if sample.direction_lps is None
        else [float(v) for v in sample.direction_lps],
        "buttons": sorted(sample.buttons),
        # an uncalibrated rig still shows its pose in its own frame (rig/tracker/IMU world)
        "raw_pose": {
            key: [float(v) for v in value]
            for key, value in sample.raw.items()
            if key.startswith(("tip_", "direction_")) and value is not None
        },
    }


def monitor(url: str, seconds: float, as_json: bool = False) -> int:
    """Watch ``url`` for ``seconds``; print a summary (JSON or text). 0 if any sample arrived."""
    from fluorosim.haptics.urls import SourceUrlError, open_source

    received: list[Any] = []
    lock = threading.Lock()

    def record(sample: Any) -> None:
        with lock:
            received.append(sample)

    try:
        source = open_source(url, recorder=record) if _is_stp1(url) else open_source(url)
    except (SourceUrlError, ValueError, OSError) as error:
        return _fail(str(error))
    statuses: list[str] = []
    last = None
    polled = 0
    start = time.monotonic()
    next_print = start + MONITOR_PRINT_PERIOD_S
    try:
        source.start()
        while time.monotonic() - start < seconds:
            sample = source.poll()
            if sample is not None:
                polled += 1
                last = sample
                if not statuses or statuses[-1] != sample.status.value:
                    statuses.append(sample.status.value)
            if not as_json and time.monotonic() >= next_print:
                next_print += MONITOR_PRINT_PERIOD_S
                print(
                    f"{time.monotonic() - start:5.1f} s  {source.status.value:<13} "
                    f"{_sample_count(source, received, polled)} samples  {source.message}"
                )
            time.sleep(0.005)
    finally:
        source.close()
    elapsed = time.monotonic() - start
    changes = getattr(source, "status_changes", None)
    if changes is not None:
        statuses = [status.value for _, status in changes]
    count = _sample_count(source, received, polled)
    counters = dict(source.counters)
    dropped = {k[len("dropped_") :]: v for k, v in counters.items() if k.startswith("dropped_")}
    last = getattr(getattr(source, "guard", None), "last_output", None) or last
    summary: dict[str, Any] = {
        "url": url,
        "name": source.name,
        "seconds": round(elapsed, 3),
        "samples": count,
        "rate_hz": round(count / elapsed, 2) if elapsed > 0 else 0.0,
        "dropped": dropped,
        "statuses": statuses,
        "last_pose": _pose_json(last),
        "counters": counters,
        "message": source.message,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{source.name}: {count} samples in {elapsed:.1f} s ({summary['rate_hz']} Hz)")
        print(f"dropped lines: {dropped or 'none'}")
        print(f"statuses: {' → '.join(statuses) or 'none'}")
        pose = summary["last_pose"]
        if pose and pose["tip_lps_mm"] is not None:
            tip = ", ".join(f"{v:.2f}" for v in pose["tip_lps_mm"])
            print(f"last pose: {pose['status']} tip ({tip}) mm")
        elif pose:
            print(f"last pose: {pose['status']} (no pose)")
        if source.message:
            print(f"note: {source.message}")
    return 0 if count > 0 else 1


def _is_stp1(url: str) -> bool:
    from fluorosim.haptics.urls import describe_url

    return describe_url(url) == "stp1"


def _sample_count(source: Any, received: list, polled: int) -> int:
    return int(source.counters.get("samples", len(received) or polled))


def emulate(args: argparse.Namespace) -> int:
    """Run an emulator until ``--seconds`` elapse or Ctrl-C; prints where to connect."""
    kind = args.target
    if kind == "ndi":
        return _emulate_ndi(args)
    from fluorosim.haptics.emulators import KINDS, make_emulator

    if kind not in KINDS:
        return _fail(f"unknown emulator kind {kind!r}; choose gimbal, pose, imu or ndi")

    def event(text: str) -> None:
        if text.startswith("plugged"):
            slave = getattr(runner.transport, "slave_path", "")
            print(f"port: {runner.path}" + (f"  (now {slave})" if slave else ""), flush=True)
        elif text == "unplugged":
            print("unplugged", flush=True)

    try:
        runner = make_emulator(
            kind,
            tcp_port=args.tcp,
            script=args.script,
            faults=args.faults,
            rate_hz=args.rate,
            seed=args.seed,
            on_event=event,
        )
    except (ValueError, OSError) as error:
        return _fail(str(error))
    print(f"STP/1 {kind} emulator; connect to the port below (Ctrl-C to stop)", flush=True)
    try:
        runner.run(args.seconds)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    except OSError as error:
        return _fail(f"emulator stopped: {error}")
    print(f"injected: {json.dumps(runner.injected())}", flush=True)
    return 0


def _emulate_ndi(args: argparse.Namespace) -> int:
    try:
        from fluorosim.haptics import ndi_emulator
    except ImportError as error:
        return _fail(f"the NDI emulator is not available in this build ({error})")
    faults = None
    if args.faults:
        faults = ndi_emulator.Faults(
            bad_crc_every=25 if "checksum" in args.faults else 0,
            garbage_before_reply=b"\x00\xff" if "garbage" in args.faults else b"",
        )
    try:
        emulator = ndi_emulator.serve(pty=args.tcp is None, tcp_port=args.tcp, faults=faults)
    except (ValueError, OSError) as error:
        return _fail(str(error))
    if args.tcp is not None:
        print(f"port: ndi+tcp://127.0.0.1:{emulator.tcp_port}", flush=True)
    else:
        print(f"port: ndi:{emulator.port_path}", flush=True)
    try:
        end = None if args.seconds is None else time.monotonic() + args.seconds
        while end is None or time.monotonic() < end:
            time.sleep(0.1)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        emulator.stop()
    return 0
