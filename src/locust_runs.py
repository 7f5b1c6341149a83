"""Running load tests from Juju: what run-test creates, how it waits, how stop-test stops a test,
and the results test-results shows.

Plain lightkube, no ops (the actions module turns `ClusterError`s into action failures). The
manifest builders, the thresholds short syntax and the result summaries are pure; the functions
taking a client do the API calls. Only the operator writes a test's status: these functions read
it.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx2
import lightkube
from lightkube import ApiError
from lightkube.resources.core_v1 import ConfigMap, Pod

from kube import ClusterError, api_errors, get_or_none, metadata_of
from reconciler.api.naming import child_names
from reconciler.api.parse import parse
from reconciler.api.types import (
    DEFAULT_SRC_MOUNT_PATH,
    THRESHOLD_METRICS,
    V2,
    LocustTestV2,
    SpecError,
)
from reconciler.crds import CRD_NAME, KIND
from reconciler.resources.constants import WEB_UI_PORT
from reconciler.resources.report import report_name

# The CRD's bounds on spec.thresholds.
MAX_THRESHOLDS = 20
MAX_REQUEST_LENGTH = 512
# The key run-test stores a given locustfile under, and the one it looks for in a user's ConfigMap.
LOCUSTFILE_KEY = "locustfile.py"
TERMINAL_PHASES = ("Succeeded", "Failed")
VERDICTS = ("Passed", "Failed", "Inconclusive")
AGGREGATED = "Aggregated"
# How often run-test wait=true reads the test, and how long a call to Locust may take.
POLL_SECONDS = 2.0
# How often run-test wait=true logs new numbers when nothing else changed.
PROGRESS_SECONDS = 10.0
LOCUST_API_TIMEOUT = 10.0

# Locust's run-time syntax (locust.util.timespan): whole seconds, or hours, minutes and seconds in
# that order, each optional but at least one.
_RUN_TIME = re.compile(r"(?P<plain>\d+)|(?=\d)(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_THRESHOLD = re.compile(
    r"\s*(?P<metric>[A-Za-z0-9]+)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<value>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:@\s*(?P<request>.*?))?\s*"
)
_REQUEST = re.compile(r"\S+ \S.*")


# --- The thresholds short syntax ---------------------------------------------------------------


def parse_thresholds(text: str) -> list[dict[str, Any]]:
    """`p95Ms<500,rps>50@GET /api` -> `[{metric: p95Ms, max: 500}, {metric: rps, min: 50,
    request: "GET /api"}]`; ValueError naming the bad item.

    `<` and `<=` set a maximum, `>` and `>=` a minimum (the operator counts a value equal to its
    bound as met). Items are comma-separated; `@` names one request ("METHOD name") instead of
    Locust's Aggregated row.
    """
    items = [item for item in text.split(",") if item.strip()]
    if len(items) > MAX_THRESHOLDS:
        raise ValueError(f"thresholds: {len(items)} given, at most {MAX_THRESHOLDS}")
    return [_threshold(item.strip()) for item in items]


def _threshold(item: str) -> dict[str, Any]:
    match = _THRESHOLD.fullmatch(item)
    if not match:
        raise ValueError(
            f"thresholds: {item!r} is not METRIC<VALUE or METRIC>VALUE (optionally @METHOD name)"
        )
    metric, op, value, request = match["metric"], match["op"], match["value"], match["request"]
    if metric not in THRESHOLD_METRICS:
        raise ValueError(
            f"thresholds: {item!r}: unknown metric {metric!r}, "
            f"one of {', '.join(THRESHOLD_METRICS)}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"thresholds: {item!r}: {value} is not a finite number")
    threshold: dict[str, Any] = {
        "metric": metric,
        "max" if op.startswith("<") else "min": int(number) if number.is_integer() else number,
    }
    if request is not None:
        if not _REQUEST.fullmatch(request) or len(request) > MAX_REQUEST_LENGTH:
            raise ValueError(
                f'thresholds: {item!r}: the request must be "METHOD name" (for example '
                f'"GET /api"), at most {MAX_REQUEST_LENGTH} characters'
            )
        threshold["request"] = request
    return threshold


def run_time_seconds(text: str) -> int:
    """Seconds in a Locust run time (`90`, `90s`, `5m`, `1h30m`); ValueError where Locust
    refuses it."""
    match = _RUN_TIME.fullmatch(text)
    if not match:
        raise ValueError(
            f"run-time: {text!r} is not a Locust run time (for example 300, 90s, 5m or 1h30m)"
        )
    if match["plain"] is not None:
        return int(match["plain"])
    return int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)


# --- What run-test creates -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    """A checked run-test: exactly one of `locustfile` (content) and `config_map` is set."""

    name: str
    namespace: str
    image: str
    workers: int = 1
    locustfile: str | None = None
    config_map: str | None = None
    host: str = ""
    users: int | None = None
    spawn_rate: float | None = None
    run_time: str = ""
    thresholds: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def locustfile_config_map_name(test: str) -> str:
    """The ConfigMap run-test makes for a given locustfile."""
    return f"{test}-locustfile"


def master_command(request: RunRequest, locustfile_key: str) -> str:
    """The master's Locust arguments (the operator appends the master flags)."""
    args = ["--locustfile", f"{DEFAULT_SRC_MOUNT_PATH}/{locustfile_key}"]
    if request.host:
        args += ["--host", request.host]
    if request.users is not None:
        args += ["--users", str(request.users)]
    if request.spawn_rate is not None:
        rate = request.spawn_rate
        args += ["--spawn-rate", str(int(rate)) if float(rate).is_integer() else str(rate)]
    if request.run_time:
        args += ["--run-time", request.run_time]
    return " ".join(args)


