"""``fluorosim report`` and ``fluorosim replay --record`` as a lab uses them (issues #17 and #15).

Instructor accounts from the command line (passphrase from a file or the environment), head and
count printed by every report, export and verify, exit codes on tampered stores, anchors in a
second file, export/import between two SQLite stores, and a scripted attempt entered with
``replay --record`` showing in the JSON report; a score edited by hand in the SQLite file is named.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3

import pytest

from fluorosim.app import cli
from fluorosim.scenarios import patients, recording
from fluorosim.scenarios.loader import load_shipped
from fluorosim.scenarios.records import identity
from fluorosim.scenarios.scripts import expert_script, failure_script
from tests.scenarios.conftest import StandInRenderer
from tests.scenarios.synthetic import build_synthetic_patient

synthetic = functools.lru_cache(maxsize=1)(build_synthetic_patient)
HEAD = re.compile(r"ledger head ([0-9a-f]{64}) \((\d+) records\)")


@pytest.fixture(autouse=True)
def quick_scrypt(monkeypatch):
    """Cheaper scrypt for the accounts made here (its parameters are stored with each hash)."""
    monkeypatch.setattr(identity, "SCRYPT_LOG2_N", 10)
    monkeypatch.setattr(identity, "SCRYPT_P", 1)
    monkeypatch.delenv("FLUOROSIM_PASSPHRASE", raising=False)
    monkeypatch.delenv("FLUOROSIM_BY_PASSPHRASE", raising=False)


@pytest.fixture
def injected(monkeypatch):
    """Replay builds the synthetic patient and renders with the stand-in."""
    patient = synthetic()
    monkeypatch.setattr(
        patients, "patient_for", lambda spec, overrides=None, cache_dir=None: patient
    )
    monkeypatch.setattr(recording, "default_renderer", lambda p, model: StandInRenderer(p))
    return patient


def head_of(text: str) -> tuple[str, int]:
    match = HEAD.search(text)
    assert match, text
    return match.group(1), int(match.group(2))


@pytest.fixture
def lab(tmp_path, injected, capsys, monkeypatch):
    """A lab store with instructor dr-lee (first set-up) and two recorded scripted attempts."""
    db = tmp_path / "lab.sqlite"
    url = f"sqlite:///{db}"
    secret = tmp_path / "lee.pass"
    secret.write_text("lee's long passphrase\n")
    assert cli.main(["report", "instructor", "add", "dr-lee", "--name", "Dr Ann Lee",
                     "--db", url, "--passphrase-file", str(secret)]) == 0  # fmt: skip
    assert "instructor dr-lee (Dr Ann Lee) added by first set-up" in capsys.readouterr().out
    scenario = load_shipped("sij-lateral")
    expert = tmp_path / "expert.json"
    expert.write_text(json.dumps(expert_script(scenario, injected)))
    breach = tmp_path / "breach.json"
    breach.write_text(json.dumps(failure_script(scenario, injected, "foraminal_breach")))
    assert cli.main(["replay", str(expert), "--no-images", "--record", "--trainee", "t-1",
                     "--db", url]) == 0  # fmt: skip
    assert cli.main(["replay", str(breach), "--no-images", "--record", "--trainee", "t-1",
                     "--db", url]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "recorded as attempt 1 of t-1" in out and "recorded as attempt 2 of t-1" in out
    return {"url": url, "db": db, "secret": secret, "expert": expert}


def test_replay_record_then_report_json_shows_the_attempts(lab, tmp_path, capsys):
    out = tmp_path / "t-1.json"
    code = cli.main(["report", "--db", lab["url"], "--trainee", "t-1", "--format", "json",
                     "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads(out.read_text())
    assert [(a["scenario"], a["passed"]) for a in data["attempts"]] == [
        ("sij-lateral", True),
        ("sij-lateral", False),
    ]
    assert data["attempts"][0]["score"] > data["attempts"][1]["score"]
    assert data["ledger"]["ok"] and data["ledger"]["head_hash"] == head_of(printed)[0]
    assert head_of(printed)[1] == data["ledger"]["records_checked"] == 4


def test_trainee_refused_as_instructor_and_accounts_need_an_instructor(lab, tmp_path, capsys):
    secret = lab["secret"]
    code = cli.main(["report", "instructor", "add", "t-1", "--name", "Sneaky", "--db", lab["url"],
                     "--passphrase-file", str(secret)])  # fmt: skip
    assert code == 2 and "'t-1' is a trainee" in capsys.readouterr().err
    code = cli.main(["report", "instructor", "add", "dr-kim", "--name", "Dr Kim", "--db",
                     lab["url"], "--passphrase-file", str(secret)])  # fmt: skip
    assert code == 2 and "only an existing instructor can add" in capsys.readouterr().err
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not lee's passphrase\n")
    code = cli.main(["report", "instructor", "add", "dr-kim", "--name", "Dr Kim", "--db",
                     lab["url"], "--by", "dr-lee", "--by-passphrase-file", str(wrong),
                     "--passphrase-file", str(secret)])  # fmt: skip
    assert code == 2 and "wrong passphrase for instructor 'dr-lee'" in capsys.readouterr().err


def test_verify_prints_head_and_fails_on_cut_tail_and_hand_edit(lab, tmp_path, capsys):
    anchors = tmp_path / "anchors.jsonl"
    assert cli.main(["report", "verify", "--db", lab["url"], "--anchor-file", str(anchors)]) == 0
    out = capsys.readouterr().out
    head, count = head_of(out)
    assert "ledger OK" in out and f"anchored head {head} ({count} records)" in out
    assert json.loads(anchors.read_text())["head"] == head
    connection = sqlite3.connect(lab["db"])  # cut the newest attempt: the chain alone still links
    connection.execute("DELETE FROM ledger WHERE seq = ?", (count,))
    for table in ("metrics", "findings"):
        connection.execute(f"DELETE FROM {table} WHERE attempt_id = 2")
    connection.execute("DELETE FROM attempts WHERE id = 2")
    connection.commit()
    assert cli.main(["report", "verify", "--db", lab["url"]]) == 0
    capsys.readouterr()
    assert cli.main(["report", "verify", "--db", lab["url"], "--expect-head", head]) == 1
    captured = capsys.readouterr()
    assert "is not in this ledger" in captured.err and head_of(captured.out)[1] == count - 1
    assert cli.main(["report", "verify", "--db", lab["url"], "--anchor-file", str(anchors)]) == 1
    assert f"records #{count}–#{count} were removed from the end" in capsys.readouterr().err
    assert len(anchors.read_text().splitlines()) == 1  # a failed check anchors nothing
    connection.execute("UPDATE attempts SET score = 12.5 WHERE id = 1")  # by hand, in the file
    connection.commit()
    connection.close()
    assert cli.main(["report", "verify", "--db", lab["url"]]) == 1
    assert "attempt 1 was altered" in capsys.readouterr().err
    out_pdf = tmp_path / "t-1.json"
    code = cli.main(["report", "--db", lab["url"], "--trainee", "t-1", "--format", "json",
                     "--out", str(out_pdf)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1 and "ledger FAILED" in captured.out and "attempt 1 was altered" in captured.err
    assert json.loads(out_pdf.read_text())["ledger"]["ok"] is False


def test_export_import_between_stores_from_the_command_line(lab, tmp_path, capsys, monkeypatch):
    bundle = tmp_path / "t-1.fsb"
    assert cli.main(["report", "export", "--db", lab["url"], "--trainee", "t-1",
                     "--out", str(bundle)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    bundle_head = re.search(r"bundle head ([0-9a-f]{64}) \((\d+) records\)", out)
    assert bundle_head and "2 attempts and 0 sign-offs of t-1" in out and HEAD.search(out)
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    monkeypatch.setenv("FLUOROSIM_ATTEMPTS_DIR", str(tmp_path / "imported-attempts"))
    args = ["report", "import", str(bundle), "--db", other, "--expect-head", bundle_head.group(1)]
    assert cli.main(args) == 0
    assert "imported 2 of 2 attempts" in capsys.readouterr().out
    assert cli.main(args) == 0
    assert "nothing new" in capsys.readouterr().out
    assert (
        cli.main(["report", "import", str(bundle), "--db", other, "--expect-head", "0" * 64]) == 1
    )
    assert "bundle refused" in capsys.readouterr().err
    assert cli.main(["report", "trainees", "--db", other]) == 0
    assert "t-1\tt-1\t-\t2 attempts" in capsys.readouterr().out


def test_replay_record_refuses_an_instructor_id_as_trainee(lab, capsys):
    code = cli.main(["replay", str(lab["expert"]), "--no-images", "--record", "--trainee",
                     "dr-lee", "--db", lab["url"]])  # fmt: skip
    assert code == 2 and "not recorded: 'dr-lee' is an instructor" in capsys.readouterr().err
    assert cli.main(["replay", str(lab["expert"]), "--record"]) == 2
    assert "--record needs --trainee" in capsys.readouterr().err
