"""Benchmark of the STP/1 input path: a line written to the port → filtered pose poll()-able.

:func:`benchmark_serial_latency` writes ``GIMB`` lines at 250 Hz into the master of a
pseudo-terminal (timestamping each write), runs a :class:`SerialStp1Source` on the slave and polls
it from the "session" thread every ≈1 ms, as the GUI timer would. Latency = time the filtered
sample is first returned by ``poll()`` − time its line was written. It also reports the reader
thread's CPU share (thread CPU time / wall time). Target (issue #5): ≤ 5 ms at 250 Hz.
Run it with ``fluorosim bench`` (once wired there) — never from the test suite as an assertion.
"""

from __future__ import annotations

import os
import threading
import time
import tty

import numpy as np

from fluorosim.haptics import stp1
from fluorosim.haptics.rig_models import GimbalRig
from fluorosim.haptics.serial_source import SerialStp1Source
from fluorosim.models import frames

#: Latency target from issue #5, ms.
TARGET_LATENCY_MS = 5.0


def benchmark_serial_latency(
    rate_hz: float = 250.0, seconds: float = 3.0, poll_period_s: float = 0.001
) -> dict[str, object]:
    """Measure port → poll() latency and the reader thread's CPU share; returns a summary dict."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    write_times: dict[int, float] = {}
    stop = threading.Event()

    def writer() -> None:
        period = 1.0 / rate_hz
        next_t = time.perf_counter() + 0.2  # let the source connect first
        seq = 0
        while not stop.is_set():
            now = time.perf_counter()
            if now < next_t:
                time.sleep(min(period, next_t - now))
                continue
            t_ms = int(seq * 1000.0 / rate_hz)
            line = stp1.encode(f"GIMB,{seq % 65536},{t_ms},OK,10.00,-30.00,0.00,{20 + seq % 7}.00")
            write_times[seq % 65536] = time.perf_counter()
            try:
                os.write(master, line)
            except OSError:
                return
            seq += 1
            next_t += period

    latencies_ms: list[float] = []
    source = SerialStp1Source(path, rig=GimbalRig(frames.identity()), reconnect=False)
    source.start()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds + 0.2:
            sample = source.poll()
            now = time.perf_counter()
            if sample is not None and "seq" in sample.raw:
                written = write_times.get(int(sample.raw["seq"]))
                if written is not None:
                    latencies_ms.append((now - written) * 1000.0)
            time.sleep(poll_period_s)
        wall_s = time.perf_counter() - start
        cpu_s = source.reader_cpu_s
        samples = source.counters.get("samples", 0)
    finally:
        stop.set()
        thread.join(1.0)
        source.close()
        os.close(master)
        os.close(slave)
    lat = np.asarray(latencies_ms) if latencies_ms else np.asarray([np.nan])
    p95 = float(np.percentile(lat, 95))
    return {
        "name": "serial_latency",
        "rate_hz": rate_hz,
        "lines_written": len(write_times),
        "samples": int(samples),
        "polled": len(latencies_ms),
        "latency_ms_median": round(float(np.median(lat)), 3),
        "latency_ms_p95": round(p95, 3),
        "latency_ms_max": round(float(np.max(lat)), 3),
        "reader_cpu_share": round(cpu_s / wall_s, 4),
        "target_ms": TARGET_LATENCY_MS,
        "passed": bool(p95 <= TARGET_LATENCY_MS),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(benchmark_serial_latency(), indent=2))