def locust_test_manifest(
    request: RunRequest, config_map: str, locustfile_key: str
) -> dict[str, Any]:
    """The LocustTest (v2) run-test creates."""
    spec: dict[str, Any] = {
        "image": request.image,
        "master": {"command": master_command(request, locustfile_key)},
        "worker": {
            "command": f"--locustfile {DEFAULT_SRC_MOUNT_PATH}/{locustfile_key}",
            "replicas": request.workers,
        },
        "testFiles": {"configMapRef": config_map},
    }
    if request.thresholds:
        spec["thresholds"] = [dict(t) for t in request.thresholds]
    return {
        "apiVersion": V2,
        "kind": KIND,
        "metadata": {"name": request.name, "namespace": request.namespace},
        "spec": spec,
    }


def locustfile_config_map(test: Mapping[str, Any], content: str) -> dict[str, Any]:
    """The ConfigMap holding a given locustfile, owned by the created `test` (so it is deleted
    with it)."""
    meta = test["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": locustfile_config_map_name(meta["name"]),
            "namespace": meta["namespace"],
            "ownerReferences": [
                {
                    "apiVersion": test["apiVersion"],
                    "kind": KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                }
            ],
        },
        "data": {LOCUSTFILE_KEY: content},
    }


def check_request(request: RunRequest) -> None:
    """ClusterError if the operator would refuse the test (checked before anything is made)."""
    config_map = request.config_map or locustfile_config_map_name(request.name)
    manifest = locust_test_manifest(request, config_map, LOCUSTFILE_KEY)
    try:
        parse(manifest, default_namespace=request.namespace)
    except SpecError as error:
        raise ClusterError(f"invalid test: {error}") from None


def _not_installed() -> ClusterError:
    return ClusterError(
        f"the LocustTest CRD ({CRD_NAME}) serving {V2} is not installed: see the leader unit's "
        "status"
    )


