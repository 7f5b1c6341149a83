"""The `load-test` relation: load tests other applications ask for, run as LocustTests.

Each test a related application declares (see `charms.locust_operator.v0.load_test`) becomes a
v2 LocustTest `<requirer-app>-<test>` in the model's namespace, with a ConfigMap
`<requirer-app>-<test>-locustfile` holding its locustfile and owned by it. Both carry labels
naming this application, the relation and the test, which is how they are found again. The
leader keeps them in line with what is asked (`sync`), and writes each test's phase, verdict and
summary back in the relation.

Results flow back promptly: the reconciler raises the Pebble notice `locust.io/test-changed`
when a test's phase or verdict changes, and the unit that gets it syncs (a unit that is not the
leader, and so cannot write the relation, nudges the leader through the peer relation).
update-status is the fallback, and a new leader catches up in leader-elected.

Only the leader writes: objects in the cluster and the relation data. Invalid requests from a
related application are answered in the relation (phase `Invalid`, with the reason) and shown
in this charm's status as a note; they never fail a hook.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import lightkube
import ops
from lightkube import ApiError
from lightkube.resources.core_v1 import ConfigMap

import charm_config
import kube
import locust_runs
import peers
from charms.locust_operator.v0.load_test import (
    SUMMARY_KEYS,
    VERDICTS,
    LoadTest,
    LoadTestProvider,
    RelationRequests,
    TestResult,
)
from kube import api_errors, metadata_of
from locust_runs import LOCUSTFILE_KEY, RunRequest
from locust_runs import locustfile_config_map_name as config_map_name
from reconciler.api.naming import MAX_NAME_LENGTH
from reconciler.api.parse import parse
from reconciler.api.types import LocustTestV2, SpecError

logger = logging.getLogger(__name__)

RELATION = "load-test"
# The Pebble notice the reconciler raises when a test's phase or verdict changes.
NOTICE_KEY = "locust.io/test-changed"

_PREFIX = "load-test.locust.io"
PROVIDER_LABEL = f"{_PREFIX}/provider"
RELATION_LABEL = f"{_PREFIX}/relation-id"
REQUIRER_LABEL = f"{_PREFIX}/requirer"
TEST_LABEL = f"{_PREFIX}/test"
# A fingerprint of the test's definition: a changed definition replaces the LocustTest.
DIGEST_ANNOTATION = f"{_PREFIX}/digest"
# A unit that got the notice but is not the leader bumps this key in its peer databag.
REFRESH_KEY = "load-test-refresh"


# --- Pure: names, manifests, results -----------------------------------------------------------


def locust_test_name(requirer: str, test: str) -> str:
    return f"{requirer}-{test}"


def name_problem(requirer: str, test: str) -> str | None:
    """Why the LocustTest of `test` cannot be named, or None."""
    name = locust_test_name(requirer, test)
    if len(name) > MAX_NAME_LENGTH:
        return (
            f"name: the LocustTest would be {name!r}, {len(name)} characters, over "
            f"{MAX_NAME_LENGTH}: use a name of at most {MAX_NAME_LENGTH - len(requirer) - 1}"
        )
    return None


def labels(provider: str, relation_id: int, requirer: str, test: str) -> dict[str, str]:
    return {
        PROVIDER_LABEL: provider,
        RELATION_LABEL: str(relation_id),
        REQUIRER_LABEL: requirer,
        TEST_LABEL: test,
    }


def locust_test_manifest(
    name: str, namespace: str, image: str, test: LoadTest, labels: Mapping[str, str]
) -> dict[str, Any]:
    """The v2 LocustTest for one declared test, as run-test would make it (its locustfile in
    `config_map_name(name)`), with the relation's labels and the definition's digest."""
    request = RunRequest(
        name=name,
        namespace=namespace,
        image=image,
        workers=test.workers,
        locustfile=test.locustfile,
        host=test.host,
        users=test.users,
        spawn_rate=test.spawn_rate,
        run_time=test.run_time,
        thresholds=[t.to_dict() for t in test.thresholds],
    )
    manifest = locust_runs.locust_test_manifest(request, config_map_name(name), LOCUSTFILE_KEY)
    manifest["metadata"]["labels"] = dict(labels)
    manifest["metadata"]["annotations"] = {DIGEST_ANNOTATION: test.digest()}
    return manifest


def config_map_manifest(
    locust_test: Mapping[str, Any], content: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """The ConfigMap holding a test's locustfile, owned by the created LocustTest."""
    manifest = locust_runs.locustfile_config_map(locust_test, content)
    manifest["metadata"]["labels"] = dict(labels)
    return manifest


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found = status.get("conditions") or ()
    return {c.get("type", ""): c for c in found if isinstance(c, Mapping)}


