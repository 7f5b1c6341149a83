"""Pure builders: a TestSpec and the operator configuration in, the Kubernetes objects out.

Each LocustTest becomes a master Service, a master Job and a worker Job, shaped field by field
like upstream's Go operator (v2), except where docs/architecture.md says otherwise. One module per
concern (command, labels, env, volumes, otel, service, job); nothing here does I/O or depends on
the clock: the same input always gives the same objects, so `render` shows exactly what `run`
creates, and the controller can rebuild them cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Service

from ..api.types import TestSpec
from ..config import OperatorConfig
from .job import build_master_job, build_worker_job
from .service import build_service


def build_children(spec: TestSpec, config: OperatorConfig) -> list[Service | Job]:
    """The three objects for one test, in creation order: the Service first, so that workers
    starting before the master can already resolve its name."""
    return [
        build_service(spec, config),
        build_master_job(spec, config),
        build_worker_job(spec, config),
    ]


def to_dict(obj: Service | Job) -> dict[str, Any]:
    """The object as plain data, in the models' field order (apiVersion, kind, metadata, spec),
    with unset fields left out."""
    return obj.to_dict()


def to_yaml(objects: Iterable[Service | Job]) -> str:
    """A multi-document YAML stream, one `---` document per object, keys in field order.

    Not lightkube's dump_all_yaml: it sorts keys, which buries each container's `name` after its
    `args`, `env` and `image`.
    """
    return yaml.safe_dump_all(
        [to_dict(obj) for obj in objects], sort_keys=False, explicit_start=True
    )
