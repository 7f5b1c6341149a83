"""The Kubernetes fields a test passes to its pods are checked as the API server checks them.

`parse` refuses a test the API server would accept but whose Jobs it would refuse, naming the
test's own field; `render` exits 2 with that one line, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api.parse import parse
from reconciler.api.types import SpecError
from reconciler.cli import main

MASTER = "--locustfile /lotest/src/locustfile.py"
WORKER = "--locustfile /lotest/src/locustfile.py"


def v2(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": "checked"},
        "spec": {
            "image": "locustio/locust:2.47.0",
            "master": {"command": MASTER},
            "worker": {"command": WORKER, "replicas": 1},
            **spec,
        },
    }


def role(role_name: str, **fields: Any) -> dict[str, Any]:
    base = {"command": MASTER} if role_name == "master" else {"command": WORKER, "replicas": 1}
    return {role_name: {**base, **fields}}


def mounted(volume: dict[str, Any]) -> dict[str, Any]:
    return {"volumes": [volume], "volumeMounts": [{"name": volume["name"], "mountPath": "/data"}]}


REFUSED = [
    pytest.param(
        {"env": {"variables": [{"name": "A=B", "value": "x"}]}},
        'spec.env.variables[0].name: Invalid value: "A=B": a valid environment variable name '
        "must consist only of printable ASCII characters other than '='",
        id="env-name-with-equals",
    ),
    pytest.param(
        {"env": {"variables": [{"name": "", "value": "x"}]}},
        "spec.env.variables[0].name: Required value",
        id="env-name-empty",
    ),
    pytest.param(
        {"env": {"variables": [{"name": "TAB\there"}]}},
        'spec.env.variables[0].name: Invalid value: "TAB\\there"',
        id="env-name-not-printable",
    ),
    pytest.param(
        {"env": {"variables": [{"name": "N", "value": 3}]}},
        'spec.env.variables[0].value: Invalid value: "integer": spec.env.variables[0].value in '
        "body must be of type string",
        id="env-value-wrong-type",
    ),
    pytest.param(
        {"env": {"configMapRefs": [{"name": "cm", "prefix": "P="}]}},
        'spec.env.configMapRefs[0].prefix: Invalid value: "P="',
        id="env-prefix",
    ),
    pytest.param(
        mounted({"name": "data", "hostPath": 123}),
        'spec.volumes[0].hostPath: Invalid value: "integer": spec.volumes[0].hostPath in body '
        "must be of type object",
        id="volume-source-wrong-type",
    ),
    pytest.param(
        mounted(
            {"name": "data", "configMap": {"name": "x", "items": [{"key": "a", "mode": "x"}]}}
        ),
        'spec.volumes[0].configMap.items[0].mode: Invalid value: "string"',
        id="nested-field-wrong-type",
    ),
    pytest.param(
        mounted({"name": "data"}),
        "spec.volumes[0]: Required value: must specify a volume type",
        id="volume-without-source",
    ),
    pytest.param(
        mounted({"name": "data", "emptyDir": {}, "secret": {"secretName": "s"}}),
        "spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type",
        id="volume-with-two-sources",
    ),
    pytest.param(
        mounted({"name": "Data", "emptyDir": {}}),
        'spec.volumes[0].name: Invalid value: "Data": a lowercase RFC 1123 label',
        id="volume-name",
    ),
    pytest.param(
        role("worker", resources={"limits": "x"}),
        'spec.worker.resources.limits: Invalid value: "string": spec.worker.resources.limits in '
        "body must be of type object",
        id="limits-not-a-map",
    ),
    pytest.param(
        role("master", resources={"limits": {"cpu": "lots"}}),
        'spec.master.resources.limits.cpu: Invalid value: "lots": quantities must match the '
        "regular expression",
        id="unparseable-quantity",
    ),
    pytest.param(
        role("master", resources={"requests": {"memory": "1.5 Gi"}}),
        'spec.master.resources.requests.memory: Invalid value: "1.5 Gi"',
        id="quantity-with-a-space",
    ),
    pytest.param(
        role("worker", resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}),
        'spec.worker.resources.requests: Invalid value: "2": must be less than or equal to cpu '
        "limit of 1500m",
        id="request-above-limit",
    ),
    pytest.param(
        role("worker", labels={"bad key": "x"}),
        'spec.worker.labels: Invalid value: "bad key": name part must consist of alphanumeric',
        id="label-key",
    ),
    pytest.param(
        role("master", labels={"team": "-x-"}),
        'spec.master.labels: Invalid value: "-x-": a valid label must be an empty string',
        id="label-value",
    ),
    pytest.param(
        role("master", labels={"team": "x" * 64}),
        "spec.master.labels.team: Too long: may not be more than 63 bytes",
        id="label-value-too-long",
    ),
    pytest.param(
        role("master", annotations={"Example.com/x": "y"}),
        'spec.master.annotations: Invalid value: "Example.com/x": prefix part a lowercase RFC '
        "1123 subdomain",
        id="annotation-key-prefix",
    ),
    pytest.param(
        role("master", annotations={"big": "x" * (256 * 1024)}),
        "spec.master.annotations: Too long: may not be more than 262144 bytes",
        id="annotations-too-large",
    ),
    pytest.param(
        {"scheduling": {"nodeSelector": {"disk type": "ssd"}}},
        'spec.scheduling.nodeSelector: Invalid value: "disk type"',
        id="node-selector-key",
    ),
    pytest.param(
        {"scheduling": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}},
        'spec.scheduling.tolerations[0].operator: Invalid value: "v": value must be empty when '
        "`operator` is 'Exists'",
        id="toleration-exists-with-value",
    ),
    pytest.param(
        {"scheduling": {"tolerations": [{"key": "k", "operator": "Sometimes"}]}},
        'spec.scheduling.tolerations[0].operator: Unsupported value: "Sometimes"',
        id="toleration-operator",
    ),
    pytest.param(
        {
            "scheduling": {
                "tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]
            }
        },
        "effect must be 'NoExecute' when `tolerationSeconds` is set",
        id="toleration-seconds",
    ),
    pytest.param(
        {"scheduling": {"affinity": {"nodeAffinity": "near"}}},
        'spec.scheduling.affinity.nodeAffinity: Invalid value: "string"',
        id="affinity-wrong-type",
    ),
    pytest.param(
        {"security": {"podSecurityContext": {"runAsUser": "root"}}},
        'spec.security.podSecurityContext.runAsUser: Invalid value: "string"',
        id="security-context-wrong-type",
    ),
]


@pytest.mark.parametrize(("spec", "message"), REFUSED)
def test_a_field_the_api_server_would_refuse_is_named(spec: dict[str, Any], message: str):
    with pytest.raises(SpecError) as raised:
        parse(v2(**spec))
    assert message in str(raised.value)


@pytest.mark.parametrize(("spec", "message"), REFUSED[:6])
def test_render_exits_2_with_one_line_naming_the_field(
    spec: dict[str, Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    manifest = tmp_path / "test.yaml"
    manifest.write_text(yaml.safe_dump(v2(**spec)))
    assert main(["render", str(manifest)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err


ACCEPTED = [
    pytest.param(role("master", resources={"limits": {"cpu": 2, "memory": "1Gi"}}), id="numbers"),
    pytest.param(
        role("master", resources={"requests": {"cpu": "500m"}, "limits": {"cpu": "0.5"}}),
        id="request-equal-to-limit-in-other-units",
    ),
    pytest.param(role("worker", resources={"limits": {"memory": "1Gi"}}), id="limit-only"),
    pytest.param(role("master", labels={"example.com/team": ""}), id="empty-label-value"),
    pytest.param({"env": {"variables": [{"name": "my var.1", "value": "x"}]}}, id="relaxed-env"),
    pytest.param(
        {"env": {"variables": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}},
        id="env-value-from",
    ),
    pytest.param(
        {"scheduling": {"tolerations": [{"operator": "Exists"}]}}, id="tolerate-everything"
    ),
    pytest.param(mounted({"name": "data", "persistentVolumeClaim": {"claimName": "c"}}), id="pvc"),
]


@pytest.mark.parametrize("spec", ACCEPTED)
def test_what_the_api_server_accepts_passes(spec: dict[str, Any]):
    parse(v2(**spec))
