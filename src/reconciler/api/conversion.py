"""LocustTest v1 ⇄ v2 conversion, as upstream converts (v2 the hub, v1 the spoke), and the
ConversionReview answer the apiserver expects from the operator's `/convert` webhook.

v1 → v2 loses nothing. v2 → v1 keeps what v1 can say and drops the rest (resources, extraArgs,
autostart/autoquit, mount paths, nodeSelector, runtimeClassName, env, volumes, security,
observability), as upstream. Metadata and status are copied as they are: both versions share the
status schema, and the apiserver forbids a conversion to change metadata beyond labels and
annotations. Everything here is pure; the HTTPS endpoint only moves JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..crds import KIND
from .types import V1, V2

REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
REVIEW_KIND = "ConversionReview"

# What v1 meant without saying: upstream's fixed master flags before v2 made them settings.
_V1_AUTOQUIT = {"enabled": True, "timeout": 60}


class ConversionError(ValueError):
    """The object cannot be converted: not a LocustTest, or a version this operator lacks."""


def convert(obj: Mapping[str, Any], to_api_version: str) -> dict[str, Any]:
    """Return `obj` (a LocustTest dict) as `to_api_version`; the input is left unchanged."""
    if obj.get("kind") != KIND:
        raise ConversionError(f"expected a {KIND}, got kind {obj.get('kind')!r}")
    from_api_version = obj.get("apiVersion")
    if from_api_version not in (V1, V2):
        raise ConversionError(f"unsupported apiVersion {from_api_version!r}")
    if to_api_version not in (V1, V2):
        raise ConversionError(f"unsupported desired apiVersion {to_api_version!r}")
    if not isinstance(obj.get("spec", {}), Mapping):
        raise ConversionError("spec must be an object")
    converted = copy.deepcopy(dict(obj))
    converted["apiVersion"] = to_api_version
    if from_api_version != to_api_version and "spec" in obj:
        to_spec = _v1_to_v2 if to_api_version == V2 else _v2_to_v1
        converted["spec"] = to_spec(converted["spec"])
    return converted


def review(review_request: Any) -> dict[str, Any]:
    """Answer a ConversionReview (`apiextensions.k8s.io/v1`): every object converted, or a Failed
    result saying why (a malformed review, an object that is no LocustTest of a known version)."""
    request = review_request.get("request") if isinstance(review_request, Mapping) else None
    response: dict[str, Any] = {
        "uid": request.get("uid", "") if isinstance(request, Mapping) else ""
    }
    try:
        desired, objects = _unpack(review_request)
        response["convertedObjects"] = [convert(obj, desired) for obj in objects]
    except ConversionError as error:
        response["result"] = {"status": "Failed", "message": str(error)}
    else:
        response["result"] = {"status": "Success"}
    return {"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": response}


def _unpack(review_request: Any) -> tuple[Any, list[Mapping[str, Any]]]:
    """The desired apiVersion and the objects of a well-formed review."""
    if not (
        isinstance(review_request, Mapping)
        and review_request.get("kind") == REVIEW_KIND
        and review_request.get("apiVersion") == REVIEW_API_VERSION
    ):
        raise ConversionError(f"expected a {REVIEW_KIND} ({REVIEW_API_VERSION})")
    request = review_request.get("request")
    if not isinstance(request, Mapping):
        raise ConversionError(f"the {REVIEW_KIND} has no request")
    objects = request.get("objects") or []
    if not (isinstance(objects, list) and all(isinstance(obj, Mapping) for obj in objects)):
        raise ConversionError("request.objects must be a list of objects")
    return request.get("desiredAPIVersion"), objects


# --- v1 → v2 ------------------------------------------------------------------------------------


def _v1_to_v2(v1: dict[str, Any]) -> dict[str, Any]:
    labels, annotations = v1.get("labels") or {}, v1.get("annotations") or {}
    v2 = _non_empty(
        image=v1.get("image"),
        imagePullPolicy=v1.get("imagePullPolicy"),
        imagePullSecrets=[{"name": name} for name in v1.get("imagePullSecrets") or ()],
        master=_non_empty(
            command=v1.get("masterCommandSeed"),
            labels=labels.get("master"),
            annotations=annotations.get("master"),
            autostart=True,
            autoquit=dict(_V1_AUTOQUIT),
        ),
        worker=_non_empty(
            command=v1.get("workerCommandSeed"),
            replicas=v1.get("workerReplicas"),
            labels=labels.get("worker"),
            annotations=annotations.get("worker"),
        ),
    )
    if v1.get("configMap") or v1.get("libConfigMap"):
        # No mount paths: the v2 defaults are v1's fixed paths.
        v2["testFiles"] = _non_empty(
            configMapRef=v1.get("configMap"), libConfigMapRef=v1.get("libConfigMap")
        )
    if v1.get("affinity") is not None or v1.get("tolerations"):
        v2["scheduling"] = _non_empty(
            affinity=_affinity_to_v2(v1.get("affinity") or {}),
            tolerations=[_toleration_to_v2(t) for t in v1.get("tolerations") or ()],
        )
    return v2


def _affinity_to_v2(affinity: Mapping[str, Any]) -> dict[str, Any] | None:
    """v1's `node label: value` map as the Kubernetes node affinity it stands for: one term whose
    expressions are `label In [value]`."""
    required = (affinity.get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return None
    expressions = [
        {"key": key, "operator": "In", "values": [value]} for key, value in required.items()
    ]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }
        }
    }


def _toleration_to_v2(toleration: Mapping[str, Any]) -> dict[str, Any]:
    # A value is kept only for Equal: Kubernetes rejects a pod whose Exists toleration has one,
    # which v1 (and upstream's conversion) let through.
    value = toleration.get("value") if toleration.get("operator") == "Equal" else None
    return _non_empty(
        key=toleration.get("key"),
        operator=toleration.get("operator"),
        value=value,
        effect=toleration.get("effect"),
    )


# --- v2 → v1 ------------------------------------------------------------------------------------


def _v2_to_v1(v2: dict[str, Any]) -> dict[str, Any]:
    master, worker = v2.get("master") or {}, v2.get("worker") or {}
    test_files = v2.get("testFiles") or {}
    scheduling = v2.get("scheduling") or {}
    return _non_empty(
        masterCommandSeed=master.get("command"),
        workerCommandSeed=worker.get("command"),
        workerReplicas=worker.get("replicas"),
        image=v2.get("image"),
        imagePullPolicy=v2.get("imagePullPolicy"),
        imagePullSecrets=[
            ref["name"] for ref in v2.get("imagePullSecrets") or () if ref.get("name")
        ],
        configMap=test_files.get("configMapRef"),
        libConfigMap=test_files.get("libConfigMapRef"),
        labels=_non_empty(master=master.get("labels"), worker=worker.get("labels")),
        annotations=_non_empty(master=master.get("annotations"), worker=worker.get("annotations")),
        affinity=_affinity_to_v1(scheduling.get("affinity") or {}),
        tolerations=[_toleration_to_v1(t) for t in scheduling.get("tolerations") or ()],
    )


def _affinity_to_v1(affinity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `label In [values...]` expressions of the required node affinity, as v1's `label: first
    value` map; None when nothing is representable (an empty map would read as no constraint)."""
    required = (affinity.get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    labels = {
        expression["key"]: expression["values"][0]
        for term in required.get("nodeSelectorTerms") or ()
        for expression in term.get("matchExpressions") or ()
        if expression.get("operator") == "In" and expression.get("values")
    }
    if not labels:
        return None
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": labels}}


def _toleration_to_v1(toleration: Mapping[str, Any]) -> dict[str, Any]:
    return _non_empty(
        key=toleration.get("key"),
        operator=toleration.get("operator"),
        value=toleration.get("value"),
        effect=toleration.get("effect"),
    )


def _non_empty(**fields: Any) -> dict[str, Any]:
    """The fields that say something: upstream's Go types omit empty values."""
    return {key: value for key, value in fields.items() if value not in (None, "", [], {})}
