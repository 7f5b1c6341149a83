"""Which Kubernetes the operator's objects need, judged from the API server's `/version` answer.

The metrics exporter runs as a native sidecar (an init container with `restartPolicy: Always`),
which Kubernetes serves from 1.29: on an older cluster the master Job would never complete.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MINIMUM_KUBERNETES = (1, 29)
# "v1.29.3", "v1.30.1-gke.1", "v1.31.0+k3s1"; `minor` alone may read "29+".
_GIT_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def version_problem(version_info: Mapping[str, Any]) -> str | None:
    """Why a cluster whose `/version` answered `version_info` cannot run the operator's tests,
    or None when it can (or when the answer says too little to tell)."""
    match = _GIT_VERSION.match(str(version_info.get("gitVersion") or ""))
    if match is None:
        return None
    found = (int(match[1]), int(match[2]))
    if found >= MINIMUM_KUBERNETES:
        return None
    needed = ".".join(map(str, MINIMUM_KUBERNETES))
    return (
        f"Kubernetes {version_info['gitVersion']} is too old: the operator needs {needed} or "
        "later (its metrics exporter runs as a native sidecar)"
    )
