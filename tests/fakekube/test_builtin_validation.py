"""Built-in kinds are validated as kube-apiserver 1.33 validates them.

Each case writes one object the API server refuses and checks what a client sees: the status
code, the reason, the causes (reason, field, message) and the message, composed as the API
server composes it (``Kind.group "name" is invalid: <cause>`` for one cause, a bracketed list
for several).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from fakekube import FakeKube, StatusError

ROOT = Path(__file__).resolve().parents[2]
DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_LABEL = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)
QUANTITY = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
C0 = "spec.template.spec.containers[0]"


@pytest.fixture(scope="module")
def kube() -> Iterator[FakeKube]:
    with FakeKube() as server:
        yield server


@pytest.fixture(scope="module")
def http(kube: FakeKube) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kube.url, timeout=30) as client:
        yield client


# Objects that pass, to break one rule at a time.


def configmap(name: str = "cm", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        **extra,
    }


def job(name: str = "j", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                },
            },
            **spec,
        },
    }


def job_with(change: Callable[[dict[str, Any]], None], name: str = "j") -> dict[str, Any]:
    """A Job whose pod spec ``change`` edits."""
    body = job(name)
    change(body["spec"]["template"]["spec"])
    return body


def service(name: str = "svc", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}], **spec},
    }


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox:1.36", **fields}


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def refused(kube: FakeKube, body: dict[str, Any]) -> StatusError:
    with pytest.raises(StatusError) as error:
        kube.create(body)
    return error.value


def check_invalid(error: StatusError, prefix: str, causes: list[dict[str, str]]) -> None:
    """A 422 Invalid whose causes and message are exactly ``causes``, composed upstream's way."""
    assert error.code == 422 and error.reason == "Invalid"
    assert error.details["causes"] == causes
    lines = list(dict.fromkeys(f"{c['field']}: {c['message']}" for c in causes))
    summary = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
    assert error.message == f"{prefix} is invalid: {summary}"


