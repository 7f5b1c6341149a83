"""The charm's actions: their parameters, checked as Juju hands them over, and what each does.

The charm observes the action events and calls one function here per action; the work is in
`reports` (list-tests, describe-test) and `locust_runs` (run-test, stop-test, test-results). Every
problem ends the action with `event.fail` and one line; nothing raises out of a handler.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import ops

import kube
import locust_runs
import reports
from kube import ClusterError
from reconciler.api.naming import MAX_NAME_LENGTH
from reconciler.api.syntax import is_dns1123_label, is_dns1123_subdomain
from reconciler.config import OperatorConfig

# A ConfigMap holds at most 1 MiB.
MAX_LOCUSTFILE_BYTES = 1024 * 1024
MAX_IMAGE_LENGTH = 1024


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not is_dns1123_subdomain(name):
        raise ValueError(f"name {name!r} is not a valid LocustTest name")


def _check_namespace(namespace: Any) -> None:
    if not isinstance(namespace, str) or (namespace and not is_dns1123_label(namespace)):
        raise ValueError(f"namespace {namespace!r} is not a valid namespace name")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ListTestsParams:
    """Parameters of the list-tests action."""

    namespace: str = ""

    def __post_init__(self) -> None:
        _check_namespace(self.namespace)


@dataclass(frozen=True)
class DescribeTestParams:
    """Parameters of the describe-test action."""

    name: str
    namespace: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_namespace(self.namespace)


@dataclass(frozen=True)
class RunTestParams:
    """Parameters of the run-test action (defaults as in actions.yaml)."""

    name: str
    namespace: str = ""
    locustfile: str = ""
    config_map: str = ""
    host: str = ""
    users: int | None = None
    spawn_rate: float | None = None
    run_time: str = ""
    workers: int = 1
    image: str = ""
    thresholds: str = ""
    wait: bool = False
    timeout: int = 3600

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(f"name {self.name!r} is longer than {MAX_NAME_LENGTH} characters")
        _check_namespace(self.namespace)
        if bool(self.locustfile) == bool(self.config_map):
            given = "both" if self.locustfile else "neither"
            raise ValueError(f"give exactly one of locustfile and config-map ({given} given)")
        if len(self.locustfile.encode()) > MAX_LOCUSTFILE_BYTES:
            raise ValueError("locustfile is larger than a ConfigMap holds (1 MiB)")
        if self.config_map and not is_dns1123_subdomain(self.config_map):
            raise ValueError(f"config-map {self.config_map!r} is not a valid ConfigMap name")
        if any(c.isspace() for c in self.host):
            raise ValueError(f"host {self.host!r} must not contain spaces")
        if self.users is not None and (not _is_int(self.users) or self.users < 1):
            raise ValueError(f"users must be a whole number of at least 1, not {self.users!r}")
        if self.spawn_rate is not None and (
            isinstance(self.spawn_rate, bool)
            or not isinstance(self.spawn_rate, (int, float))
            or not math.isfinite(self.spawn_rate)
            or self.spawn_rate <= 0
        ):
            raise ValueError(f"spawn-rate must be a number above 0, not {self.spawn_rate!r}")
        if self.run_time and locust_runs.run_time_seconds(self.run_time) == 0:
            raise ValueError("run-time must be more than 0 seconds (empty: no limit)")
        if not _is_int(self.workers) or not 1 <= self.workers <= 500:
            raise ValueError(f"workers must be a whole number from 1 to 500, not {self.workers!r}")
        if any(c.isspace() for c in self.image) or len(self.image) > MAX_IMAGE_LENGTH:
            raise ValueError(f"image {self.image!r} is not an image reference")
        locust_runs.parse_thresholds(self.thresholds)
        if not _is_int(self.timeout) or self.timeout < 1:
            raise ValueError(
                f"timeout must be a whole number of seconds, at least 1, not {self.timeout!r}"
            )

    def request(self, model_namespace: str, default_image: str) -> locust_runs.RunRequest:
        """The checked request; ValueError if no image is given and the option is empty."""
        image = self.image or default_image
        if not image:
            raise ValueError("no image: give image=... or set the locust-image option")
        return locust_runs.RunRequest(
            name=self.name,
            namespace=self.namespace or model_namespace,
            image=image,
            workers=self.workers,
            locustfile=self.locustfile or None,
            config_map=self.config_map or None,
            host=self.host,
            users=self.users,
            spawn_rate=self.spawn_rate,
            run_time=self.run_time,
            thresholds=tuple(locust_runs.parse_thresholds(self.thresholds)),
        )


@dataclass(frozen=True)
class StopTestParams:
    """Parameters of the stop-test action."""

    name: str
    namespace: str = ""
    delete: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_namespace(self.namespace)


@dataclass(frozen=True)
class TestResultsParams:
    """Parameters of the test-results action."""

    __test__ = False  # not a pytest test class

    name: str
    namespace: str = ""
    format: str = "yaml"

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_namespace(self.namespace)
        if self.format not in ("yaml", "json"):
            raise ValueError(f"format must be yaml or json, not {self.format!r}")


# --- Handlers ------------------------------------------------------------------------------------


def handle_list_tests(event: ops.ActionEvent, app: str) -> None:
    params = event.load_params(ListTestsParams, errors="fail")
    try:
        client = kube.client(app)
        results = reports.list_tests(client, app, params.namespace or None)
    except ClusterError as error:
        event.fail(error.message)
        return
    event.set_results(results)


def handle_describe_test(event: ops.ActionEvent, app: str, operator: OperatorConfig) -> None:
    params = event.load_params(DescribeTestParams, errors="fail")
    try:
        client = kube.client(app)
        results = reports.describe_test(
            client, app, params.name, params.namespace or None, operator
        )
    except ClusterError as error:
        event.fail(error.message)
        return
    event.set_results(results)


def handle_run_test(
    event: ops.ActionEvent, app: str, model_namespace: str, default_image: str
) -> None:
    """Create the test; with wait=true, follow it to its end and fail unless it passed."""
    params = event.load_params(RunTestParams, errors="fail")
    try:
        request = params.request(model_namespace, default_image)
    except ValueError as error:
        event.fail(f"Error in action parameters: {error}")
        return
    name, namespace = request.name, request.namespace
    try:
        client = kube.client(app)
        test = locust_runs.create_test(client, app, request)
    except ClusterError as error:
        event.fail(error.message)
        return
    config_map = test["spec"]["testFiles"]["configMapRef"]
    created = {"name": name, "namespace": namespace, "config-map": config_map}
    if not params.wait:
        phase = (test.get("status") or {}).get("phase") or "Pending"
        event.set_results(created | {"phase": phase})
        return
    event.set_results(created)
    event.log(f"Created LocustTest {name} in namespace {namespace}; waiting for it to end")
    try:
        test = locust_runs.wait_for_end(
            client,
            app,
            name,
            namespace,
            with_thresholds=bool(request.thresholds),
            timeout=params.timeout,
            log=event.log,
        )
    except ClusterError as error:
        event.fail(error.message)
        return
    event.set_results(locust_runs.results_output(locust_runs.results_document(test)))
    reason = locust_runs.failure(test)
    if reason:
        event.fail(reason)


def handle_stop_test(event: ops.ActionEvent, app: str, model_namespace: str) -> None:
    """Stop the test through Locust, or delete it with delete=true."""
    params = event.load_params(StopTestParams, errors="fail")
    namespace = params.namespace or model_namespace
    try:
        client = kube.client(app)
        if params.delete:
            results = locust_runs.delete_test(client, app, params.name, namespace)
        else:
            results = locust_runs.stop_test(client, app, params.name, namespace)
    except ClusterError as error:
        event.fail(error.message)
        return
    event.set_results(results)


def handle_test_results(event: ops.ActionEvent, app: str, model_namespace: str) -> None:
    """The test's phase, verdict, results and thresholds, structured or as one JSON string."""
    params = event.load_params(TestResultsParams, errors="fail")
    namespace = params.namespace or model_namespace
    try:
        client = kube.client(app)
        test = locust_runs.require_test(client, app, params.name, namespace)
        report = locust_runs.report_config_map(client, app, params.name, namespace)
    except ClusterError as error:
        event.fail(error.message)
        return
    document = locust_runs.results_document(test)
    if report:
        document["reportConfigMap"] = report
    if params.format == "json":
        summary = {
            k: document[k] for k in ("name", "namespace", "phase", "verdict") if k in document
        }
        event.set_results(summary | {"results": json.dumps(document, sort_keys=True)})
    else:
        event.set_results(locust_runs.results_output(document))
