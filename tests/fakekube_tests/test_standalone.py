"""``python -m tests.fakekube serve`` as the demo and the benchmark run it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import yaml
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.core_v1 import Namespace

ROOT = Path(__file__).resolve().parents[2]


def test_serve_writes_a_kubeconfig_answers_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakekube",
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--job-controller",
            "auto",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("fakekube listening on http://127.0.0.1:")
        url = line.split()[-1]
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "fakekube"
        assert config["clusters"][0] == {"name": "fakekube", "cluster": {"server": url}}
        assert config["contexts"][0]["context"]["namespace"] == "default"
        assert config["users"][0]["user"]["token"]
        assert httpx.get(f"{url}/readyz").text == "ok"
        client = Client(config=KubeConfig.from_file(kubeconfig))
        assert "default" in {ns.metadata.name for ns in client.list(Namespace)}
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=10)
    assert code == 0, server.stderr.read() if server.stderr else ""
