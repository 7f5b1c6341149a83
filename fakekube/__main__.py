"""``python -m fakekube serve --kubeconfig PATH [--port N] [--job-controller auto]
[--kubelet local [--kubelet-dir DIR]] [--authorization rbac] [--tls]
[--kubernetes-version X.Y.Z]``

Serves the fake API server until SIGTERM or SIGINT, then exits 0 (after stopping every process
the local kubelet started). The kubeconfig written is the administrator's; any other bearer token
authenticates as the user it names, ``system:serviceaccount:<namespace>:<name>`` as that
ServiceAccount while it exists.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .kubelet import KubeletSettings
from .rbac import MODES
from .server import FakeKube


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakekube", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a standalone fake API server")
    serve.add_argument(
        "--kubeconfig", required=True, help="where to write a kubeconfig for the server"
    )
    serve.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)"
    )
    serve.add_argument(
        "--job-controller",
        choices=("manual", "auto"),
        default="manual",
        help="auto: create Pending pods for new Jobs, and keep Job status in step with them",
    )
    serve.add_argument(
        "--kubelet",
        choices=("none", "local"),
        default="none",
        help="local: run the pods of Jobs (Locust images) as local processes",
    )
    serve.add_argument(
        "--kubelet-dir",
        type=Path,
        help="where pods get their folders and logs (default: 'node' beside the kubeconfig)",
    )
    serve.add_argument(
        "--kubernetes-version",
        default=None,
        metavar="X.Y.Z",
        help="the version /version reports (default: the fake's own)",
    )
    serve.add_argument(
        "--authorization",
        type=lambda mode: {m.lower(): m for m in MODES}.get(mode.lower(), mode),
        choices=MODES,
        default=MODES[0],
        help="RBAC: authorize requests by the Roles and bindings stored, and enforce owner "
        "references (OwnerReferencesPermissionEnforcement); default AlwaysAllow",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a throwaway CA, written into the kubeconfig (kubectl sends "
        "credentials over TLS only)",
    )
    args = parser.parse_args(argv)
    kubelet = None
    if args.kubelet == "local":
        root = args.kubelet_dir or Path(args.kubeconfig).resolve().parent / "node"
        kubelet = KubeletSettings(root=root)

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with FakeKube(
        port=args.port, kubelet=kubelet, authorization=args.authorization, tls=args.tls
    ) as kube:
        kube.jobs.auto = args.job_controller == "auto"
        if args.kubernetes_version:
            kube.kubernetes_version = args.kubernetes_version
        kube.write_kubeconfig(args.kubeconfig)
        print(f"fakekube listening on {kube.url}", flush=True)
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
