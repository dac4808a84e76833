"""Run an operation's generator against given facts and collect the commands it would run."""

from __future__ import annotations

from typing import Any

from pyinfra.context import ctx_host


class FakeHost:
    def __init__(self, facts: dict[type, Any]) -> None:
        self.facts = facts
        self.noops: list[str] = []
        self.data: dict[str, Any] = {}
        self.groups: list[str] = ["app"]
        self.name = "app"
        self.current_op_global_arguments: dict[str, Any] = {}

    def get_fact(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        if cls in self.facts:
            return self.facts[cls]
        return cls().default()  # e.g. pyinfra's own File fact: the file does not exist yet

    def noop(self, description: str) -> None:
        self.noops.append(description)


def commands(op: Any, facts: dict[type, Any], **kwargs: Any) -> tuple[list[str], list[str]]:
    fake = FakeHost(facts)
    with ctx_host.use(fake):
        out = [str(c) for c in op._inner(**kwargs)]
    return out, fake.noops
