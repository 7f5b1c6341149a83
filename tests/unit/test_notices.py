"""PebbleNotifier against a small stand-in for Pebble's API on a unix socket.

The stand-in answers `POST /v1/notices` as Pebble does: 200 with the notice's id for a custom
notice whose key is `domain/path`, 400 with an error message otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reconciler.runtime.notices import TEST_CHANGED, PebbleNotifier, worth_a_notice
from tests.unit.runtime_support import eventually, logs, messages

# Pebble's rule for a custom notice's key: a domain, a slash, a path.
KEY = re.compile(r"[a-z0-9]+(\.[a-z0-9]+)+/[a-z0-9\-._/]+")


class FakePebble:
    """Records the notices it accepts; `refuse` makes it answer 500."""

    def __init__(self) -> None:
        self.notices: list[dict[str, Any]] = []
        self.refuse = False

    async def post_notices(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.refuse:
            return self._error(500, "internal error")
        if body.get("action") != "add" or body.get("type") != "custom":
            return self._error(400, 'invalid action or type, must be "add" and "custom"')
        if not KEY.fullmatch(body.get("key", "")):
            return self._error(400, f'invalid key "{body.get("key")}"')
        self.notices.append(body)
        result = {"id": str(len(self.notices))}
        return web.json_response(
            {"type": "sync", "status-code": 200, "status": "OK", "result": result}
        )

    @staticmethod
    def _error(code: int, message: str) -> web.Response:
        body = {"type": "error", "status-code": code, "result": {"message": message}}
        return web.Response(status=code, text=json.dumps(body), content_type="application/json")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A short path: unix socket paths are limited to about 100 bytes.
    path = Path(tempfile.mkdtemp(prefix="pebble-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def serve(pebble: FakePebble, path: Path) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/v1/notices", pebble.post_notices)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    return runner


@pytest.fixture
async def pebble(socket_dir: Path) -> AsyncIterator[tuple[FakePebble, str]]:
    fake = FakePebble()
    path = socket_dir / "pebble.socket"
    runner = await serve(fake, path)
    yield fake, str(path)
    await runner.cleanup()


async def test_a_notice_reaches_pebble_as_a_custom_notice(pebble):
    fake, path = pebble
    notifier = PebbleNotifier(path)

    await notifier.notify(TEST_CHANGED, {"namespace": "load", "name": "smoke"})

    await eventually(lambda: fake.notices, "the notice")
    assert fake.notices == [
        {
            "action": "add",
            "type": "custom",
            "key": "locust.io/test-changed",
            "data": {"namespace": "load", "name": "smoke"},
        }
    ]
    await notifier.close()


async def test_a_burst_of_calls_is_one_notice_with_the_latest_data(pebble):
    fake, path = pebble
    notifier = PebbleNotifier(path)

    for i in range(50):
        await notifier.notify(TEST_CHANGED, {"name": f"test-{i}"})
    await notifier.flush()

    assert [n.get("data") for n in fake.notices] == [{"name": "test-49"}]
    await notifier.close()


async def test_calls_during_the_interval_bring_one_more_notice_after_it(pebble):
    fake, path = pebble
    notifier = PebbleNotifier(path, min_interval=0.05)
    await notifier.notify(TEST_CHANGED, {"name": "first"})
    await eventually(lambda: fake.notices, "the first notice")

    for i in range(5):
        await notifier.notify(TEST_CHANGED, {"name": f"later-{i}"})
    await notifier.flush()

    # The last change is never lost: the calls after the first notice bring exactly one more.
    assert [n["data"]["name"] for n in fake.notices] == ["first", "later-4"]
    await notifier.close()


async def test_each_key_has_its_own_notices(pebble):
    fake, path = pebble
    notifier = PebbleNotifier(path)

    await notifier.notify("locust.io/test-changed")
    await notifier.notify("locust.io/other")
    await notifier.flush()

    assert sorted(n["key"] for n in fake.notices) == ["locust.io/other", "locust.io/test-changed"]
    assert all("data" not in n for n in fake.notices)
    await notifier.close()


async def test_without_pebble_notify_never_raises_and_logs_once(socket_dir, logs):
    notifier = PebbleNotifier(str(socket_dir / "missing.socket"))

    for _ in range(3):
        await notifier.notify(TEST_CHANGED)
        await notifier.flush()

    logged = messages(logs, "reconciler.runtime.notices").splitlines()
    assert len(logged) == 1
    assert logged[0].startswith(
        f"Could not record the Pebble notice {TEST_CHANGED} on {socket_dir}/missing.socket: "
    )
    await notifier.close()


async def test_a_refused_notice_is_logged_once_until_one_succeeds(pebble, logs):
    fake, path = pebble
    notifier = PebbleNotifier(path, min_interval=0)
    fake.refuse = True
    for _ in range(2):
        await notifier.notify(TEST_CHANGED)
        await notifier.flush()
    fake.refuse = False
    await notifier.notify(TEST_CHANGED)
    await notifier.flush()
    fake.refuse = True
    await notifier.notify(TEST_CHANGED)
    await notifier.flush()

    logged = messages(logs, "reconciler.runtime.notices").splitlines()
    assert len(logged) == 2
    assert all(": 500 " in line and "internal error" in line for line in logged)
    assert len(fake.notices) == 1
    await notifier.close()


async def test_a_key_pebble_refuses_is_logged_with_its_reason(pebble, logs):
    _, path = pebble
    notifier = PebbleNotifier(path)

    await notifier.notify("not-a-key")
    await notifier.flush()

    assert 'invalid key \\"not-a-key\\"' in messages(logs, "reconciler.runtime.notices")
    await notifier.close()


def test_the_socket_comes_from_pebble_socket_in_the_environment():
    found = PebbleNotifier.from_env({"PEBBLE_SOCKET": "/charm/container/pebble.socket"})
    assert found is not None
    assert found.socket_path == "/charm/container/pebble.socket"
    assert PebbleNotifier.from_env({}) is None
    assert PebbleNotifier.from_env({"PEBBLE_SOCKET": ""}) is None


@pytest.mark.parametrize(
    ("before", "after", "worth"),
    [
        (None, {"phase": "Pending"}, True),
        ({"phase": "Pending"}, {"phase": "Running"}, True),
        ({"phase": "Succeeded"}, {"phase": "Succeeded", "verdict": "Failed"}, True),
        (
            {"phase": "Running", "results": {"rps": 1}},
            {"phase": "Running", "results": {"rps": 2}},
            False,
        ),
        ({"phase": "Running"}, {"phase": "Running", "conditions": []}, False),
    ],
)
def test_only_a_new_phase_or_verdict_is_worth_a_notice(before, after, worth):
    assert worth_a_notice(before, after) is worth
