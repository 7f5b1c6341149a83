"""Pytest fixtures: ``fakekube`` (a started server per test) and ``kubeconfig`` (a file for it).

Enable with ``pytest_plugins = ["fakekube.fixtures"]`` in a conftest. That also checks, once
the whole session is over, that no Locust process started by a local kubelet outlived it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from .server import FakeKube


def locust_processes() -> list[psutil.Process]:
    """Live Locust processes started, directly or not, by this process."""
    found = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "locust" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(scope="session", autouse=True)
def no_locust_left_behind() -> Iterator[None]:
    yield
    leftovers = locust_processes()
    for process in leftovers:
        process.kill()  # so one failure does not leave load running on the machine
    assert leftovers == [], f"Locust processes outlived the test session: {leftovers}"


@pytest.fixture
def fakekube() -> Iterator[FakeKube]:
    with FakeKube() as server:
        yield server


@pytest.fixture
def kubeconfig(fakekube: FakeKube, tmp_path: Path) -> Path:
    return fakekube.write_kubeconfig(tmp_path / "kubeconfig")
