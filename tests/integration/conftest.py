"""Fixtures for integration tests: one real stack per module, a fresh project per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.images import ensure_images
from tests.support.stack import Stack, open_stack


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    return ensure_images()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]) -> Iterator[Stack]:
    with open_stack(tmp_path_factory.mktemp("stack")) as opened:
        yield opened


@pytest.fixture
def project(stack: Stack) -> str:
    """A project name of this test's own, so tests never share containers or ports."""
    name = "t" + uuid.uuid4().hex[:8]
    stack.projects.add(name)
    return name