def result_of(locust_test: Mapping[str, Any]) -> TestResult:
    """What the relation reports of a LocustTest, from its status."""
    status = locust_test.get("status") or {}
    conditions = _conditions(status)
    phase = status.get("phase") or "Pending"
    verdict = status.get("verdict") if status.get("verdict") in VERDICTS else None
    message = None
    if verdict is not None and verdict != "Passed":
        message = conditions.get("ThresholdsMet", {}).get("message")
    elif verdict is None and phase == "Failed":
        unhealthy = conditions.get("PodsHealthy", {})
        reasons = [unhealthy if unhealthy.get("status") == "False" else {}]
        reasons += [conditions.get("TestCompleted", {}), conditions.get("Ready", {})]
        message = next((r["message"] for r in reasons if r.get("message")), None)
    results = status.get("results") or {}
    summary = {key: results[key] for key in SUMMARY_KEYS if key in results}
    return TestResult(
        phase=phase,
        verdict=verdict,
        message=message or None,
        summary=summary,
        locust_test=locust_test["metadata"]["name"],
    )


def note(problems: Iterable[str]) -> str:
    """The status note for the refused tests: the first, and how many more."""
    problems = list(problems)
    if not problems:
        return ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"load-test: {problems[0]}{more}"


# --- The cluster ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a sync published, by relation id, and the problems for the status note."""

    results: dict[int, dict[str, TestResult]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _listed(client: lightkube.Client, app: str, namespace: str) -> dict[str, dict[str, Any]]:
    with api_errors(app, "listing the load-test relation's LocustTests"):
        found = client.list(LocustTestV2, namespace=namespace, labels={PROVIDER_LABEL: app})
        return {metadata_of(t).name or "": t.to_dict() for t in found}


def _config_maps(client: lightkube.Client, app: str, namespace: str) -> set[str]:
    with api_errors(app, "listing the load-test relation's ConfigMaps"):
        found = client.list(ConfigMap, namespace=namespace, labels={PROVIDER_LABEL: app})
        return {metadata_of(c).name or "" for c in found}


def _delete_test_only(client: lightkube.Client, app: str, namespace: str, name: str) -> None:
    with api_errors(app, f"deleting LocustTest {name}"):
        try:
            client.delete(LocustTestV2, name, namespace=namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise


def _delete(client: lightkube.Client, app: str, namespace: str, name: str) -> None:
    """Delete a LocustTest and its ConfigMap (gone already: fine)."""
    for resource, object_name in ((LocustTestV2, name), (ConfigMap, config_map_name(name))):
        with api_errors(app, f"deleting {object_name}"):
            try:
                client.delete(resource, object_name, namespace=namespace)
            except ApiError as error:
                if error.status.code != 404:
                    raise
    logger.info("Deleted LocustTest %s of the load-test relation", name)


class _Refused(Exception):
    """The API server refused an object as invalid (400, 422): that test's problem alone."""


def _refusal(error: ApiError, what: str) -> _Refused | None:
    if error.status.code in (400, 422):
        return _Refused(f"the API server refused {what}: {error.status.message}")
    return None


def _create(
    client: lightkube.Client, app: str, namespace: str, manifest: dict[str, Any]
) -> dict[str, Any] | None:
    """Create the LocustTest; the created object, or None if the name is taken (409)."""
    name = manifest["metadata"]["name"]
    with api_errors(app, f"creating LocustTest {name}"):
        try:
            created = client.create(LocustTestV2.from_dict(manifest))
        except ApiError as error:
            if error.status.code == 409:
                return None
            if refused := _refusal(error, f"LocustTest {name}"):
                raise refused from None
            raise
    logger.info("Created LocustTest %s for the load-test relation", name)
    return cast(dict[str, Any], created.to_dict())


def _create_config_map(
    client: lightkube.Client, app: str, locust_test: dict[str, Any], test: LoadTest
) -> bool:
    """Create the test's ConfigMap; False if the name is taken (409)."""
    meta = locust_test["metadata"]
    manifest = config_map_manifest(locust_test, test.locustfile, meta.get("labels") or {})
    with api_errors(app, f"creating ConfigMap {manifest['metadata']['name']}"):
        try:
            client.create(cast(ConfigMap, ConfigMap.from_dict(manifest)))
        except ApiError as error:
            if error.status.code == 409:
                return False
            if refused := _refusal(error, f"ConfigMap {manifest['metadata']['name']}"):
                raise refused from None
            raise
    return True


def _taken(kind: str, name: str, namespace: str) -> TestResult:
    return TestResult(
        phase="Invalid",
        error=f"name: {kind} {name} already exists in namespace {namespace} and was not made "
        "for this relation",
    )


def sync(
    client: lightkube.Client,
    app: str,
    namespace: str,
    image: str,
    requests: Iterable[RelationRequests],
    *,
    gone: Iterable[int] = (),
) -> Outcome:
    """Make the cluster hold exactly the tests asked for, and read their results.

    Creates what is missing, replaces a test whose definition changed, deletes the tests no
    longer asked for (and those of the relations in `gone`). ClusterError if the API fails.
    """
    requests = list(requests)
    existing = _listed(client, app, namespace)
    config_maps = _config_maps(client, app, namespace)
    outcome = Outcome()
    wanted: set[str] = set()
    for request in requests:
        relation_id = request.relation.id
        results: dict[str, TestResult] = {}
        for name, error in request.errors.items():
            results[name] = TestResult(phase="Invalid", error=error)
        for name, test in request.tests.items():
            result = _sync_test(
                client, app, namespace, image, request, test, existing, config_maps
            )
            results[name] = result
            if result.phase != "Invalid":
                wanted.add(locust_test_name(request.app, name))
        for name, result in sorted(results.items()):
            if result.phase == "Invalid":
                outcome.problems.append(f"{request.app}: test {name}: {result.error}")
        if request.error:
            outcome.problems.append(f"{request.app}: {request.error}")
        outcome.results[relation_id] = results
    live = {str(request.relation.id) for request in requests} - {str(i) for i in gone}
    for name, obj in sorted(existing.items()):
        labels_ = (obj.get("metadata") or {}).get("labels") or {}
        if name not in wanted or labels_.get(RELATION_LABEL) not in live:
            _delete(client, app, namespace, name)
    return outcome


def _sync_test(
    client: lightkube.Client,
    app: str,
    namespace: str,
    image: str,
    request: RelationRequests,
    test: LoadTest,
    existing: dict[str, dict[str, Any]],
    config_maps: set[str],
) -> TestResult:
    """Make one test's LocustTest right; its result."""
    if problem := name_problem(request.app, test.name):
        return TestResult(phase="Invalid", error=problem)
    name = locust_test_name(request.app, test.name)
    test_labels = labels(app, request.relation.id, request.app, test.name)
    manifest = locust_test_manifest(name, namespace, image, test, test_labels)
    try:
        parse(manifest, default_namespace=namespace)
    except SpecError as error:
        return TestResult(phase="Invalid", error=f"the LocustTest would be invalid: {error}")
    found = existing.get(name)
    replacing = False
    if found is not None:
        meta = found["metadata"]
        if (meta.get("labels") or {}).get(RELATION_LABEL) != str(request.relation.id):
            return TestResult(
                phase="Invalid",
                error=f"name: LocustTest {name} already belongs to another relation",
            )
        if (meta.get("annotations") or {}).get(DIGEST_ANNOTATION) != test.digest():
            # A LocustTest runs once: a new definition is a new test.
            _delete(client, app, namespace, name)
            existing.pop(name)
            config_maps.discard(config_map_name(name))
            found, replacing = None, True
    try:
        return _create_missing(
            client, app, namespace, manifest, test, found, replacing, existing, config_maps
        )
    except _Refused as refused:
        return TestResult(phase="Invalid", error=str(refused))


def _create_missing(
    client: lightkube.Client,
    app: str,
    namespace: str,
    manifest: dict[str, Any],
    test: LoadTest,
    found: dict[str, Any] | None,
    replacing: bool,
    existing: dict[str, dict[str, Any]],
    config_maps: set[str],
) -> TestResult:
    """Create the test's LocustTest (unless `found`) and ConfigMap (unless there); its result."""
    name = manifest["metadata"]["name"]
    if found is None:
        found = _create(client, app, namespace, manifest)
        if found is None and replacing:  # the old one is still going
            return TestResult(
                phase="Pending",
                locust_test=name,
                error=f"waiting for the previous LocustTest {name} to be deleted",
            )
        if found is None:
            return _taken("LocustTest", name, namespace)
        existing[name] = found
    if config_map_name(name) not in config_maps:
        created = False
        try:
            created = _create_config_map(client, app, found, test)
        finally:
            if not created:  # nothing half-made stays behind
                _delete_test_only(client, app, namespace, name)
                existing.pop(name)
        if not created:
            return _taken("ConfigMap", config_map_name(name), namespace)
        config_maps.add(config_map_name(name))
    return result_of(found)


# --- The charm's part ---------------------------------------------------------------------------


class LoadTestRelation(ops.Object):
    """Runs the tests related applications ask for; see the module docstring."""

    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, container: ops.Container):
        super().__init__(charm, RELATION)
        self._charm = charm
        self._stored.set_default(note="")
        self.provider = LoadTestProvider(charm, RELATION)
        observe = self.framework.observe
        observe(self.provider.on.tests_requested, self._on_tests_requested)
        observe(self.provider.on.tests_withdrawn, self._on_tests_withdrawn)
        observe(charm.on[container.name].pebble_custom_notice, self._on_notice)
        observe(charm.on[peers.RELATION].relation_changed, self._on_peer_changed)
        # update-status is the fallback; a new leader catches up at once.
        observe(charm.on.update_status, self._on_refresh)
        observe(charm.on.leader_elected, self._on_refresh)

    @property
    def note(self) -> str:
        """What the leader's status says of refused tests ("" if none)."""
        return str(self._stored.note) if self._charm.unit.is_leader() else ""

    def _on_tests_requested(self, event: ops.RelationEvent) -> None:
        self.refresh()

    def _on_tests_withdrawn(self, event: ops.RelationBrokenEvent) -> None:
        self.refresh(gone=(event.relation.id,))

    def _on_refresh(self, event: ops.EventBase) -> None:
        self.refresh()

    def _on_notice(self, event: ops.PebbleCustomNoticeEvent) -> None:
        if event.notice.key != NOTICE_KEY:
            return
        if self._charm.unit.is_leader():
            self.refresh()
            return
        # Only the leader writes the relation: tell it through this unit's peer databag.
        relation = self._charm.model.get_relation(peers.RELATION)
        if relation is not None:
            mark = f"{event.notice.id}:{event.notice.occurrences}"
            relation.data[self._charm.unit][REFRESH_KEY] = mark

    def _on_peer_changed(self, event: ops.RelationChangedEvent) -> None:
        if event.unit is not None and REFRESH_KEY in event.relation.data[event.unit]:
            self.refresh()

    def refresh(self, *, gone: Iterable[int] = ()) -> None:
        """Leader only: sync the tests with what is asked, and publish their results."""
        if not self._charm.unit.is_leader():
            return
        gone = tuple(gone)
        requests = [r for r in self.provider.requests() if r.relation.id not in gone]
        if not requests and not gone and not self._stored.note:
            # Nothing asked and nothing to clean up: no call to the cluster.
            return
        option = self._charm.config.get(charm_config.LOCUST_IMAGE_OPTION)
        image = str(option or charm_config.DEFAULT_LOCUST_IMAGE)
        namespace = self._charm.model.name
        try:
            client = kube.client(self._charm.app.name)
            outcome = sync(client, self._charm.app.name, namespace, image, requests, gone=gone)
        except kube.ClusterError as error:
            logger.warning("Could not sync the load-test relation: %s", error.message)
            self._stored.note = f"load-test: {error.message}"
            return
        for request in requests:
            self.provider.publish(
                request.relation, outcome.results.get(request.relation.id, {}), request.error
            )
        self._stored.note = note(outcome.problems)
