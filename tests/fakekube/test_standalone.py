"""``python -m fakekube serve`` as the demo and the benchmark run it."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import yaml
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.core_v1 import Namespace

from fakekube.sandbox import FakeKubeProcess


def test_serve_writes_a_kubeconfig_answers_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    server = FakeKubeProcess(tmp_path, "--job-controller", "auto")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        config = yaml.safe_load(server.kubeconfig.read_text())
        assert config["current-context"] == "fakekube"
        assert config["clusters"][0] == {"name": "fakekube", "cluster": {"server": server.url}}
        assert config["contexts"][0]["context"]["namespace"] == "default"
        assert config["users"][0]["user"]["token"]
        assert httpx.get(f"{server.url}/readyz").text == "ok"
        client = Client(config=KubeConfig.from_file(server.kubeconfig))
        assert "default" in {ns.metadata.name for ns in client.list(Namespace)}
        client.close()
    finally:
        code = server.stop()
    assert code == 0