# (object, "Kind.group \"name\"", causes)
CASES: list[tuple[str, dict[str, Any], str, list[dict[str, str]]]] = [
    (
        "configmap name not a subdomain",
        configmap("Not_A_Name"),
        'ConfigMap "Not_A_Name"',
        [
            cause(
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "Not_A_Name": {DNS1123_SUBDOMAIN}',
            )
        ],
    ),
    (
        "service name not a DNS-1035 label",
        service("1svc"),
        'Service "1svc"',
        [cause("FieldValueInvalid", "metadata.name", f'Invalid value: "1svc": {DNS1035_LABEL}')],
    ),
    (
        "label key without a valid name part",
        configmap(metadata={"name": "cm", "namespace": "default", "labels": {"bad key": "v"}}),
        'ConfigMap "cm"',
        [
            cause(
                "FieldValueInvalid",
                "metadata.labels",
                f'Invalid value: "bad key": {QUALIFIED_NAME_PART}',
            )
        ],
    ),
    (
        "label key with an invalid prefix",
        configmap(metadata={"name": "cm", "namespace": "default", "labels": {"Ex.com/k": "v"}}),
        'ConfigMap "cm"',
        [
            cause(
                "FieldValueInvalid",
                "metadata.labels",
                f'Invalid value: "Ex.com/k": prefix part {DNS1123_SUBDOMAIN}',
            )
        ],
    ),
    (
        "label value too long and badly formed",
        configmap(
            metadata={"name": "cm", "namespace": "default", "labels": {"k": "-" + "v" * 63}}
        ),
        'ConfigMap "cm"',
        [
            cause(
                "FieldValueInvalid",
                "metadata.labels",
                f'Invalid value: "-{"v" * 63}": must be no more than 63 characters',
            ),
            cause(
                "FieldValueInvalid",
                "metadata.labels",
                f'Invalid value: "-{"v" * 63}": {LABEL_VALUE}',
            ),
        ],
    ),
    (
        "annotation key with two slashes",
        configmap(metadata={"name": "cm", "namespace": "default", "annotations": {"a/b/c": ""}}),
        'ConfigMap "cm"',
        [
            cause(
                "FieldValueInvalid",
                "metadata.annotations",
                'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
                "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')",
            )
        ],
    ),
    (
        "annotations over 256 KiB",
        configmap(
            metadata={"name": "cm", "namespace": "default", "annotations": {"a": "x" * 262144}}
        ),
        'ConfigMap "cm"',
        [
            cause(
                "FieldValueTooLong",
                "metadata.annotations",
                "Too long: may not be more than 262144 bytes",
            )
        ],
    ),
    (
        "env var name with '='",
        job_with(lambda s: s.update(containers=[container(env=[{"name": "A=B", "value": "1"}])])),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{C0}.env[0].name",
                'Invalid value: "A=B": a valid environment variable name must consist only of '
                "printable ASCII characters other than '='",
            )
        ],
    ),
    (
        "empty env var name",
        job_with(lambda s: s.update(containers=[container(env=[{"name": "", "value": "1"}])])),
        'Job.batch "j"',
        [cause("FieldValueRequired", f"{C0}.env[0].name", "Required value")],
    ),
    (
        "env valueFrom with two sources",
        job_with(
            lambda s: s.update(
                containers=[
                    container(
                        env=[
                            {
                                "name": "X",
                                "valueFrom": {
                                    "fieldRef": {"fieldPath": "metadata.name"},
                                    "secretKeyRef": {"name": "s", "key": "k"},
                                },
                            }
                        ]
                    )
                ]
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{C0}.env[0].valueFrom",
                'Invalid value: "": may not have more than one field specified at a time',
            )
        ],
    ),
    (
        "env valueFrom beside a value",
        job_with(
            lambda s: s.update(
                containers=[
                    container(
                        env=[
                            {
                                "name": "X",
                                "value": "v",
                                "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}},
                            }
                        ]
                    )
                ]
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{C0}.env[0].valueFrom",
                'Invalid value: "": may not be specified when `value` is not empty',
            )
        ],
    ),
    (
        "container name not a label, image missing",
        job_with(lambda s: s.update(containers=[{"name": "Main"}])),
        'Job.batch "j"',
        [
            cause("FieldValueInvalid", f"{C0}.name", f'Invalid value: "Main": {DNS1123_LABEL}'),
            cause("FieldValueRequired", f"{C0}.image", "Required value"),
        ],
    ),
    (
        "init container named like a container",
        job_with(lambda s: s.update(initContainers=[container()])),
        'Job.batch "j"',
        [
            cause(
                "FieldValueDuplicate",
                "spec.template.spec.initContainers[0].name",
                'Duplicate value: "main"',
            )
        ],
    ),
    (
        "sidecar restart policy other than Always",
        job_with(
            lambda s: s.update(initContainers=[container(name="init", restartPolicy="OnFailure")])
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueNotSupported",
                "spec.template.spec.initContainers[0].restartPolicy",
                'Unsupported value: "OnFailure": supported values: "Always"',
            )
        ],
    ),
    (
        "container ports: range, long and duplicate names",
        job_with(
            lambda s: s.update(
                containers=[
                    container(
                        ports=[
                            {"containerPort": 70000, "name": "metrics"},
                            {"containerPort": 81, "name": "metrics"},
                            {"containerPort": 82, "name": "a-very-long-port"},
                        ]
                    )
                ]
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{C0}.ports[0].containerPort",
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            cause("FieldValueDuplicate", f"{C0}.ports[1].name", 'Duplicate value: "metrics"'),
            cause(
                "FieldValueInvalid",
                f"{C0}.ports[2].name",
                'Invalid value: "a-very-long-port": must be no more than 15 characters',
            ),
        ],
    ),
    (
        "policies outside their enums",
        job_with(
            lambda s: s.update(
                containers=[
                    container(terminationMessagePolicy="Sometimes", imagePullPolicy="Sometimes")
                ]
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueNotSupported",
                f"{C0}.terminationMessagePolicy",
                'Unsupported value: "Sometimes": supported values: "File", "FallbackToLogsOnError"',
            ),
            cause(
                "FieldValueNotSupported",
                f"{C0}.imagePullPolicy",
                'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", '
                '"Never"',
            ),
        ],
    ),
    (
        "request above its limit",
        job_with(
            lambda s: s.update(
                containers=[
                    container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1000m"}})
                ]
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{C0}.resources.requests",
                'Invalid value: "2": must be less than or equal to cpu limit of 1',
            )
        ],
    ),
    (
        "unknown resource name",
        job_with(lambda s: s.update(containers=[container(resources={"limits": {"gpu": "1"}})])),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{C0}.resources.limits[gpu]",
                'Invalid value: "gpu": must be a standard resource type or fully qualified',
            ),
            cause(
                "FieldValueInvalid",
                f"{C0}.resources.limits[gpu]",
                'Invalid value: "gpu": must be a standard resource for containers',
            ),
        ],
    ),
    (
        "volume mounts: missing volume, empty and repeated paths",
        job_with(
            lambda s: s.update(
                volumes=[{"name": "data", "emptyDir": {}}],
                containers=[
                    container(
                        volumeMounts=[
                            {"name": "cache", "mountPath": "/a"},
                            {"name": "data", "mountPath": ""},
                            {"name": "data", "mountPath": "/a"},
                        ]
                    )
                ],
            )
        ),
        'Job.batch "j"',
        [
            cause("FieldValueNotFound", f"{C0}.volumeMounts[0].name", 'Not found: "cache"'),
            cause("FieldValueRequired", f"{C0}.volumeMounts[1].mountPath", "Required value"),
            cause(
                "FieldValueInvalid",
                f"{C0}.volumeMounts[2].mountPath",
                'Invalid value: "/a": must be unique',
            ),
        ],
    ),
    (
        "volumes: bad name, duplicate, two sources",
        job_with(
            lambda s: s.update(
                volumes=[
                    {"name": "Data", "emptyDir": {}},
                    {"name": "cache", "emptyDir": {}},
                    {"name": "cache", "emptyDir": {}},
                    {"name": "both", "emptyDir": {}, "configMap": {"name": "c"}},
                ]
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                "spec.template.spec.volumes[0].name",
                f'Invalid value: "Data": {DNS1123_LABEL}',
            ),
            cause(
                "FieldValueDuplicate",
                "spec.template.spec.volumes[2].name",
                'Duplicate value: "cache"',
            ),
            cause(
                "FieldValueForbidden",
                "spec.template.spec.volumes[3].configMap",
                "Forbidden: may not specify more than 1 volume type",
            ),
        ],
    ),
    (
        "job pod template that restarts always",
        job_with(lambda s: s.update(restartPolicy="Always")),
        'Job.batch "j"',
        [
            cause(
                "FieldValueRequired",
                "spec.template.spec.restartPolicy",
                'Required value: valid values: "OnFailure", "Never"',
            )
        ],
    ),
    (
        "node selector key and value",
        job_with(lambda s: s.update(nodeSelector={"bad key": "-v"})),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                "spec.template.spec.nodeSelector",
                f'Invalid value: "bad key": {QUALIFIED_NAME_PART}',
            ),
            cause(
                "FieldValueInvalid",
                "spec.template.spec.nodeSelector",
                f'Invalid value: "-v": {LABEL_VALUE}',
            ),
        ],
    ),
    (
        "tolerations",
        job_with(
            lambda s: s.update(
                tolerations=[
                    {"key": "k", "operator": "Exists", "value": "v"},
                    {"key": "k", "operator": "Equal", "effect": "Sometimes"},
                    {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5},
                    {"operator": "Equal", "value": "v"},
                ]
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                "spec.template.spec.tolerations[0].operator",
                "Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
            ),
            cause(
                "FieldValueNotSupported",
                "spec.template.spec.tolerations[1].effect",
                'Unsupported value: "Sometimes": supported values: "NoSchedule", '
                '"PreferNoSchedule", "NoExecute"',
            ),
            cause(
                "FieldValueInvalid",
                "spec.template.spec.tolerations[2].effect",
                "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
                "`tolerationSeconds` is set",
            ),
            cause(
                "FieldValueInvalid",
                "spec.template.spec.tolerations[3].operator",
                'Invalid value: "Equal": operator must be Exists when `key` is empty, which means '
                '"match all values and all keys"',
            ),
        ],
    ),
    (
        "security contexts",
        job_with(
            lambda s: s.update(
                securityContext={"runAsUser": -1, "seccompProfile": {"type": "Strict"}},
                containers=[container(securityContext={"runAsGroup": -2})],
            )
        ),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{C0}.securityContext.runAsGroup",
                "Invalid value: -2: must be between 0 and 2147483647, inclusive",
            ),
            cause(
                "FieldValueInvalid",
                "spec.template.spec.securityContext.runAsUser",
                "Invalid value: -1: must be between 0 and 2147483647, inclusive",
            ),
            cause(
                "FieldValueNotSupported",
                "spec.template.spec.securityContext.seccompProfile.type",
                'Unsupported value: "Strict": supported values: "Localhost", "RuntimeDefault", '
                '"Unconfined"',
            ),
        ],
    ),
    (
        "negative job counts",
        job(parallelism=-1, completions=-1, backoffLimit=-1, ttlSecondsAfterFinished=-1),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"spec.{key}",
                "Invalid value: -1: must be greater than or equal to 0",
            )
            for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished")
        ],
    ),
    (
        "manual selector that misses the template",
        job(manualSelector=True, selector={"matchLabels": {"app": "other"}}),
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                'Invalid value: map[string]string{"app":"j"}: `selector` does not match template '
                "`labels`",
            )
        ],
    ),
    (
        "manual selector missing",
        job(manualSelector=True),
        'Job.batch "j"',
        [cause("FieldValueRequired", "spec.selector", "Required value")],
    ),
    (
        "service ports",
        service(
            ports=[
                {"port": 0, "name": "a"},
                {"port": 81},
                {"port": 82, "name": "a", "protocol": "HTTP"},
            ]
        ),
        'Service "svc"',
        [
            cause(
                "FieldValueInvalid",
                "spec.ports[0].port",
                "Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
            # targetPort defaults to the port, so it is out of range too.
            cause(
                "FieldValueInvalid",
                "spec.ports[0].targetPort",
                "Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
            cause("FieldValueRequired", "spec.ports[1].name", "Required value"),
            cause("FieldValueDuplicate", "spec.ports[2].name", 'Duplicate value: "a"'),
            cause(
                "FieldValueNotSupported",
                "spec.ports[2].protocol",
                'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            ),
        ],
    ),
    (
        "service port listed twice",
        service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
        'Service "svc"',
        [
            cause(
                "FieldValueDuplicate",
                "spec.ports[1]",
                'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
                "AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, "
                'IntVal:0, StrVal:""}, NodePort:0}',
            )
        ],
    ),
    (
        "service type and selector",
        service(type="Internal", selector={"app": "-x"}),
        'Service "svc"',
        [
            cause("FieldValueInvalid", "spec.selector", f'Invalid value: "-x": {LABEL_VALUE}'),
            cause(
                "FieldValueNotSupported",
                "spec.type",
                'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"',
            ),
        ],
    ),
    (
        "configmap keys",
        configmap(data={"bad key": "v", "both": "v"}, binaryData={"both": "dg=="}),
        'ConfigMap "cm"',
        [
            cause("FieldValueInvalid", "data[bad key]", f'Invalid value: "bad key": {CONFIG_KEY}'),
            cause(
                "FieldValueInvalid",
                "data[both]",
                'Invalid value: "both": duplicate of key present in binaryData',
            ),
        ],
    ),
    (
        "secret key",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "default"},
            "data": {"..": "dg=="},
        },
        'Secret "s"',
        # ".." matches the key pattern, but may not be a key (it would name a parent directory).
        [cause("FieldValueInvalid", "data[..]", "Invalid value: \"..\": must not be '..'")],
    ),
    (
        "core event namespace mismatch",
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"},
            "reason": "Started",
        },
        'Event "e"',
        [
            cause(
                "FieldValueInvalid",
                "involvedObject.namespace",
                'Invalid value: "other": does not match event.namespace',
            )
        ],
    ),
    (
        "events.k8s.io event without its required fields",
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "type": "Odd",
        },
        'Event.events.k8s.io "e"',
        [
            cause("FieldValueRequired", "reportingController", "Required value"),
            cause(
                "FieldValueInvalid",
                "reportingController",
                'Invalid value: "": name part must be non-empty',
            ),
            cause(
                "FieldValueInvalid",
                "reportingController",
                f'Invalid value: "": {QUALIFIED_NAME_PART}',
            ),
            cause("FieldValueRequired", "reportingInstance", "Required value"),
            cause("FieldValueRequired", "action", "Required value"),
            cause("FieldValueRequired", "reason", "Required value"),
            cause("FieldValueInvalid", "type", 'Invalid value: "": has invalid value: Odd'),
        ],
    ),
    (
        "lease duration",
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "l", "namespace": "default"},
            "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1},
        },
        'Lease.coordination.k8s.io "l"',
        [
            cause(
                "FieldValueInvalid",
                "spec.leaseDurationSeconds",
                "Invalid value: 0: must be greater than 0",
            ),
            cause(
                "FieldValueInvalid",
                "spec.leaseTransitions",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
        ],
    ),
    (
        "role binding roleRef and subjects",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Policy", "name": "r"},
            "subjects": [{"kind": "Robot", "name": "r2"}, {"kind": "ServiceAccount"}],
        },
        'RoleBinding.rbac.authorization.k8s.io "rb"',
        [
            cause(
                "FieldValueNotSupported",
                "roleRef.kind",
                'Unsupported value: "Policy": supported values: "Role", "ClusterRole"',
            ),
            cause(
                "FieldValueNotSupported",
                "subjects[0].kind",
                'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
            ),
            cause("FieldValueRequired", "subjects[1].name", "Required value"),
        ],
    ),
    (
        "cluster role binding service account without namespace",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "crb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}],
        },
        'ClusterRoleBinding.rbac.authorization.k8s.io "crb"',
        [
            cause(
                "FieldValueNotSupported",
                "roleRef.kind",
                'Unsupported value: "Role": supported values: "ClusterRole"',
            ),
            cause("FieldValueRequired", "subjects[0].namespace", "Required value"),
        ],
    ),
    (
        "cluster role rule without verbs or resources",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "cr"},
            "rules": [{"apiGroups": [""]}],
        },
        'ClusterRole.rbac.authorization.k8s.io "cr"',
        [
            cause(
                "FieldValueRequired",
                "rules[0].verbs",
                "Required value: verbs must contain at least one value",
            ),
            cause(
                "FieldValueRequired",
                "rules[0].resources",
                "Required value: resource rules must supply at least one resource",
            ),
        ],
    ),
]


