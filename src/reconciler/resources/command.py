"""The Locust arguments of the master and the workers.

Each role runs the user's command seed, then the flags that make it a master or a worker, then the
user's extraArgs. A user's extraArgs may repeat an operator flag: they come last and Locust keeps
the last occurrence, so the user's value wins, but the controller warns (see `flag_conflicts`).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..api.naming import child_names
from ..api.types import TestSpec
from ..config import OperatorConfig
from .constants import MASTER_PORT
from .otel import otel_flag

OPERATOR_MANAGED_FLAGS = frozenset(
    {
        "--master",
        "--worker",
        "--master-port",
        "--master-host",
        "--expect-workers",
        "--autostart",
        "--autoquit",
        "--otel",
        "--enable-rebalancing",
        "--only-summary",
    }
)


def master_args(spec: TestSpec, config: OperatorConfig) -> list[str]:
    """The master container's args.

    Every master setting comes from the test today; `config` keeps the signature of the other
    builders, which callers (the charm's describe-test) rely on.
    """
    args = [
        *spec.master.command_seed.split(),
        *otel_flag(spec),
        "--master",
        f"--master-port={MASTER_PORT}",
        f"--expect-workers={spec.worker_replicas}",
    ]
    if spec.autostart:
        args.append("--autostart")
    if spec.autoquit_seconds is not None:
        args += ["--autoquit", str(spec.autoquit_seconds)]
    args += ["--enable-rebalancing", "--only-summary", *spec.master.extra_args]
    return args


def worker_args(spec: TestSpec) -> list[str]:
    """The worker container's args: they point it at the master's Service."""
    return [
        *spec.worker.command_seed.split(),
        *otel_flag(spec),
        "--worker",
        f"--master-port={MASTER_PORT}",
        f"--master-host={child_names(spec.name).service}",
        *spec.worker.extra_args,
    ]


def flag_conflicts(args: Iterable[str]) -> list[str]:
    """The args that set an operator-managed flag, as `--flag` or `--flag=value`.

    For the controller's warning (upstream's "User-provided extraArgs override operator-managed
    flags"): builders never log, and the args are applied anyway.
    """
    return [arg for arg in args if arg.partition("=")[0] in OPERATOR_MANAGED_FLAGS]
