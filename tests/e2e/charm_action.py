"""One action of the charm, run as Juju runs it on a unit, in a process of its own.

ops.testing puts the hook's environment in `os.environ` while an action runs, so two actions
cannot run side by side in one process; each `run-test wait=true` waits out its master's
--autoquit window, so the end-to-end tests run theirs side by side, each in its own process:

    python -m tests.e2e.charm_action ACTION '{"param": "value", ...}'

KUBECONFIG names the cluster (the charm is trusted: it acts as the cluster's administrator).
Prints one JSON line: the action's results, the lines it logged, and its failure message or null.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ops import testing

from charm import LocustOperatorCharm
from tests.unit.charm.conftest import APP, default_env, running_container, state


def run(action: str, params: dict[str, Any]) -> dict[str, Any]:
    ctx = testing.Context(LocustOperatorCharm, app_name=APP)
    failure = None
    try:
        ctx.run(
            ctx.on.action(action, params=params),
            state(containers={running_container(default_env())}),
        )
    except testing.ActionFailed as error:
        failure = error.message
    return {"results": ctx.action_results, "logs": ctx.action_logs, "failure": failure}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], json.loads(sys.argv[2]))), flush=True)
