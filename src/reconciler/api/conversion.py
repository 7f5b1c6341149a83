"""LocustTest v1 ⇄ v2 conversion (v2 the hub, v1 the spoke), and the ConversionReview answer the
apiserver expects from the operator's `/convert` webhook.

v1 → v2 loses nothing. v1 cannot say everything v2 can (resources, extraArgs, autostart/autoquit,
mount paths, nodeSelector, runtimeClassName, a full affinity, tolerationSeconds, env, volumes,
security, observability), and the apiserver applies a write made through v1 to the v1 view and
converts the result back: if that view simply dropped those fields, as upstream's conversion does,
a label-only patch through v1 would wipe them from the stored test. So, as the Kubernetes API
conventions ask of a lossy conversion, every v2 → v1 → v2 round trip is exact:

* v2 → v1 writes the v1 fields as upstream does and, when those alone would not give the v2 spec
  back, the whole v2 spec as compact JSON in the `locust.io/v2-spec` annotation of the v1 object.
* v1 → v2 restores that spec, then applies on top every v1 field the client changed, that is every
  v1 field that differs from what the restored spec shows in v1. A changed field replaces what it
  stands for in v2 (a changed `affinity` replaces the required node affinity and keeps the rest of
  the v2 affinity; changed `tolerations` replace the tolerations), as upstream converts it; the
  v2-only settings stay as they were. A v1 object without the annotation, or with one that is not a
  valid v2 spec (a client removed or rewrote it), converts as upstream.
* The annotation exists only on the v1 view: v1 → v2 always removes it, and the name is reserved.
  (A v2 spec beyond the apiserver's 256 KiB budget for annotations makes writes through v1 fail,
  loudly, rather than lose it.)

A v2 spec v1 can say fully (what upstream makes of a v1 test) gets no annotation, so a v1 test's
v1 → v2 → v1 round trip is exact too. Otherwise metadata and status are copied as they are: both
versions share the status schema, and the apiserver forbids a conversion to change metadata beyond
labels and annotations. Everything here is pure; the HTTPS endpoint only moves JSON.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from ..crds import GROUP, KIND, version_schema
from . import schema
from .types import V1, V2

REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
REVIEW_KIND = "ConversionReview"
SPEC_ANNOTATION = f"{GROUP}/v2-spec"

# What v1 meant without saying: upstream's fixed master flags before v2 made them settings.
_V1_AUTOQUIT = {"enabled": True, "timeout": 60}

_V2_SPEC_SCHEMA = version_schema("v2")["properties"]["spec"]

_REQUIRED_NODE_AFFINITY = ("nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")

# Every v1 field (its path in the v1 spec) and what it stands for in v2 (a path in the v2 spec).
_V1_FIELDS_IN_V2: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("masterCommandSeed",), ("master", "command")),
    (("workerCommandSeed",), ("worker", "command")),
    (("workerReplicas",), ("worker", "replicas")),
    (("image",), ("image",)),
    (("imagePullPolicy",), ("imagePullPolicy",)),
    (("imagePullSecrets",), ("imagePullSecrets",)),
    (("configMap",), ("testFiles", "configMapRef")),
    (("libConfigMap",), ("testFiles", "libConfigMapRef")),
    (("labels", "master"), ("master", "labels")),
    (("labels", "worker"), ("worker", "labels")),
    (("annotations", "master"), ("master", "annotations")),
    (("annotations", "worker"), ("worker", "annotations")),
    (("affinity",), ("scheduling", "affinity", *_REQUIRED_NODE_AFFINITY)),
    (("tolerations",), ("scheduling", "tolerations")),
)


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
    if from_api_version != to_api_version:
        metadata = converted.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}  # nowhere to remember: the object keeps what it has
        if to_api_version == V2:
            _into_v2(converted, metadata)
        else:
            _into_v1(converted, metadata)
    return converted


def _into_v1(obj: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Turn the v2 `obj` into v1, in place: v1's fields, and the v2 spec in the annotation when
    they alone would not give it back."""
    remembered = None
    if "spec" in obj:
        v2_spec = obj["spec"]
        obj["spec"] = _v2_to_v1(v2_spec)
        if _v1_to_v2(obj["spec"]) != v2_spec:
            remembered = json.dumps(v2_spec, separators=(",", ":"), ensure_ascii=False)
    _set_annotation(metadata, remembered)


