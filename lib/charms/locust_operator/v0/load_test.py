"""Ask the Locust operator for load tests over a relation, and get their results back.

Interface `locust_load_test`. The application that wants load tests (the *requirer*) declares
them in its application databag; the Locust operator (the *provider*) runs one LocustTest per
declared test and writes each test's phase, verdict and summary back in its own application
databag. The library has no dependency beyond `ops`.

## Requirer: a charm that wants load tests

metadata.yaml:

```yaml
requires:
  load-test:
    interface: locust_load_test
    limit: 1
```

charm.py:

```python
from charms.locust_operator.v0.load_test import (
    LoadTest, LoadTestRequirer, ResultsChangedEvent, Threshold,
)

LOCUSTFILE = '''
from locust import HttpUser, task

class Visitor(HttpUser):
    @task
    def home(self):
        self.client.get("/")
'''

class MyCharm(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        # `tests` (a list, or a callable returning one) is written whenever the relation is
        # made and when this unit becomes the leader; call `request()` to change it later.
        self.load_test = LoadTestRequirer(self, tests=self._tests)
        framework.observe(self.load_test.on.results_changed, self._on_results)

    def _tests(self) -> list[LoadTest]:
        return [
            LoadTest(
                name="smoke",
                locustfile=LOCUSTFILE,
                host=f"http://{self.app.name}.{self.model.name}.svc:8080",
                users=20,
                spawn_rate=5,
                run_time="2m",
                workers=2,
                thresholds=(Threshold("p95Ms", max=500), Threshold("failRatio", max=0.01)),
            )
        ]

    def _on_results(self, event: ResultsChangedEvent):
        smoke = event.results.get("smoke")
        if smoke and smoke.verdict == "Failed":
            logger.warning("smoke test failed: %s", smoke.message)
```

Only the leader writes the databag (`request()` does nothing on other units). Invalid tests
raise `ValueError` naming the field when the `LoadTest` is built, so they never reach the
provider from this library.

## Provider: the Locust operator charm

```python
self.load_test = LoadTestProvider(self)
framework.observe(self.load_test.on.tests_requested, self._on_tests_requested)
framework.observe(self.load_test.on.tests_withdrawn, self._on_tests_withdrawn)
...
for request in self.load_test.requests():   # one per relation
    request.tests     # {name: LoadTest}, the valid ones
    request.errors    # {name: "users: must be an integer >= 1, got 0"}, the invalid ones
    request.error     # the whole databag is unusable (wrong version, not JSON), else None
self.load_test.publish(relation, {name: TestResult(...)})   # leader only
```

Invalid data never raises: each invalid test gets an error, which the provider publishes as a
result with phase `Invalid`.

## The databags (schema version 1)

Both sides write `version: "1"`; the provider answers in the version the requirer wrote, and
each side ignores data of a version it does not know (the provider publishes an `error`).

Requirer application databag:

- `version`: `"1"`
- `tests`: a JSON list (at most 32) of objects, each with
  - `name` (required): an RFC 1123 label (lowercase letters, digits and `-`), unique in the list;
    the provider names the LocustTest `<requirer-app>-<name>`, which must fit 56 characters;
  - `locustfile` (required): the locustfile's content (Python), at most 1,000,000 bytes;
  - `host`: the base URL Locust tests (`--host`), no whitespace;
  - `runTime` (required): how long the test runs, in Locust's syntax (`300`, `90s`, `5m`,
    `1h30m`): Locust's `--run-time` (a test must end to have results);
  - `users` (integer >= 1), `spawnRate` (number > 0): Locust's `--users` and `--spawn-rate`;
  - `workers`: the number of worker pods, 1 to 500, default 1;
  - `thresholds`: at most 20 objects `{metric, max | min, request?, abortOnFail?}`: `metric` one
    of `requests`, `failures`, `failRatio`, `rps`, `avgMs`, `p50Ms`, `p95Ms`, `p99Ms`, `maxMs`;
    exactly one of `max` and `min` (numbers); `request` one request as `"METHOD name"` (for
    example `"GET /checkout"`; default: Locust's Aggregated row); `abortOnFail` (boolean,
    default false) stops the test once the threshold is breached.

  Keys are camelCase, as in the LocustTest resource; an unknown key is an error for that test.

Provider application databag:

- `version`: `"1"`
- `results`: a JSON object, test name -> `{phase, verdict?, message?, summary?, locustTest?,
  error?}`:
  - `phase`: `Pending`, `Running`, `Succeeded` or `Failed` (the LocustTest's phase), or
    `Invalid` when the provider refused the test (then `error` says why: fix the data);
  - `verdict`: `Passed`, `Failed` or `Inconclusive`, once the test with thresholds has ended;
  - `message`: why the verdict is not `Passed` (the breached thresholds, e.g.
    `p95Ms 612 > 500 on GET /checkout`);
  - `summary`: the latest numbers: `requests`, `failures`, `failRatio`, `rps`, `avgMs`, `p50Ms`,
    `p95Ms`, `p99Ms`, `maxMs`, `users`, `workers`, `state` (Locust's), `final` (true once the
    numbers are the settled final ones), `observedAt`;
  - `locustTest`: the LocustTest's name in the provider's model namespace (for kubectl);
  - `error` with a phase other than `Invalid`: the provider could not create the test yet and
    tries again.
- `error`: set when the whole requirer databag is unusable.

Changing a test's definition makes the provider run it again (it replaces the LocustTest);
removing a test from the list, or the relation, deletes its LocustTest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ops

# The unique Charmhub library identifier, never change it.
LIBID = "b3b7de106b0e4a4db726051f7d1fb58b"
# Increment this major API version when introducing breaking changes.
LIBAPI = 0
# Increment this PATCH version before using `charmcraft publish-lib` or reset to 0 if you are
# raising the major API version.
LIBPATCH = 1

logger = logging.getLogger(__name__)

DEFAULT_RELATION_NAME = "load-test"
INTERFACE = "locust_load_test"
SCHEMA_VERSION = "1"

# What a test may ask for (the LocustTest's own limits where it has them).
MAX_TESTS = 32
MAX_THRESHOLDS = 20
MAX_WORKERS = 500
MAX_LOCUSTFILE_BYTES = 1_000_000
MAX_REQUEST_LENGTH = 512
THRESHOLD_METRICS = (
    "requests",
    "failures",
    "failRatio",
    "rps",
    "avgMs",
    "p50Ms",
    "p95Ms",
    "p99Ms",
    "maxMs",
)
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Invalid")
FINISHED_PHASES = ("Succeeded", "Failed", "Invalid")
VERDICTS = ("Passed", "Failed", "Inconclusive")
SUMMARY_KEYS = (
    *THRESHOLD_METRICS,
    "users",
    "workers",
    "state",
    "final",
    "observedAt",
)

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Locust's run-time syntax: whole seconds, or hours, minutes and seconds in that order.
_RUN_TIME = re.compile(r"\d+|(?=\d)(\d+h)?(\d+m)?(\d+s)?")
_REQUEST = re.compile(r"\S+ \S.*")
_TEST_KEYS = {
    "name",
    "locustfile",
    "host",
    "users",
    "spawnRate",
    "runTime",
    "workers",
    "thresholds",
}
_THRESHOLD_KEYS = {"metric", "max", "min", "request", "abortOnFail"}


class InvalidTestError(ValueError):
    """A test (or a threshold) that breaks the schema; the message names the field."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plain(value: float) -> int | float:
    """5.0 -> 5, so the JSON reads as written."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Threshold:
    """A bound on one metric of a test's results: exactly one of `max` and `min`.

    `request` names one request ("METHOD name"); None judges Locust's Aggregated row.
    """

    metric: str
    max: float | None = None
    min: float | None = None
    request: str | None = None
    abort_on_fail: bool = False

    def __post_init__(self) -> None:
        if self.metric not in THRESHOLD_METRICS:
            raise InvalidTestError(
                f"metric: unknown metric {self.metric!r}, one of {', '.join(THRESHOLD_METRICS)}"
            )
        if (self.max is None) == (self.min is None):
            raise InvalidTestError("exactly one of max and min must be given")
        for key, bound in (("max", self.max), ("min", self.min)):
            if bound is not None and not _number(bound):
                raise InvalidTestError(f"{key}: must be a finite number, got {bound!r}")
        if self.request is not None and (
            not isinstance(self.request, str)
            or not _REQUEST.fullmatch(self.request)
            or len(self.request) > MAX_REQUEST_LENGTH
        ):
            raise InvalidTestError(
                f'request: must be "METHOD name" (for example "GET /api"), at most '
                f"{MAX_REQUEST_LENGTH} characters, got {self.request!r}"
            )
        if not isinstance(self.abort_on_fail, bool):
            raise InvalidTestError(f"abortOnFail: must be a boolean, got {self.abort_on_fail!r}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"metric": self.metric}
        if self.max is not None:
            data["max"] = _plain(self.max)
        if self.min is not None:
            data["min"] = _plain(self.min)
        if self.request is not None:
            data["request"] = self.request
        if self.abort_on_fail:
            data["abortOnFail"] = True
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Threshold:
        if not isinstance(data, Mapping):
            raise InvalidTestError(f"must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _THRESHOLD_KEYS)
        if unknown:
            raise InvalidTestError(f"unknown field {unknown[0]!r}")
        if "metric" not in data:
            raise InvalidTestError("metric: required")
        return cls(
            metric=data["metric"],
            max=data.get("max"),
            min=data.get("min"),
            request=data.get("request"),
            abort_on_fail=data.get("abortOnFail", False),
        )


@dataclass(frozen=True)
class LoadTest:
    """One load test a requirer asks for. Building an invalid one raises InvalidTestError."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    locustfile: str
    run_time: str
    host: str = ""
    users: int | None = None
    spawn_rate: float | None = None
    workers: int = 1
    thresholds: tuple[Threshold, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidTestError("name: required")
        if len(self.name) > 63 or not _LABEL.fullmatch(self.name):
            raise InvalidTestError(
                f"name: {self.name!r} is not an RFC 1123 label (at most 63 lowercase letters, "
                "digits or '-', starting and ending with a letter or digit)"
            )
        if not isinstance(self.locustfile, str) or not self.locustfile.strip():
            raise InvalidTestError("locustfile: required (the locustfile's content)")
        if len(self.locustfile.encode()) > MAX_LOCUSTFILE_BYTES:
            raise InvalidTestError(f"locustfile: more than {MAX_LOCUSTFILE_BYTES} bytes")
        if not isinstance(self.host, str) or any(c.isspace() for c in self.host):
            raise InvalidTestError(f"host: must be a URL without whitespace, got {self.host!r}")
        if self.users is not None and (not _integer(self.users) or self.users < 1):
            raise InvalidTestError(f"users: must be an integer >= 1, got {self.users!r}")
        if self.spawn_rate is not None and (not _number(self.spawn_rate) or self.spawn_rate <= 0):
            raise InvalidTestError(f"spawnRate: must be a number > 0, got {self.spawn_rate!r}")
        if not self.run_time:
            raise InvalidTestError(
                "runTime: required: a test given over the relation must end to have results"
            )
        if not isinstance(self.run_time, str) or not _RUN_TIME.fullmatch(self.run_time):
            raise InvalidTestError(
                f"runTime: {self.run_time!r} is not a Locust run time (for example 300, 90s, 5m "
                "or 1h30m)"
            )
        if not _integer(self.workers) or not 1 <= self.workers <= MAX_WORKERS:
            raise InvalidTestError(
                f"workers: must be an integer from 1 to {MAX_WORKERS}, got {self.workers!r}"
            )
        thresholds = tuple(self.thresholds)
        object.__setattr__(self, "thresholds", thresholds)
        if len(thresholds) > MAX_THRESHOLDS:
            raise InvalidTestError(
                f"thresholds: {len(thresholds)} given, at most {MAX_THRESHOLDS}"
            )
        for i, threshold in enumerate(thresholds):
            if not isinstance(threshold, Threshold):
                raise InvalidTestError(f"thresholds[{i}]: must be a Threshold")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "locustfile": self.locustfile}
        if self.host:
            data["host"] = self.host
        if self.users is not None:
            data["users"] = self.users
        if self.spawn_rate is not None:
            data["spawnRate"] = _plain(self.spawn_rate)
        if self.run_time:
            data["runTime"] = self.run_time
        data["workers"] = self.workers
        if self.thresholds:
            data["thresholds"] = [t.to_dict() for t in self.thresholds]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> LoadTest:
        """Read one entry of `tests`; InvalidTestError naming the field."""
        if not isinstance(data, Mapping):
            raise InvalidTestError(f"must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _TEST_KEYS)
        if unknown:
            raise InvalidTestError(f"unknown field {unknown[0]!r}")
        raw_thresholds = data.get("thresholds", [])
        if not isinstance(raw_thresholds, list):
            raise InvalidTestError("thresholds: must be a list")
        thresholds = []
        for i, raw in enumerate(raw_thresholds):
            try:
                thresholds.append(Threshold.from_dict(raw))
            except InvalidTestError as error:
                raise InvalidTestError(f"thresholds[{i}]: {error}") from None
        return cls(
            name=data.get("name", ""),
            locustfile=data.get("locustfile", ""),
            host=data.get("host", ""),
            users=data.get("users"),
            spawn_rate=data.get("spawnRate"),
            run_time=data.get("runTime", ""),
            workers=data.get("workers", 1),
            thresholds=tuple(thresholds),
        )

    def digest(self) -> str:
        """A short fingerprint of the definition: it changes when the test must run again."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TestResult:
    """What the provider reports of one test (see the module docstring for the fields)."""

    __test__ = False  # not a pytest test class, despite the name

    phase: str
    verdict: str | None = None
    message: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    locust_test: str | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        """The test has ended (or was refused): the result will not change by itself."""
        return self.phase in FINISHED_PHASES

    @property
    def passed(self) -> bool:
        """The test ended well: a Passed verdict, or Succeeded without thresholds."""
        if self.verdict is not None:
            return self.verdict == "Passed"
        return self.phase == "Succeeded"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"phase": self.phase}
        for key, value in (
            ("verdict", self.verdict),
            ("message", self.message),
            ("locustTest", self.locust_test),
            ("error", self.error),
        ):
            if value:
                data[key] = value
        if self.summary:
            data["summary"] = dict(self.summary)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TestResult:
        if not isinstance(data, Mapping) or not isinstance(data.get("phase"), str):
            raise ValueError("a result must be an object with a phase")
        summary = data.get("summary")

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            phase=data["phase"],
            verdict=text("verdict"),
            message=text("message"),
            summary=dict(summary) if isinstance(summary, Mapping) else {},
            locust_test=text("locustTest"),
            error=text("error"),
        )


# --- Reading the databags --------------------------------------------------------------------


@dataclass(frozen=True)
class RelationRequests:
    """What one related application asks for: its valid tests, and why the others are refused.

    `error` is set when the whole databag is unusable (then `tests` and `errors` are empty). An
    entry whose name cannot be read is refused under the key `tests[<index>]`.
    """

    relation: ops.Relation
    app: str
    tests: Mapping[str, LoadTest] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def parse_tests(databag: Mapping[str, str]) -> tuple[dict[str, LoadTest], dict[str, str], str]:
    """(valid tests by name, errors by name, problem with the whole databag or "")."""
    if "tests" not in databag and "version" not in databag:
        return {}, {}, ""  # nothing asked yet
    version = databag.get("version")
    if version != SCHEMA_VERSION:
        return (
            {},
            {},
            f"version: unsupported schema version {version!r}, expected {SCHEMA_VERSION!r}",
        )
    try:
        raw = json.loads(databag.get("tests", "[]"))
    except json.JSONDecodeError as error:
        return {}, {}, f"tests: not JSON ({error.msg} at character {error.pos})"
    if not isinstance(raw, list):
        return {}, {}, "tests: must be a JSON list"
    if len(raw) > MAX_TESTS:
        return {}, {}, f"tests: {len(raw)} given, at most {MAX_TESTS}"
    tests: dict[str, LoadTest] = {}
    errors: dict[str, str] = {}
    names = [entry.get("name") if isinstance(entry, Mapping) else None for entry in raw]
    for index, (entry, name) in enumerate(zip(raw, names, strict=True)):
        key = name if isinstance(name, str) and name else f"tests[{index}]"
        if isinstance(name, str) and name and names.count(name) > 1:
            errors[key] = f"name: {name!r} is given {names.count(name)} times"
            continue
        try:
            tests[key] = LoadTest.from_dict(entry)
        except InvalidTestError as error:
            errors[key] = str(error)
    return tests, errors, ""


def parse_results(databag: Mapping[str, str]) -> tuple[dict[str, TestResult], str | None]:
    """(results by test name, the provider's error about the whole request)."""
    if databag.get("version") != SCHEMA_VERSION:
        if databag.get("version") is not None:
            logger.warning("Ignoring load test results of schema %r", databag.get("version"))
        return {}, None
    try:
        raw = json.loads(databag.get("results", "{}"))
    except json.JSONDecodeError:
        logger.warning("Ignoring load test results that are not JSON")
        raw = {}
    results: dict[str, TestResult] = {}
    if isinstance(raw, Mapping):
        for name, data in raw.items():
            try:
                results[name] = TestResult.from_dict(data)
            except ValueError:
                logger.warning("Ignoring an unreadable load test result for %r", name)
    return results, databag.get("error") or None


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --- Requirer ----------------------------------------------------------------------------------


class ResultsChangedEvent(ops.RelationEvent):
    """The provider's results changed; `results` maps each test's name to its TestResult."""

    def __init__(
        self,
        handle: ops.Handle,
        relation: ops.Relation,
        app: ops.Application | None = None,
        unit: ops.Unit | None = None,
        results: Mapping[str, TestResult] | None = None,
    ):
        super().__init__(handle, relation, app, unit)
        self.results: dict[str, TestResult] = dict(results or {})

    def snapshot(self) -> dict[str, Any]:
        data = super().snapshot()
        data["results"] = _dumps({name: r.to_dict() for name, r in self.results.items()})
        return data

    def restore(self, snapshot: dict[str, Any]) -> None:
        super().restore(snapshot)
        raw = json.loads(snapshot.get("results", "{}"))
        self.results = {name: TestResult.from_dict(data) for name, data in raw.items()}


class LoadTestRequirerEvents(ops.ObjectEvents):
    results_changed = ops.EventSource(ResultsChangedEvent)


TestsSource = Sequence[LoadTest] | Callable[[], Sequence[LoadTest]]


class LoadTestRequirer(ops.Object):
    """The requirer side: declares tests, reads their results."""

    on = LoadTestRequirerEvents()
    _stored = ops.StoredState()

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = DEFAULT_RELATION_NAME,
        *,
        tests: TestsSource | None = None,
    ):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._tests = tests
        self._stored.set_default(seen={})
        events = charm.on[relation_name]
        self.framework.observe(events.relation_changed, self._on_relation_changed)
        self.framework.observe(events.relation_broken, self._on_relation_broken)
        if tests is not None:
            self.framework.observe(events.relation_created, self._write_declared)
            self.framework.observe(events.relation_joined, self._write_declared)
            self.framework.observe(charm.on.leader_elected, self._write_declared)
            self.framework.observe(charm.on.upgrade_charm, self._write_declared)

    def _write_declared(self, event: ops.EventBase) -> None:
        assert self._tests is not None
        self.request(self._tests() if callable(self._tests) else self._tests)

    def request(self, tests: Sequence[LoadTest], relation: ops.Relation | None = None) -> None:
        """Declare the tests on `relation` (default: every relation of the endpoint).

        Leader only: on other units this does nothing. An empty list withdraws every test.
        """
        if not self._charm.unit.is_leader():
            return
        names = [test.name for test in tests]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidTestError(f"name: {duplicates[0]!r} is given more than once")
        if len(tests) > MAX_TESTS:
            raise InvalidTestError(f"tests: {len(tests)} given, at most {MAX_TESTS}")
        content = {
            "version": SCHEMA_VERSION,
            "tests": _dumps([test.to_dict() for test in tests]),
        }
        relations = [relation] if relation else self._charm.model.relations[self._relation_name]
        for each in relations:
            databag = each.data[self._charm.app]
            for key, value in content.items():
                if databag.get(key) != value:
                    databag[key] = value

    def results(self, relation: ops.Relation | None = None) -> dict[str, TestResult]:
        """The provider's results, by test name (default: from every relation of the
        endpoint, usually one)."""
        found: dict[str, TestResult] = {}
        for each in [relation] if relation else self._charm.model.relations[self._relation_name]:
            if each.app is not None:
                found.update(parse_results(each.data[each.app])[0])
        return found

    def error(self, relation: ops.Relation | None = None) -> str | None:
        """The provider's complaint about the whole request (a wrong schema version), if any."""
        for each in [relation] if relation else self._charm.model.relations[self._relation_name]:
            if each.app is not None and (problem := parse_results(each.data[each.app])[1]):
                return problem
        return None

    def _on_relation_changed(self, event: ops.RelationChangedEvent) -> None:
        if event.app is None:
            return
        databag = event.relation.data[event.app]
        raw = _dumps({key: databag.get(key) for key in ("version", "results", "error")})
        key = str(event.relation.id)
        if self._stored.seen.get(key) == raw:
            return
        self._stored.seen[key] = raw
        results, _ = parse_results(databag)
        self.on.results_changed.emit(
            event.relation, app=event.app, unit=event.unit, results=results
        )

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._stored.seen.pop(str(event.relation.id), None)


# --- Provider ----------------------------------------------------------------------------------


class TestsRequestedEvent(ops.RelationEvent):
    """A related application declared tests, or changed them: `requests()` has them."""

    __test__ = False  # not a pytest test class, despite the name


class TestsWithdrawnEvent(ops.RelationEvent):
    """The relation is going: the provider deletes what it ran for it."""

    __test__ = False  # not a pytest test class, despite the name


class LoadTestProviderEvents(ops.ObjectEvents):
    tests_requested = ops.EventSource(TestsRequestedEvent)
    tests_withdrawn = ops.EventSource(TestsWithdrawnEvent)


class LoadTestProvider(ops.Object):
    """The provider side: reads the requirers' tests, publishes their results."""

    on = LoadTestProviderEvents()
    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION_NAME):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._stored.set_default(seen={})
        events = charm.on[relation_name]
        self.framework.observe(events.relation_joined, self._on_relation_changed)
        self.framework.observe(events.relation_changed, self._on_relation_changed)
        self.framework.observe(events.relation_broken, self._on_relation_broken)

    @property
    def relations(self) -> list[ops.Relation]:
        return list(self._charm.model.relations[self._relation_name])

    def requests(self, relation: ops.Relation | None = None) -> list[RelationRequests]:
        """What each related application asks for (default: every relation of the endpoint).

        Never raises on bad data: each invalid test gets an error.
        """
        found = []
        for each in [relation] if relation else self.relations:
            if each.app is None:  # the remote application is not known yet
                continue
            tests, errors, problem = parse_tests(each.data[each.app])
            found.append(RelationRequests(each, each.app.name, tests, errors, problem or None))
        return found

    def publish(
        self,
        relation: ops.Relation,
        results: Mapping[str, TestResult],
        error: str | None = None,
    ) -> None:
        """Write the results (and a complaint about the whole request) in this application's
        databag. Leader only: on other units this does nothing."""
        if not self._charm.unit.is_leader():
            return
        databag = relation.data[self._charm.app]
        content = {
            "version": SCHEMA_VERSION,
            "results": _dumps({name: result.to_dict() for name, result in results.items()}),
            "error": error or "",
        }
        for key, value in content.items():
            if not value:
                databag.pop(key, None)
            elif databag.get(key) != value:
                databag[key] = value

    def _on_relation_changed(self, event: ops.RelationEvent) -> None:
        if event.app is None:
            return
        databag = event.relation.data[event.app]
        raw = _dumps({key: databag.get(key) for key in ("version", "tests")})
        key = str(event.relation.id)
        if self._stored.seen.get(key) == raw:
            return
        self._stored.seen[key] = raw
        self.on.tests_requested.emit(event.relation, app=event.app, unit=event.unit)

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._stored.seen.pop(str(event.relation.id), None)
        self.on.tests_withdrawn.emit(event.relation, app=event.app, unit=event.unit)