@pytest.mark.parametrize(
    ("body", "prefix", "causes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_api_server_refuses_what_kubernetes_refuses(
    kube: FakeKube, body: dict[str, Any], prefix: str, causes: list[dict[str, str]]
) -> None:
    check_invalid(refused(kube, copy.deepcopy(body)), prefix, causes)


def test_a_configmap_over_one_mebibyte_is_too_long_as_a_whole(kube: FakeKube) -> None:
    error = refused(kube, configmap("big", data={"a": "x" * (1024 * 1024 + 1)}))
    # The cause names no field: the error is about the whole object.
    assert error.details["causes"] == [
        {"reason": "FieldValueTooLong", "message": "Too long: may not be more than 1048576 bytes"}
    ]
    assert (
        error.message
        == 'ConfigMap "big" is invalid: : Too long: may not be more than 1048576 bytes'
    )


def test_a_job_selector_that_is_not_the_generated_one(kube: FakeKube) -> None:
    error = refused(kube, job(selector={"matchLabels": {"app": "j"}}))
    [only] = error.details["causes"]
    assert only["field"] == "spec.selector" and only["reason"] == "FieldValueInvalid"
    assert only["message"].startswith(
        'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"j", '
        '"batch.kubernetes.io/controller-uid":"'
    )
    assert only["message"].endswith("`selector` not auto-generated")


def test_a_bad_generate_name_is_reported_with_the_generated_name(kube: FakeKube) -> None:
    body = configmap()
    body["metadata"] = {"generateName": "Cache-", "namespace": "default"}
    error = refused(kube, body)
    assert [(c["field"], c["reason"]) for c in error.details["causes"]] == [
        ("metadata.generateName", "FieldValueInvalid"),
        ("metadata.name", "FieldValueInvalid"),
    ]
    assert error.details["causes"][0]["message"] == f'Invalid value: "Cache-": {DNS1123_SUBDOMAIN}'


def test_rbac_names_only_need_to_be_path_segments(kube: FakeKube) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:Weird_Name"},
        "rules": [],
    }
    assert kube.create(role)["metadata"]["name"] == "system:Weird_Name"
    role["metadata"]["name"] = "a/b"
    error = refused(kube, role)
    assert error.message == (
        'ClusterRole.rbac.authorization.k8s.io "a/b" is invalid: metadata.name: Invalid value: '
        "\"a/b\": may not contain '/'"
    )


