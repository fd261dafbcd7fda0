"""``fluorosim devices``: list, monitor --json against the pty emulator, emulate, and errors."""

from __future__ import annotations

import json
import threading

import pytest

from fluorosim.app import cli
from fluorosim.haptics.emulators import make_emulator


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json(capsys):
    code, out, _ = run_cli(["devices", "list", "--json"], capsys)
    assert code == 0
    ports = json.loads(out)
    assert isinstance(ports, list)
    assert all({"device", "vid_pid", "serial_number", "description"} <= set(p) for p in ports)


def test_monitor_json_against_the_emulator(tmp_path, capsys):
    with make_emulator("gimbal", link_dir=tmp_path, faults="checksum", rate_hz=200, seed=1) as emu:
        code, out, _ = run_cli(
            ["devices", "monitor", emu.path, "--seconds", "1.5", "--json"], capsys
        )
        injected = emu.injected()
    assert code == 0
    summary = json.loads(out)
    assert summary["samples"] > 50 and summary["rate_hz"] > 30
    assert 0 < summary["dropped"]["checksum"] <= injected["checksum"]
    assert summary["statuses"][0] == "UNCALIBRATED"  # no calibration given to monitor
    pose = summary["last_pose"]
    assert pose["status"] == "UNCALIBRATED" and pose["tip_lps_mm"] is None
    assert len(pose["raw_pose"]["tip_rig_mm"]) == 3
    assert summary["counters"]["seq_gaps"] >= summary["dropped"]["checksum"]


def test_monitor_missing_port_says_so(capsys):
    code, out, _ = run_cli(
        ["devices", "monitor", "/dev/fluorosim-no-such-port", "--seconds", "0.3", "--json"], capsys
    )
    assert code == 1
    summary = json.loads(out)
    assert summary["samples"] == 0
    assert summary["message"].startswith("no device at /dev/fluorosim-no-such-port")
    assert summary["statuses"] == ["DISCONNECTED"]


def test_monitor_bad_url_is_a_message_not_a_traceback(capsys):
    code, _, err = run_cli(["devices", "monitor", "igtl://host:notaport"], capsys)
    assert code == 2 and "not a number" in err


def test_emulate_prints_the_port_and_injected_counts(capsys):
    code, out, _ = run_cli(["devices", "emulate", "imu", "--seconds", "0.3"], capsys)
    assert code == 0
    assert "port: /tmp/fluorosim-emu-" in out and "injected:" in out


def test_emulate_tcp_and_monitor_it(capsys):
    result: dict = {}
    with make_emulator("pose", tcp_port=0, rate_hz=100) as emu:
        thread = threading.Thread(
            target=lambda: result.setdefault(
                "code", cli.main(["devices", "monitor", emu.path, "--seconds", "1", "--json"])
            )
        )
        thread.start()
        thread.join(30)
    out, _ = capsys.readouterr()
    assert result["code"] == 0
    assert json.loads(out)["samples"] > 10


@pytest.mark.parametrize(
    "argv", [["devices", "emulate"], ["devices", "emulate", "laser"], ["devices", "monitor"]]
)
def test_usage_errors(argv, capsys):
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err.startswith("fluorosim devices:")


def test_emulate_bad_faults(capsys):
    code, _, err = run_cli(["devices", "emulate", "gimbal", "--faults", "flood"], capsys)
    assert code == 2 and "unknown fault" in err
