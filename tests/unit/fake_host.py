"""Run an operation's generator against given facts and collect the commands it would run.

Facts are keyed by their class and arguments, as pyinfra's own JSON fixtures key them by name and
arguments: ``{fact(TextFile, path="/etc/x"): "content", PodmanNetworks: {"codeb-main"}}`` (a bare
class only for a fact read without arguments). A fact the test did not give is an error, so a test
cannot pass on a default it never looked at, nor on a value meant for another file.
"""

from __future__ import annotations

from typing import Any

from pyinfra.context import ctx_host

FactKey = tuple[type, str]


def fact(cls: type, *args: Any, **kwargs: Any) -> FactKey:
    """The key of ``host.get_fact(cls, *args, **kwargs)`` in a fake host's facts."""
    shown = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in sorted(kwargs.items())]
    return cls, ", ".join(shown)


class UnexpectedFact(AssertionError):
    """An operation read a fact this test did not provide."""


class FakeHost:
    def __init__(self, facts: dict[type | FactKey, Any]) -> None:
        self.facts = facts
        self.read: list[FactKey] = []
        self.noops: list[str] = []
        self.data: dict[str, Any] = {}
        self.groups: list[str] = ["app"]
        self.name = "app"
        self.current_op_global_arguments: dict[str, Any] = {}

    def get_fact(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        key = fact(cls, *args, **kwargs)
        self.read.append(key)
        if key in self.facts:
            return self.facts[key]
        if not args and not kwargs and cls in self.facts:
            return self.facts[cls]
        given = ", ".join(sorted(_describe(k) for k in self.facts)) or "none"
        raise UnexpectedFact(f"{_describe(key)} was read but not given (given: {given})")

    def noop(self, description: str) -> None:
        self.noops.append(description)


def _describe(key: type | FactKey) -> str:
    if isinstance(key, tuple):
        return f"{key[0].__name__}({key[1]})"
    return f"{key.__name__}()"


def commands(op: Any, facts: dict[type | FactKey, Any], **kwargs: Any) -> tuple[list[str], list[str]]:
    fake = FakeHost(facts)
    with ctx_host.use(fake):
        out = [str(c) for c in op._inner(**kwargs)]
    return out, fake.noops