# Bodies that do not decode into the Go type: 400, the decoder's own message.

DECODE_CASES = [
    (
        "a number for a volume source",
        job_with(lambda s: s.update(volumes=[{"name": "data", "hostPath": 123}])),
        (
            "json: cannot unmarshal number into Go struct field Volume.spec.template.spec.volumes."
            "hostPath of type v1.HostPathVolumeSource"
        ),
    ),
    (
        "a string for the limits",
        job_with(lambda s: s.update(containers=[container(resources={"limits": "x"})])),
        (
            "json: cannot unmarshal string into Go struct field ResourceRequirements.spec.template."
            "spec.containers.resources.limits of type v1.ResourceList"
        ),
    ),
    (
        "an unparseable quantity",
        job_with(
            lambda s: s.update(containers=[container(resources={"requests": {"cpu": "1 core"}})])
        ),
        QUANTITY,
    ),
    (
        "a string for a boolean",
        job_with(lambda s: s.update(enableServiceLinks="no")),
        (
            "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec."
            "enableServiceLinks of type bool"
        ),
    ),
    (
        "a fraction for an int32",
        job(parallelism=1.5),
        (
            "json: cannot unmarshal number 1.5 into Go struct field JobSpec.spec.parallelism of type "
            "int32"
        ),
    ),
    (
        "a number for a label value",
        configmap(metadata={"name": "cm", "namespace": "default", "labels": {"a": 1}}),
        (
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
            "string"
        ),
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES]
)
def test_a_body_of_the_wrong_json_types_cannot_be_handled(
    http: httpx.Client, body: dict[str, Any], message: str
) -> None:
    kind, plural = body["kind"], {"Job": "jobs", "ConfigMap": "configmaps"}[body["kind"]]
    prefix = "/apis/batch/v1" if kind == "Job" else "/api/v1"
    response = http.post(f"{prefix}/namespaces/default/{plural}", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{kind} in version "v1" cannot be handled as a {kind}: {message}',
        "reason": "BadRequest",
        "code": 400,
    }