def get_test(kube: lightkube.Client, app: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The LocustTest as a dict (v2), or None; ClusterError if the CRD is missing."""
    with api_errors(app, f"reading LocustTest {name}"):
        try:
            found = list(
                kube.list(LocustTestV2, namespace=namespace, fields={"metadata.name": name})
            )
        except ApiError as error:
            if error.status.code == 404:  # no such resource: the CRD (or its v2) is missing
                raise _not_installed() from None
            raise
    matches = [t.to_dict() for t in found if metadata_of(t).name == name]
    return matches[0] if matches else None


def require_test(kube: lightkube.Client, app: str, name: str, namespace: str) -> dict[str, Any]:
    test = get_test(kube, app, name, namespace)
    if test is None:
        raise ClusterError(f"LocustTest {name} not found in namespace {namespace}")
    return test


def _locustfile_key(kube: lightkube.Client, app: str, name: str, namespace: str) -> str:
    """The key of the locustfile in a user's ConfigMap: locustfile.py, or its only .py key."""
    with api_errors(app, f"reading ConfigMap {name}"):
        try:
            config_map = kube.get(ConfigMap, name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                raise ClusterError(
                    f"config-map: ConfigMap {name} not found in namespace {namespace}"
                ) from None
            raise
    keys = sorted((config_map.data or {}) | (config_map.binaryData or {}))
    if LOCUSTFILE_KEY in keys:
        return LOCUSTFILE_KEY
    python = [key for key in keys if key.endswith(".py")]
    if len(python) == 1:
        return python[0]
    if not python:
        raise ClusterError(f"config-map: ConfigMap {name} holds no .py file")
    raise ClusterError(
        f"config-map: ConfigMap {name} holds several .py files ({', '.join(python)}) and no "
        f"{LOCUSTFILE_KEY}"
    )


def create_test(kube: lightkube.Client, app: str, request: RunRequest) -> dict[str, Any]:
    """Create the test (and the ConfigMap of a given locustfile); return the created test.

    ClusterError, with nothing left behind, if the name is in use or the API server refuses
    either object.
    """
    name, namespace = request.name, request.namespace
    check_request(request)
    if get_test(kube, app, name, namespace) is not None:
        raise ClusterError(
            f"LocustTest {name} already exists in namespace {namespace}: choose another name, "
            f"or delete it with stop-test name={name} delete=true"
        )
    if request.config_map:
        config_map, key = (
            request.config_map,
            _locustfile_key(kube, app, request.config_map, namespace),
        )
    else:
        config_map, key = locustfile_config_map_name(name), LOCUSTFILE_KEY
        with api_errors(app, f"reading ConfigMap {config_map}"):
            try:
                kube.get(ConfigMap, config_map, namespace=namespace)
            except ApiError as error:
                if error.status.code != 404:
                    raise
            else:
                raise ClusterError(
                    f"ConfigMap {config_map} already exists in namespace {namespace}: "
                    "choose another test name"
                )
    with api_errors(app, f"creating LocustTest {name}"):
        try:
            created = kube.create(
                LocustTestV2.from_dict(locust_test_manifest(request, config_map, key))
            )
        except ApiError as error:
            if error.status.code == 409:
                raise ClusterError(
                    f"LocustTest {name} already exists in namespace {namespace}"
                ) from None
            raise
    test = created.to_dict()
    if request.locustfile is not None:
        try:
            with api_errors(app, f"creating ConfigMap {config_map}"):
                kube.create(
                    cast(
                        ConfigMap,
                        ConfigMap.from_dict(locustfile_config_map(test, request.locustfile)),
                    )
                )
        except ClusterError as error:
            _roll_back(kube, app, name, namespace, error)
    return test


def _roll_back(
    kube: lightkube.Client, app: str, name: str, namespace: str, error: ClusterError
) -> None:
    """Delete the test just created, and raise `error` (saying so if the delete failed too)."""
    try:
        with api_errors(app, f"deleting LocustTest {name}"):
            kube.delete(LocustTestV2, name, namespace=namespace)
    except ClusterError as also:
        raise ClusterError(f"{error.message}; LocustTest {name} is left: {also.message}") from None
    raise error


# --- Waiting for the outcome ---------------------------------------------------------------------


def progress_line(status: Mapping[str, Any]) -> str:
    """`phase Running, 10 users, 41.2 rps, 0 failures` (the numbers once the operator has any)."""
    line = f"phase {status.get('phase') or 'Pending'}"
    results = status.get("results")
    if results:
        line += (
            f", {results.get('users', 0)} users, {_number(results.get('rps', 0))} rps, "
            f"{results.get('failures', 0)} failures"
        )
    verdict = status.get("verdict")
    if verdict:
        line += f", verdict {verdict}"
    return line


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def finished(status: Mapping[str, Any], with_thresholds: bool) -> bool:
    """Whether run-test wait=true is done: the test has ended and, if it has thresholds, the
    operator has given its verdict (it always does once a test with thresholds has ended)."""
    if status.get("phase") not in TERMINAL_PHASES:
        return False
    return not with_thresholds or status.get("verdict") in VERDICTS


class WaitTimedOut(ClusterError):
    """The timeout passed before the test ended."""


def wait_for_end(
    kube: lightkube.Client,
    app: str,
    name: str,
    namespace: str,
    *,
    with_thresholds: bool,
    timeout: float,
    log: Callable[[str], None],
    poll_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Read the test until `finished`; return it.

    `log` gets a progress line at once when the phase or the verdict changes, or the first
    results arrive, and otherwise when the numbers changed and PROGRESS_SECONDS have passed.
    A read that fails for a reason that may pass (API server unavailable) is logged and tried
    again. WaitTimedOut after `timeout` seconds; ClusterError if the test goes away or a read
    is refused for good.
    """
    interval = POLL_SECONDS if poll_seconds is None else poll_seconds
    deadline = clock() + timeout
    line, milestone, logged_at, problem = "", None, 0.0, ""
    status: Mapping[str, Any] = {}
    while True:
        try:
            test = get_test(kube, app, name, namespace)
        except ClusterError as error:
            if error.blocking:
                raise
            if error.message != problem:
                log(f"Cannot read the test, trying again: {error.message}")
            problem, test = error.message, None
        else:
            problem = ""
            if test is None:
                raise ClusterError(f"LocustTest {name} was deleted while waiting for it to end")
            status = test.get("status") or {}
            current = progress_line(status)
            reached = (status.get("phase"), status.get("verdict"), bool(status.get("results")))
            if current != line and (
                reached != milestone or clock() - logged_at >= PROGRESS_SECONDS
            ):
                log(current)
                line, milestone, logged_at = current, reached, clock()
            if finished(status, with_thresholds):
                return test
        remaining = deadline - clock()
        if remaining <= 0:
            if status.get("phase") in TERMINAL_PHASES:
                what, then = "its verdict", f"see test-results name={name}"
            else:
                what, then = "it to end", f"it keeps running: stop it with stop-test name={name}"
            raise WaitTimedOut(
                f"timed out after {timeout:g}s waiting for {what} (LocustTest {name}: "
                f"{progress_line(status)}); {then}"
            )
        sleep(min(interval, remaining))


def conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in status.get("conditions") or () if isinstance(c, Mapping)}


def failure(test: Mapping[str, Any]) -> str | None:
    """Why a finished test fails run-test wait=true, or None if it passed.

    With thresholds the verdict decides (Locust exits non-zero on any failed request, so the
    phase alone would fail every test with a tolerated failure ratio); without, the phase.
    """
    status = test.get("status") or {}
    found = conditions(status)
    if test.get("spec", {}).get("thresholds"):
        verdict = status.get("verdict")
        if verdict == "Passed":
            return None
        message = found.get("ThresholdsMet", {}).get("message") or "no details"
        return f"verdict {verdict}: {message}"
    if status.get("phase") == "Failed":
        # The most telling first: an unhealthy pod's reason, then the test's own conditions.
        reasons = [
            found[kind].get("message")
            for kind in ("PodsHealthy", "TestCompleted", "Ready")
            if kind in found and (kind != "PodsHealthy" or found[kind].get("status") == "False")
        ]
        message = next((m for m in reasons if m), "no details")
        return f"LocustTest {test['metadata']['name']} failed: {message}"
    return None


# --- Stopping and deleting -----------------------------------------------------------------------


def master_pod(kube: lightkube.Client, app: str, name: str, namespace: str) -> str:
    """The running master pod of a test (its master Job's pod with an IP)."""
    job = child_names(name).master_job
    with api_errors(app, f"listing the pods of Job {job}"):
        pods = list(kube.list(Pod, namespace=namespace, labels={"job-name": job}))
    running = [
        metadata_of(pod).name or ""
        for pod in pods
        if pod.status and pod.status.phase == "Running" and pod.status.podIP
    ]
    if not running:
        raise ClusterError(f"LocustTest {name} has no running master pod (Job {job})")
    return sorted(running)[0]


def locust_api_path(namespace: str, pod: str, path: str) -> str:
    """Locust's web API on a pod, through the API server's pod proxy."""
    return f"/api/v1/namespaces/{namespace}/pods/{pod}:{WEB_UI_PORT}/proxy/{path.lstrip('/')}"


def _http(kube: lightkube.Client) -> httpx2.Client:
    # lightkube has no call for the pod proxy; its HTTP client carries the credentials.
    return kube._client._client


def _reason(response: httpx2.Response) -> str:
    """A refused proxy call in one line: the API server's Status message, or the body's start."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("message"):
        text = str(body["message"])
    else:
        text = response.text
    text = " ".join(text.split())
    return f"{response.status_code} {text[:200]}".strip()


def stop_test(kube: lightkube.Client, app: str, name: str, namespace: str) -> dict[str, Any]:
    """POST Locust's /stop on the test's master pod; the action's results."""
    test = require_test(kube, app, name, namespace)
    phase = (test.get("status") or {}).get("phase") or "Pending"
    if phase in TERMINAL_PHASES:
        raise ClusterError(f"LocustTest {name} has already ended (phase {phase}): nothing to stop")
    pod = master_pod(kube, app, name, namespace)
    where = f"could not stop LocustTest {name} through Locust on pod {pod}"
    try:
        response = _http(kube).post(
            locust_api_path(namespace, pod, "stop"), timeout=LOCUST_API_TIMEOUT
        )
    except httpx2.HTTPError as error:
        raise ClusterError(f"{where}: {error}", blocking=False) from None
    if not response.is_success:
        raise ClusterError(f"{where}: {_reason(response)}", blocking=False)
    return {"name": name, "namespace": namespace, "stopped": True, "master-pod": pod}


def delete_test(kube: lightkube.Client, app: str, name: str, namespace: str) -> dict[str, Any]:
    """Delete the test; Kubernetes deletes what it owns. The action's results."""
    require_test(kube, app, name, namespace)
    with api_errors(app, f"deleting LocustTest {name}"):
        try:
            kube.delete(LocustTestV2, name, namespace=namespace)
        except ApiError as error:
            if error.status.code != 404:  # deleted meanwhile: what was asked
                raise
    return {"name": name, "namespace": namespace, "deleted": True}


# --- Results -------------------------------------------------------------------------------------


def kebab(name: str) -> str:
    """An action result key from a status field: p95Ms -> p95-ms, failRatio -> fail-ratio."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower().replace("_", "-")


def _output(value: Any) -> Any:
    """A status document as action output: kebab keys, lists as item-N maps."""
    if isinstance(value, Mapping):
        return {kebab(str(k)): _output(v) for k, v in value.items()}
    if isinstance(value, list):
        return {f"item-{i}": _output(v) for i, v in enumerate(value)}
    return value


def _value(results: Mapping[str, Any], metric: str, request: str | None) -> Any:
    """A metric of the Aggregated row (the results' totals) or of one request's entry."""
    if request is None or request == AGGREGATED:
        return results.get(metric)
    for entry in results.get("entries") or ():
        if f"{entry.get('method', '')} {entry.get('name', '')}" == request:
            if metric == "failRatio":
                requests = entry.get("requests") or 0
                return (entry.get("failures") or 0) / requests if requests else 0.0
            return entry.get(metric)
    return None


def threshold_outcomes(
    thresholds: Sequence[Mapping[str, Any]], results: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Each threshold with the value it is judged on and whether that value meets it (a value
    equal to its bound meets it; no value yet, or no requests for its request: not met)."""
    outcomes = []
    for threshold in thresholds:
        outcome = dict(threshold)
        value = _value(results, threshold["metric"], threshold.get("request")) if results else None
        if value is None:
            outcome["met"] = False
        else:
            outcome["value"] = value
            if "max" in threshold:
                outcome["met"] = value <= threshold["max"]
            else:
                outcome["met"] = value >= threshold.get("min", 0)
        outcomes.append(outcome)
    return outcomes


def results_document(test: Mapping[str, Any]) -> dict[str, Any]:
    """What test-results shows, in the API's own (camelCase) names: the JSON form."""
    meta, spec, status = test["metadata"], test.get("spec") or {}, test.get("status") or {}
    found = conditions(status)
    document: dict[str, Any] = {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "phase": status.get("phase") or "Pending",
    }
    if status.get("verdict"):
        document["verdict"] = status["verdict"]
    results = status.get("results")
    if results:
        document["results"] = results
    if spec.get("thresholds"):
        document["thresholds"] = threshold_outcomes(spec["thresholds"], results)
    picked = {
        kind: {key: found[kind].get(key, "") for key in ("status", "reason", "message")}
        for kind in ("ResultsAvailable", "ThresholdsMet")
        if kind in found
    }
    if picked:
        document["conditions"] = picked
    return document


def results_output(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as structured action output (keys in kebab case, entries as entry-N)."""
    output = dict(document)
    results = output.get("results")
    if isinstance(results, Mapping):
        results = dict(results)
        entries = results.pop("entries", None) or []
        output["results"] = _output(results) | {
            f"entry-{i}": _output(entry) for i, entry in enumerate(entries)
        }
    if "thresholds" in output:
        output["thresholds"] = {
            f"threshold-{i}": _output(t) for i, t in enumerate(output["thresholds"])
        }
    return _output(output)


def report_config_map(kube: lightkube.Client, app: str, name: str, namespace: str) -> str | None:
    """The ConfigMap holding the test's HTML report, if the operator has written it."""
    report = report_name(name)
    with api_errors(app, f"reading ConfigMap {report}"):
        found = get_or_none(kube, ConfigMap, report, namespace)
    return report if found is not None else None
