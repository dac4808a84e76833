"""What every test module shares: the `needs` marker, and a check that no test gevent-patches
pytest's process. A test that needs a program this machine lacks is skipped on a developer's
machine, but fails on CI (env CI=true), where setup.sh must have installed everything: a missing
dependency there is a broken setup, not a reason to pass."""

from __future__ import annotations

import os

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(available, what): skipped without it, failed on CI")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        available, what = mark.args
        if available:
            continue
        if on_ci():
            pytest.fail(f"missing on CI: {what}", pytrace=False)
        pytest.skip(f"needs {what}")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    # Importing pyinfra's CLI package gevent-patches the process; in pytest's process that makes
    # later tests that use threads or asyncio (TestClient, the MCP client) hang. Such code runs in
    # tests.support.isolated instead: say at once which test broke that, rather than hang later.
    from tests.support.isolated import gevent_patched

    if gevent_patched():
        pytest.fail(
            f"{item.nodeid} gevent-patched pytest's process (import of pyinfra_cli): "
            "drive pyinfra through tests.support.isolated.call",
            pytrace=False,
        )