def test_secret_data_must_be_base64(http: httpx.Client) -> None:
    body = {"metadata": {"name": "s"}, "data": {"k": "not base64"}}
    response = http.post("/api/v1/namespaces/default/secrets", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )


def test_a_merge_patch_to_a_wrong_type_is_an_invalid_patch(
    kube: FakeKube, http: httpx.Client
) -> None:
    kube.create(configmap("patched"))
    response = http.patch(
        "/api/v1/namespaces/default/configmaps/patched",
        content=b'{"data": {"k": 5}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    [only] = status["details"]["causes"]
    assert only["field"] == "patch"
    assert only["message"].endswith(
        ": json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
    )
    assert status["message"].startswith(' "" is invalid: patch: Invalid value: "{')


def test_unknown_fields_are_dropped_with_a_warning(http: httpx.Client) -> None:
    body = configmap("extra", data={"k": "v"}, colour="blue")
    response = http.post("/api/v1/namespaces/default/configmaps", json=body)
    assert response.status_code == 201
    assert "colour" not in response.json()
    assert response.headers.get_list("Warning") == ['299 - "unknown field \\"colour\\""']
    stored = http.get("/api/v1/namespaces/default/configmaps/extra").json()
    assert "colour" not in stored


def test_quantities_are_stored_in_canonical_form(kube: FakeKube) -> None:
    body = job_with(
        lambda s: s.update(
            containers=[
                container(
                    resources={
                        "requests": {"cpu": "1000m", "memory": 1024},
                        "limits": {"memory": "1024Mi"},
                    }
                )
            ]
        ),
        name="canonical",
    )
    created = kube.create(body)
    resources = created["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "1024"}, "limits": {"memory": "1Gi"}}


def test_a_volume_without_a_source_is_an_empty_dir(kube: FakeKube) -> None:
    created = kube.create(
        job_with(lambda s: s.update(volumes=[{"name": "scratch"}]), name="scratch")
    )
    assert created["spec"]["template"]["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {}}]


# Sizes.


def test_a_body_over_three_mebibytes_is_too_large(http: httpx.Client) -> None:
    body = configmap("huge", data={"a": "x" * (3 * 1024 * 1024)})
    response = http.post("/api/v1/namespaces/default/configmaps", json=body)
    assert response.status_code == 413
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Request entity too large: limit is 3145728",
        "reason": "RequestEntityTooLarge",
        "code": 413,
    }


def test_an_object_over_etcds_limit_is_refused_by_storage(http: httpx.Client) -> None:
    big = "x" * (1600 * 1024)
    body = job_with(
        lambda s: s.update(containers=[container(env=[{"name": "BIG", "value": big}])])
    )
    response = http.post("/apis/batch/v1/namespaces/default/jobs", json=body)
    assert response.status_code == 500
    # Not a Status in the apiserver: reason Unknown, which Status leaves out.
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "etcdserver: request is too large",
        "code": 500,
    }


# Update, patch and apply are validated too.


def test_updates_patches_and_applies_are_validated(kube: FakeKube) -> None:
    kube.create(configmap("writes", data={"k": "v"}))
    replaced = configmap("writes", data={"bad key": "v"})
    with pytest.raises(StatusError) as error:
        kube.replace(replaced)
    key_error = f'data[bad key]: Invalid value: "bad key": {CONFIG_KEY}'
    assert (
        error.value.code == 422
        and error.value.message == f'ConfigMap "writes" is invalid: {key_error}'
    )
    with pytest.raises(StatusError) as error:
        kube.patch(
            "v1", "ConfigMap", "writes", {"metadata": {"labels": {"-": "v"}}}, patch_type="merge"
        )
    assert error.value.code == 422
    # The generic update checks and the kind's own both report the label.
    assert [c["field"] for c in error.value.details["causes"]] == ["metadata.labels"] * 4
    applied = job_with(
        lambda s: s.update(containers=[container(env=[{"name": "A=B"}])]), name="applied"
    )
    with pytest.raises(StatusError) as error:
        kube.apply_yaml(yaml.safe_dump(applied))
    assert error.value.code == 422
    assert error.value.details["causes"][0]["field"] == f"{C0}.env[0].name"


def test_job_spec_updates_to_immutable_fields(kube: FakeKube) -> None:
    kube.create(job("frozen", completions=2))
    with pytest.raises(StatusError) as error:
        kube.patch("batch/v1", "Job", "frozen", {"spec": {"completions": 3}}, patch_type="merge")
    assert error.value.code == 422
    assert error.value.details["causes"] == [
        cause("FieldValueInvalid", "spec.completions", "Invalid value: 3: field is immutable")
    ]


# What the product writes passes.


def test_every_object_the_operator_renders_is_accepted(kube: FakeKube) -> None:
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler.cli",
            "render",
            str(ROOT / "examples" / "locusttest.yaml"),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    ).stdout
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert sorted(o["kind"] for o in objects) == ["Job", "Job", "Service"]
    for obj in objects:
        created = kube.create(obj)
        assert created["metadata"]["uid"]
        if obj["kind"] == "Job":
            # The fake's Job controller makes pods that must pass Pod validation too.
            [pod] = kube.jobs.create_pods("default", obj["metadata"]["name"], count=1)
            assert pod["status"]["phase"] == "Pending"


