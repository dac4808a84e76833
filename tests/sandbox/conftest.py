"""Shared setup for the sandbox tests: the `sandbox` marker and the podman settings
this kind of host needs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.podman import CONTAINERS_CONF


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sandbox: four local servers over SSH (slow)"
    )


@pytest.fixture(scope="session", autouse=True)
def containers_conf() -> Iterator[None]:
    """Point a podman service the sandbox starts at settings that work on cgroups-v1 VMs too."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("CONTAINERS_CONF"):
            patch.setenv("CONTAINERS_CONF", str(CONTAINERS_CONF))
        yield
