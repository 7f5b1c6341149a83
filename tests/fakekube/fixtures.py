"""Pytest fixtures: ``fakekube`` (a started server per test) and ``kubeconfig`` (a file for it).

Enable with ``pytest_plugins = ["tests.fakekube.fixtures"]`` in a conftest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import FakeKube


@pytest.fixture
def fakekube() -> Iterator[FakeKube]:
    with FakeKube() as server:
        yield server


@pytest.fixture
def kubeconfig(fakekube: FakeKube, tmp_path: Path) -> Path:
    return fakekube.write_kubeconfig(tmp_path / "kubeconfig")
