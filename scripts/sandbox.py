"""`make sandbox`: a fake cluster with the operator running in it, for kubectl in another terminal.

Starts the built-in fake Kubernetes API server with its Job controller on auto and the local
kubelet (which runs the pods of Jobs as Locust processes), installs the CRD, starts
`locust-operator run` against it, and prints exactly one line on stdout:

    export KUBECONFIG=/tmp/locust-operator-sandbox-.../kubeconfig

Everything else goes to stderr, so `eval "$(python scripts/sandbox.py)"` is not needed: run it in
one terminal, paste the line into another, and use kubectl there (`kubectl apply -f examples/`,
`kubectl get lotest -w`, ...). Ctrl-C or SIGTERM stops the operator and the fake server (whose
kubelet stops every Locust process it started), removes the sandbox's folder and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from lightkube import Client
from lightkube.codecs import load_all_yaml
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from fakekube.sandbox import FakeKubeProcess, OperatorProcess
from reconciler.crds import crd_text

HOW_TO = """\
Sandbox ready: a fake cluster with the LocustTest CRD and the operator running.
In another terminal:
  export KUBECONFIG={kubeconfig}
  kubectl apply -f examples/
  kubectl get lotest -w
  kubectl get jobs,pods,svc
  kubectl explain locusttest.spec
Operator log: {log}
Ctrl-C here stops everything."""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def install_crd(kubeconfig: Path, timeout: float = 30.0) -> None:
    """As `locust-operator crd | kubectl apply -f -` would, then wait until it is established."""
    client = Client(config=KubeConfig.from_file(kubeconfig), field_manager="sandbox")
    names = []
    for crd in load_all_yaml(crd_text()):
        client.create(crd)
        names.append(crd.metadata.name)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            conditions = client.get(CustomResourceDefinition, name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not established after {timeout}s")
            time.sleep(0.1)
    client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the kubeconfig, the operator log and the pods' folders go "
        "(default: a new temporary folder, removed on exit)",
    )
    args = parser.parse_args(argv)

    # Handlers first: a signal during start-up must still stop whatever has been started.
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="locust-operator-sandbox-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cluster: FakeKubeProcess | None = None
    operator: OperatorProcess | None = None
    code = 0
    try:
        say("Starting the fake cluster (API server, Job controller, local kubelet) ...")
        cluster = FakeKubeProcess(
            workdir,
            "--job-controller",
            "auto",
            "--kubelet",
            "local",
            "--kubelet-dir",
            str(workdir / "node"),
        )
        install_crd(cluster.kubeconfig)
        say("Starting `locust-operator run` ...")
        operator = OperatorProcess(cluster.kubeconfig, workdir / "operator.log")
        operator.wait_ready(timeout=60)
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        say(HOW_TO.format(kubeconfig=cluster.kubeconfig, log=operator.log_path))
        while not stopping.wait(0.5):
            for name, proc in (("operator", operator.proc), ("fake API server", cluster.proc)):
                # Ctrl-C in a terminal reaches the children too: their exit is then expected.
                if proc.poll() is not None and not stopping.wait(1):
                    say(f"The {name} exited with {proc.returncode}; stopping.")
                    code = 1
            if code:
                break
    except Exception as error:  # noqa: BLE001 - reported, then everything is stopped
        say(f"Sandbox failed: {error}")
        code = 1
    finally:
        say("Stopping the operator and the fake cluster ...")
        if operator is not None:
            operator.stop()
        if cluster is not None:
            cluster.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    say("Stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