def _into_v2(obj: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Turn the v1 `obj` into v2, in place: the remembered spec with the v1 changes on top."""
    remembered = _remembered_spec(_annotation(metadata))
    if "spec" in obj:
        obj["spec"] = _restored_v2(obj["spec"], remembered)
    _set_annotation(metadata, None)


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


# --- what the v1 view remembers of v2 ------------------------------------------------------------


def _annotation(metadata: Mapping[str, Any]) -> Any:
    annotations = metadata.get("annotations")
    return annotations.get(SPEC_ANNOTATION) if isinstance(annotations, Mapping) else None


def _set_annotation(metadata: dict[str, Any], text: str | None) -> None:
    """Write the remembered spec (None: remove it) into `metadata`; other annotations stay as
    they are, and an `annotations` map left empty goes, as it came without one."""
    annotations = metadata.get("annotations")
    if text is not None:
        kept = annotations if isinstance(annotations, Mapping) else {}
        metadata["annotations"] = {**kept, SPEC_ANNOTATION: text}
    elif isinstance(annotations, dict) and SPEC_ANNOTATION in annotations:
        del annotations[SPEC_ANNOTATION]
        if not annotations:
            del metadata["annotations"]


def _remembered_spec(text: Any) -> dict[str, Any] | None:
    """The v2 spec the annotation holds; None unless it is a valid v2 spec (a client may have
    rewritten it: anything else counts as no annotation, and never fails the conversion)."""
    if not isinstance(text, str):
        return None
    try:
        spec = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None
    if not isinstance(spec, dict) or schema.validate(spec, _V2_SPEC_SCHEMA, "spec"):
        return None
    return spec


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _restored_v2(v1: dict[str, Any], remembered: dict[str, Any] | None) -> dict[str, Any]:
    """The remembered v2 spec with every v1 field a client changed since applied on top; without
    one, upstream's conversion. A field counts as changed when it differs from what the remembered
    spec shows in v1, so a stale annotation never hides a client's change."""
    upstream = _v1_to_v2(v1)
    if remembered is None:
        return upstream
    shown = _v2_to_v1(remembered)
    for v1_path, v2_path in _V1_FIELDS_IN_V2:
        if _said(v1, v1_path) != _said(shown, v1_path):
            _put(remembered, v2_path, _at(upstream, v2_path))
    return remembered


def _at(value: Any, path: tuple[str, ...]) -> Any:
    """The value at `path`, None if absent."""
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _said(value: Any, path: tuple[str, ...]) -> Any:
    """The value at `path`, None if absent or empty (empty values say nothing, in either
    version)."""
    value = _at(value, path)
    return None if value in (None, "", [], {}) else value


def _put(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set the field at `path`; None removes it, and the objects its removal leaves empty."""
    *parents, leaf = path
    if value is not None:
        for key in parents:
            if not isinstance(spec.get(key), dict):
                spec[key] = {}
            spec = spec[key]
        spec[leaf] = value
        return
    trail = [spec]
    for key in parents:
        child = trail[-1].get(key)
        if not isinstance(child, dict):
            return
        trail.append(child)
    if trail[-1].pop(leaf, None) is None:
        return
    for key, parent in zip(reversed(parents), reversed(trail[:-1]), strict=True):
        if parent[key]:
            break
        del parent[key]


# --- v1 → v2 ------------------------------------------------------------------------------------


def _v1_to_v2(v1: dict[str, Any]) -> dict[str, Any]:
    labels, annotations = v1.get("labels") or {}, v1.get("annotations") or {}
    v2 = {
        **_given(image=v1.get("image")),
        **_non_empty(
            imagePullPolicy=v1.get("imagePullPolicy"),
            imagePullSecrets=[{"name": name} for name in v1.get("imagePullSecrets") or ()],
            master={
                **_given(command=v1.get("masterCommandSeed")),
                **_non_empty(
                    labels=labels.get("master"),
                    annotations=annotations.get("master"),
                    autostart=True,
                    autoquit=dict(_V1_AUTOQUIT),
                ),
            },
            worker={
                **_given(command=v1.get("workerCommandSeed"), replicas=v1.get("workerReplicas")),
                **_non_empty(labels=labels.get("worker"), annotations=annotations.get("worker")),
            },
        ),
    }
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
    return {
        **_given(
            masterCommandSeed=master.get("command"),
            workerCommandSeed=worker.get("command"),
            workerReplicas=worker.get("replicas"),
            image=v2.get("image"),
        ),
        **_non_empty(
            imagePullPolicy=v2.get("imagePullPolicy"),
            imagePullSecrets=[
                ref["name"] for ref in v2.get("imagePullSecrets") or () if ref.get("name")
            ],
            configMap=test_files.get("configMapRef"),
            libConfigMap=test_files.get("libConfigMapRef"),
            labels=_non_empty(master=master.get("labels"), worker=worker.get("labels")),
            annotations=_non_empty(
                master=master.get("annotations"), worker=worker.get("annotations")
            ),
            affinity=_affinity_to_v1(scheduling.get("affinity")),
            tolerations=[
                v1_toleration
                for toleration in scheduling.get("tolerations") or ()
                if (v1_toleration := _toleration_to_v1(toleration))
            ],
        ),
    }


def _affinity_to_v1(affinity: Any) -> dict[str, Any] | None:
    """The `label In [values...]` expressions of the required node affinity, as v1's `label: first
    value` map; None when nothing is representable (an empty map would read as no constraint).
    The v2 affinity is any object: whatever is not shaped like a Kubernetes one says nothing."""
    labels = {}
    for term in _objects(_said(affinity, (*_REQUIRED_NODE_AFFINITY, "nodeSelectorTerms"))):
        for expression in _objects(term.get("matchExpressions")):
            key, values = expression.get("key"), expression.get("values")
            if (
                expression.get("operator") == "In"
                and isinstance(key, str)
                and isinstance(values, list)
                and values
                and isinstance(values[0], str)
            ):
                labels[key] = values[0]
    if not labels:
        return None
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": labels}}


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list (nothing, if it is not one)."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _toleration_to_v1(toleration: Mapping[str, Any]) -> dict[str, Any] | None:
    """v1's toleration needs a key, an operator and an effect: a missing key is the empty key, a
    missing operator Kubernetes' default (Equal), and one without an effect (every effect) v1
    cannot say, so the v1 view leaves it out rather than show an object v1 refuses."""
    if not toleration.get("effect"):
        return None
    return {
        "key": toleration.get("key") or "",
        **_non_empty(
            operator=toleration.get("operator") or "Equal",
            value=toleration.get("value"),
            effect=toleration.get("effect"),
        ),
    }


def _given(**fields: Any) -> dict[str, Any]:
    """Fields both versions require: kept even when empty (an empty command is still one), left
    out only when missing."""
    return {key: value for key, value in fields.items() if value is not None}


def _non_empty(**fields: Any) -> dict[str, Any]:
    """The fields that say something: upstream's Go types omit empty values."""
    return {key: value for key, value in fields.items() if value not in (None, "", [], {})}
