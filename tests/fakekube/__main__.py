"""``python -m tests.fakekube serve --kubeconfig PATH [--port N] [--job-controller auto]``

Serves the fake API server until SIGTERM or SIGINT, then exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import FakeKube


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakekube", description=__doc__)
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
    args = parser.parse_args(argv)

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with FakeKube(port=args.port) as kube:
        kube.jobs.auto = args.job_controller == "auto"
        kube.write_kubeconfig(args.kubeconfig)
        print(f"fakekube listening on {kube.url}", flush=True)
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