def test_strict_field_validation_refuses_unknown_fields(http: httpx.Client) -> None:
    body = configmap("strict", colour="blue", data={"k": "v"})
    response = http.post(
        "/api/v1/namespaces/default/configmaps", params={"fieldValidation": "Strict"}, json=body
    )
    assert response.status_code == 400
    assert response.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "colour"'
    )
    response = http.post(
        "/api/v1/namespaces/default/configmaps", params={"fieldValidation": "Ignore"}, json=body
    )
    assert response.status_code == 201 and "Warning" not in response.headers


def test_an_unknown_field_validation_directive_is_an_invalid_option(http: httpx.Client) -> None:
    response = http.post(
        "/api/v1/namespaces/default/configmaps",
        params={"fieldValidation": "Loose"},
        json=configmap("loose"),
    )
    assert response.status_code == 422
    assert response.json()["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loose": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


def test_a_job_name_too_long_for_its_pod_labels(kube: FakeKube) -> None:
    # The Job's name becomes the value of the job-name labels of its pod template.
    name = "j" * 64
    body = job(name)
    body["spec"]["template"]["metadata"]["labels"] = {"app": "long"}
    error = refused(kube, body)
    too_long = cause(
        "FieldValueInvalid",
        "spec.template.labels",
        f'Invalid value: "{name}": must be no more than 63 characters',
    )
    assert error.details["causes"] == [too_long, too_long]
    assert error.message == (
        f'Job.batch "{name}" is invalid: spec.template.labels: Invalid value: "{name}": '
        "must be no more than 63 characters"
    )


def test_probes_are_defaulted_and_validated(kube: FakeKube) -> None:
    probe = {"httpGet": {"port": 8089}}
    body = job_with(
        lambda s: s.update(containers=[container(readinessProbe=probe)]), name="probed"
    )
    created = kube.create(body)["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert created == {
        "httpGet": {"port": 8089, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    bad = {
        "livenessProbe": {"successThreshold": 2},
        "startupProbe": {"tcpSocket": {"port": "a--b"}},
    }
    error = refused(kube, job_with(lambda s: s.update(containers=[container(**bad)])))
    check_invalid(
        error,
        'Job.batch "j"',
        [
            cause(
                "FieldValueRequired",
                f"{C0}.livenessProbe",
                "Required value: must specify a handler type",
            ),
            cause(
                "FieldValueInvalid",
                f"{C0}.livenessProbe.successThreshold",
                "Invalid value: 2: must be 1",
            ),
            cause(
                "FieldValueInvalid",
                f"{C0}.startupProbe.tcpSocket.port",
                'Invalid value: "a--b": must not contain consecutive hyphens',
            ),
        ],
    )


def test_affinity_terms_are_validated(kube: FakeKube) -> None:
    node_terms = [
        {
            "matchExpressions": [
                {"key": "zone", "operator": "Equals", "values": ["a"]},
                {"key": "disk", "operator": "In"},
            ]
        }
    ]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": node_terms},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 0,
                    "preference": {"matchExpressions": [{"key": "k", "operator": "Exists"}]},
                }
            ],
        },
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "x"}}}
            ]
        },
    }
    error = refused(kube, job_with(lambda s: s.update(affinity=affinity)))
    node = "spec.template.spec.affinity.nodeAffinity"
    required = f"{node}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
    anti = "spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
    check_invalid(
        error,
        'Job.batch "j"',
        [
            cause(
                "FieldValueInvalid",
                f"{required}.matchExpressions[0].operator",
                'Invalid value: "Equals": not a valid selector operator',
            ),
            cause(
                "FieldValueRequired",
                f"{required}.matchExpressions[1].values",
                "Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ),
            cause(
                "FieldValueInvalid",
                f"{node}.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
                "Invalid value: 0: must be in the range 1-100",
            ),
            cause("FieldValueRequired", f"{anti}.topologyKey", "Required value: can not be empty"),
            cause(
                "FieldValueInvalid",
                f"{anti}.topologyKey",
                'Invalid value: "": name part must be non-empty',
            ),
            cause(
                "FieldValueInvalid",
                f"{anti}.topologyKey",
                f'Invalid value: "": {QUALIFIED_NAME_PART}',
            ),
        ],
    )
