"""The reconciler under Pebble: its layer, its webhook certificate files, and its state."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping

import ops

from charm_config import HEALTH_PORT, WEBHOOK_CERT_DIR

logger = logging.getLogger(__name__)

CONTAINER = "reconciler"
LAYER = "reconciler"
SERVICE = "reconciler"
READY_CHECK = "reconciler-ready"
ALIVE_CHECK = "reconciler-alive"
COMMAND = "locust-operator run"
VERSION_COMMAND = ["locust-operator", "version"]
# The file names the reconciler's webhook server loads from WEBHOOK_CERT_DIR.
CERT_PATH = f"{WEBHOOK_CERT_DIR}/tls.crt"
KEY_PATH = f"{WEBHOOK_CERT_DIR}/tls.key"


class State(enum.Enum):
    """How far the reconciler has got, as far as the charm can tell."""

    NOT_CONNECTED = "the container is not up"
    NOT_RUNNING = "the service is not running"
    NOT_ALIVE = "the service is running but not answering /healthz"
    NOT_READY = "the service is running but not ready"
    READY = "the service is running and ready"


def layer(env: Mapping[str, str]) -> ops.pebble.LayerDict:
    """The Pebble layer that runs the reconciler with `env`.

    Both checks restart the service when they fail: /healthz failing means the process is wedged,
    /readyz failing means it has lost the API server, and in both cases a fresh start (new list,
    new watch, new Lease attempt) is the cure, as kubelet probes would do for a Deployment.
    """
    base = f"http://localhost:{HEALTH_PORT}"
    return {
        "summary": "LocustTest reconciler",
        "description": "Runs `locust-operator run`, configured from the charm's options.",
        "services": {
            SERVICE: {
                "override": "replace",
                "summary": "LocustTest reconciler",
                "command": COMMAND,
                "startup": "enabled",
                "environment": dict(env),
                "on-check-failure": {READY_CHECK: "restart", ALIVE_CHECK: "restart"},
            }
        },
        "checks": {
            READY_CHECK: {
                "override": "replace",
                "level": "ready",
                "http": {"url": f"{base}/readyz"},
            },
            ALIVE_CHECK: {
                "override": "replace",
                "level": "alive",
                "http": {"url": f"{base}/healthz"},
            },
        },
    }


def apply_layer(container: ops.Container, new_layer: ops.pebble.LayerDict) -> bool:
    """Install the layer; replan only if that changed the plan. Returns whether it replanned.

    Comparing whole plans before and after (rather than our layer with the plan) keeps this right
    when the image brings layers of its own. A replan never restarts an unchanged service, but
    skipping it keeps config-changed hooks that change nothing from touching the workload at all.
    """
    before = container.get_plan().to_dict()
    container.add_layer(LAYER, new_layer, combine=True)
    if container.get_plan().to_dict() == before:
        return False
    logger.info("Reconciler layer changed; replanning")
    container.replan()
    return True


def push_certificate(container: ops.Container, cert: str, key: str) -> bool:
    """Give the reconciler the webhook's serving certificate and key; return whether they changed.

    Files already holding the same text are left alone, so an unchanged certificate never
    restarts the service.
    """
    if _read(container, CERT_PATH) == cert and _read(container, KEY_PATH) == key:
        return False
    container.push(CERT_PATH, cert, make_dirs=True, permissions=0o644)
    container.push(KEY_PATH, key, make_dirs=True, permissions=0o600)
    logger.info("Pushed the webhook certificate to %s", WEBHOOK_CERT_DIR)
    return True


def _read(container: ops.Container, path: str) -> str | None:
    try:
        return container.pull(path).read()
    except ops.pebble.PathError:
        return None


def restart_if_running(container: ops.Container) -> None:
    """Restart a running reconciler, so it loads new certificate files (Pebble cannot see a file
    change). A stopped one reads them when it starts."""
    if _running(container):
        logger.info("Restarting the reconciler to load the new webhook certificate")
        container.restart(SERVICE)


def stop(container: ops.Container) -> None:
    """Stop the reconciler if it runs (it keeps its layer, for when it may run again)."""
    if _running(container):
        logger.info("Stopping the reconciler")
        container.stop(SERVICE)


def start(container: ops.Container) -> None:
    """Start the reconciler if it has a layer and does not run."""
    if SERVICE in container.get_services(SERVICE) and not _running(container):
        logger.info("Starting the reconciler")
        container.start(SERVICE)


def _running(container: ops.Container) -> bool:
    service = container.get_services(SERVICE).get(SERVICE)
    return service is not None and service.is_running()


def state(container: ops.Container) -> State:
    """What the reconciler is doing now; never raises."""
    try:
        if not container.can_connect():
            return State.NOT_CONNECTED
        services = container.get_services(SERVICE)
        if SERVICE not in services or not services[SERVICE].is_running():
            return State.NOT_RUNNING
        checks = container.get_checks(READY_CHECK, ALIVE_CHECK)
    except (ops.pebble.ConnectionError, ops.pebble.APIError) as error:
        logger.debug("Cannot read the reconciler's state: %s", error)
        return State.NOT_CONNECTED
    alive = checks.get(ALIVE_CHECK)
    if alive is not None and alive.status == ops.pebble.CheckStatus.DOWN:
        return State.NOT_ALIVE
    check = checks.get(READY_CHECK)
    if check is None or check.status != ops.pebble.CheckStatus.UP:
        return State.NOT_READY
    return State.READY


def check_failures(container: ops.Container, state: State) -> int:
    """How many times in a row the check behind `state` has failed (0 for a state no check is
    behind, or if the check cannot be read); never raises."""
    name = {State.NOT_ALIVE: ALIVE_CHECK, State.NOT_READY: READY_CHECK}.get(state)
    if name is None:
        return 0
    try:
        check = container.get_checks(name).get(name)
    except (ops.pebble.ConnectionError, ops.pebble.APIError):
        return 0
    return check.failures if check is not None else 0


def version(container: ops.Container) -> str | None:
    """The reconciler's version from `locust-operator version`, or None if it cannot be run."""
    try:
        stdout, _ = container.exec(VERSION_COMMAND, timeout=2).wait_output()
    except (ops.pebble.Error, ops.ModelError) as error:
        logger.warning("Cannot read the reconciler version: %s", error)
        return None
    return stdout.strip() or None
