"""Jobs: ``ValidateJob`` and ``ValidateJobUpdate`` of ``pkg/apis/batch/validation``."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError, GoLiteral
from ..selectors import LabelSelector
from .meta import (
    go_label_selector,
    go_string_map,
    label_selector,
    nonnegative,
    object_meta,
    object_meta_update,
)
from .names import name_is_dns_subdomain
from .pod import pod_template

LEGACY_JOB_NAME, JOB_NAME = "job-name", "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID, CONTROLLER_UID = "controller-uid", "batch.kubernetes.io/controller-uid"


def _has_label(labels: dict[str, str], key: str, expected: str) -> list[FieldError]:
    """``ValidateHasLabel`` on the template's metadata."""
    path = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        return [FieldError.required(path, f"must be '{expected}'")]
    if labels[key] != expected:
        return [FieldError.invalid(path, go_string_map(labels), f"must be '{expected}'")]
    return []


def _generated_selector(job: dict[str, Any]) -> list[FieldError]:
    spec = job.get("spec") or {}
    if spec.get("manualSelector") or spec.get("selector") is None:
        return []
    meta = job["metadata"]
    errors: list[FieldError] = []
    if not meta.get("uid"):
        errors.append(FieldError.required("metadata.uid"))
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    uid, name = meta.get("uid", ""), meta.get("name", "")
    for key, expected in (
        (LEGACY_CONTROLLER_UID, uid),
        (LEGACY_JOB_NAME, name),
        (CONTROLLER_UID, uid),
        (JOB_NAME, name),
    ):
        errors += _has_label(labels, key, expected)
    generated = {
        CONTROLLER_UID: uid,
        JOB_NAME: name,
        LEGACY_CONTROLLER_UID: uid,
        LEGACY_JOB_NAME: name,
    }
    selector = LabelSelector.from_label_selector(spec["selector"])
    if not selector.matches(generated):
        errors.append(
            FieldError.invalid(
                "spec.selector",
                go_label_selector(spec["selector"]),
                "`selector` not auto-generated",
            )
        )
    return errors


def _spec(spec: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ):
        errors += nonnegative(spec.get(key), f"spec.{key}")
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errors.append(
            FieldError.required("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified")
        )
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errors.append(
            FieldError.not_supported("spec.completionMode", mode, ["NonIndexed", "Indexed"])
        )
    if mode == "Indexed" and spec.get("completions") is None:
        errors.append(FieldError.required("spec.completions", "when completion mode is Indexed"))
    if mode in (None, "NonIndexed"):
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                errors.append(
                    FieldError.invalid(
                        f"spec.{key}", spec[key], "requires indexed completion mode"
                    )
                )
    replacement = spec.get("podReplacementPolicy")
    supported = ["Failed", "TerminatingOrFailed"]
    if replacement is not None:
        if spec.get("podFailurePolicy"):
            supported = ["Failed"]  # the only policy a pod failure policy allows
        if replacement not in supported:
            errors.append(
                FieldError.not_supported("spec.podReplacementPolicy", replacement, supported)
            )
    template = spec.get("template") or {}
    errors += pod_template(template, "spec.template")
    restart = (template.get("spec") or {}).get("restartPolicy") or ""
    path = "spec.template.spec.restartPolicy"
    if restart in ("Always", ""):
        # The pod spec defaulting turns a missing restartPolicy into Always.
        errors.append(FieldError.required(path, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        errors.append(FieldError.not_supported(path, restart, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") and restart != "Never":
        errors.append(
            FieldError.invalid(
                path, restart, 'only "Never" is supported when podFailurePolicy is specified'
            )
        )
    return errors


def _spec_and_selector(spec: dict[str, Any]) -> list[FieldError]:
    """``ValidateJobSpec``."""
    errors = _spec(spec)
    selector = spec.get("selector")
    if selector is None:
        errors.append(FieldError.required("spec.selector"))
        return errors
    errors += label_selector(selector, "spec.selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not LabelSelector.from_label_selector(selector).matches(labels):
        errors.append(
            FieldError.invalid(
                "spec.template.metadata.labels",
                go_string_map(labels),
                "`selector` does not match template `labels`",
            )
        )
    return errors


def validate_job(job: dict[str, Any]) -> list[FieldError]:
    errors = object_meta(job["metadata"], namespaced=True, name_rule=name_is_dns_subdomain)
    errors += _generated_selector(job)
    errors += _spec_and_selector(job.get("spec") or {})
    return errors


def validate_job_update(job: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """The Job strategy's ValidateUpdate: ``ValidateJob``, then ``ValidateJobUpdate``."""
    errors = validate_job(job)
    errors += object_meta_update(job["metadata"], old["metadata"])
    spec, old_spec = job.get("spec") or {}, old.get("spec") or {}
    errors += _spec_and_selector(spec)
    immutable = {
        "completions": spec.get("completions"),
        "selector": go_label_selector(spec.get("selector")),
        "template": GoLiteral("core.PodTemplateSpec{...}"),
        "completionMode": spec.get("completionMode"),
        "podFailurePolicy": GoLiteral("batch.PodFailurePolicy{...}"),
        "backoffLimitPerIndex": spec.get("backoffLimitPerIndex"),
        "managedBy": spec.get("managedBy"),
        "successPolicy": GoLiteral("batch.SuccessPolicy{...}"),
    }
    for key, rendered in immutable.items():
        if spec.get(key) != old_spec.get(key):
            errors.append(FieldError.invalid(f"spec.{key}", rendered, "field is immutable"))
    return errors
