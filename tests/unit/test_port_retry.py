"""A new project whose planned port another deploy took meanwhile is planned and run again by the
controller (the state tool wrote nothing); any other failure is not retried."""

import pytest

from codeb_infra.controller import runner
from codeb_infra.domain.errors import PortTaken, RunFailed


def attempts_until(monkeypatch, outcomes):
    """Run `run_flow` against `outcomes` (an exception to raise or a result per attempt)."""
    calls = []

    def once(*args, **kwargs):
        calls.append(args)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(runner, "_run_flow_once", once)
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    return calls


def test_a_taken_port_is_planned_again_until_the_run_gets_through(monkeypatch, capsys):
    done = runner.RunResult(ok=True, changed=3, failed_hosts=[])
    calls = attempts_until(monkeypatch, [PortTaken("on app: p/production: port 4001 was taken"), done])
    assert runner.run_flow("inventory.py", object) is done and len(calls) == 2
    assert "port 4001 was taken; planning again (1/8)" in capsys.readouterr().err


def test_a_port_still_taken_after_every_attempt_or_another_failure_is_raised(monkeypatch):
    attempts_until(monkeypatch, [PortTaken("taken")] * runner.PORT_ATTEMPTS)
    with pytest.raises(PortTaken):
        runner.run_flow("inventory.py", object)
    calls = attempts_until(monkeypatch, [RunFailed("on app: health check failed")])
    with pytest.raises(RunFailed, match="health check"):
        runner.run_flow("inventory.py", object)
    assert len(calls) == 1
