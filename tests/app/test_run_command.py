"""``fluorosim run`` refuses what it cannot start before it opens a window."""

from __future__ import annotations

from fluorosim.app.cli import main


def test_an_unknown_scenario_is_named_with_the_shipped_ones_before_any_window(capsys):
    """A mistyped --scenario (here the id's old spelling) is one line naming the shipped ids and
    exit code 2; it used to open the window, show the problem and, in a smoke run, wait for a
    shot that never came until the caller's timeout."""
    code = main(["run", "--scenario", "sij_lateral", "--trainee", "t1", "--quit-after", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert "'sij_lateral' is not a shipped scenario" in err and "sij-lateral" in err
