"""The `locust-operator` command line: render, crd, version, and how it refuses bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import __version__
from reconciler.cli import main
from reconciler.crds import ConversionWebhook, crd_manifest

UPSTREAM = Path(__file__).parent.parent / "data" / "upstream"
SAMPLE = UPSTREAM / "locust-test-cr.yaml"
CONSOLE_SCRIPT = Path(sys.executable).parent / "locust-operator"
# Prefixes of every variable OperatorConfig reads, so the caller's environment cannot leak in.
SETTING_PREFIXES = (
    "POD_", "METRICS_", "JOB_TTL", "ENABLE_", "KAFKA_", "LOG_LEVEL", "WATCH_NAMESPACES",
    "HEALTH_PORT", "MAX_CONCURRENT", "LEADER_ELECTION", "LEASE_",
)  # fmt: skip
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TEST = """\
apiVersion: locust.io/v1
kind: LocustTest
metadata:
  name: {name}
spec:
  image: locustio/locust:2.31.0
  masterCommandSeed: -f /lotest/src/demo.py
  workerCommandSeed: -f /lotest/src/demo.py
  workerReplicas: {replicas}
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def render(capsys: pytest.CaptureFixture[str], file: Path | str) -> list[dict[str, Any]]:
    assert main(["render", str(file)]) == 0
    out = capsys.readouterr().out
    return list(yaml.safe_load_all(out))


def test_render_prints_the_service_and_both_jobs_without_owner_references(capsys):
    documents = render(capsys, SAMPLE)

    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Service", "demo-test-master"),
        ("Job", "demo-test-master"),
        ("Job", "demo-test-worker"),
    ]
    assert all("ownerReferences" not in d["metadata"] for d in documents)
    worker_args = documents[2]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert worker_args == [
        "--locustfile",
        "/lotest/src/locust_project_demo.py",
        "--worker",
        "--master-port=5557",
        "--master-host=demo-test-master",
    ]


def test_render_reads_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", SAMPLE.open())

    assert len(render(capsys, "-")) == 3


def test_render_renders_every_test_in_a_multi_document_file(capsys, tmp_path):
    file = write(
        tmp_path,
        TEST.format(name="first", replicas=1) + "---\n" + TEST.format(name="second", replicas=4),
    )

    documents = render(capsys, file)

    assert [d["metadata"]["name"] for d in documents] == [
        "first-master", "first-master", "first-worker",
        "second-master", "second-master", "second-worker",
    ]  # fmt: skip
    assert documents[5]["spec"]["parallelism"] == 4


def test_render_puts_a_test_without_namespace_in_default(capsys, tmp_path):
    documents = render(capsys, write(tmp_path, TEST.format(name="demo", replicas=1)))

    assert {d["metadata"]["namespace"] for d in documents} == {"default"}


def test_render_keeps_the_tests_namespace(capsys):
    documents = render(capsys, UPSTREAM / "v1-cr.yaml")

    assert {d["metadata"]["namespace"] for d in documents} == {"default"}
    assert documents[1]["spec"]["template"]["metadata"]["labels"]["app"] == "locust-master"


def test_render_applies_the_operator_settings_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("JOB_TTL_SECONDS_AFTER_FINISHED", "120")
    monkeypatch.setenv("POD_CPU_LIMIT", "")

    _, master, worker = render(capsys, SAMPLE)

    for job in (master, worker):
        assert job["spec"]["ttlSecondsAfterFinished"] == 120
        limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert "cpu" not in limits


INVALID_FILES = {
    "missing field": (
        TEST.format(name="demo", replicas=1).replace("  image:", "  foo:"),
        "spec.image",
    ),
    "wrong type": (TEST.format(name="demo", replicas='"three"'), "spec.workerReplicas"),
    "too many workers": (TEST.format(name="demo", replicas=501), "spec.workerReplicas"),
    "no workers": (TEST.format(name="demo", replicas=0), "spec.workerReplicas"),
    "bad enum": (
        TEST.format(name="demo", replicas=1) + "  imagePullPolicy: Sometimes\n",
        "spec.imagePullPolicy",
    ),
    "bad name": (TEST.format(name="Demo", replicas=1), "metadata.name"),
    "second document invalid": (
        TEST.format(name="ok", replicas=1) + "---\n" + TEST.format(name="bad", replicas=0),
        "(document 2): spec.workerReplicas",
    ),
    "not yaml": ("spec: [unclosed\n  image: x: y\n", "not valid YAML"),
    "empty file": ("", "no LocustTest found"),
    "not a mapping": ("- a\n- list\n", "expected a YAML mapping"),
}


@pytest.mark.parametrize("case", list(INVALID_FILES))
def test_render_rejects_an_invalid_file_with_one_line_naming_the_problem(case, capsys, tmp_path):
    text, named = INVALID_FILES[case]
    file = write(tmp_path, text)

    assert main(["render", str(file)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"locust-operator: {file}")
    assert named in captured.err


@pytest.mark.parametrize(
    ("content", "named"),
    [(None, "No such file or directory"), (b"\xff\xfe\x00", "not UTF-8")],
    ids=["missing", "binary"],
)
def test_render_rejects_an_unreadable_file_with_one_line(content, named, capsys, tmp_path):
    file = tmp_path / "test.yaml"
    if content is not None:
        file.write_bytes(content)

    assert main(["render", str(file)]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(file) in err and named in err


def test_render_rejects_invalid_settings_naming_the_variable_and_value(capsys, monkeypatch):
    monkeypatch.setenv("JOB_TTL_SECONDS_AFTER_FINISHED", "soon")
    monkeypatch.setenv("POD_CPU_LIMIT", "lots")

    assert main(["render", str(SAMPLE)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert 'JOB_TTL_SECONDS_AFTER_FINISHED="soon"' in captured.err
    assert 'POD_CPU_LIMIT="lots"' in captured.err
    assert "Traceback" not in captured.err


def test_run_refuses_invalid_settings_before_touching_the_cluster(capsys, monkeypatch):
    started = []
    runtime = types.ModuleType("reconciler.runtime")
    runtime.run = started.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reconciler.runtime", runtime)
    monkeypatch.setenv("ENABLE_AFFINITY_CR_INJECTION", "maybe")

    assert main(["run"]) == 2

    assert started == []
    assert 'ENABLE_AFFINITY_CR_INJECTION="maybe"' in capsys.readouterr().err


def test_crd_prints_the_crd_serving_only_v2_without_a_webhook(capsys):
    assert main(["crd"]) == 0

    crd = yaml.safe_load(capsys.readouterr().out)
    assert crd == crd_manifest()
    served = [(v["name"], v["served"]) for v in crd["spec"]["versions"]]
    assert served == [("v1", False), ("v2", True)]


def test_crd_prints_cel_rules_as_readable_blocks(capsys):
    assert main(["crd"]) == 0

    assert "- rule: |-\n" in capsys.readouterr().out


def test_crd_with_a_webhook_serves_v1_through_it(capsys, tmp_path):
    ca = write(tmp_path, CA_PEM, "ca.crt")

    code = main(["crd", "--webhook-service", "ops/locust-operator", "--ca-bundle", str(ca)])

    assert code == 0
    crd = yaml.safe_load(capsys.readouterr().out)
    webhook = ConversionWebhook("locust-operator", "ops", 443, CA_PEM.encode())
    assert crd == crd_manifest(webhook)
    assert {v["name"] for v in crd["spec"]["versions"] if v["served"]} == {"v1", "v2"}


def test_crd_takes_the_webhook_services_port(capsys, tmp_path):
    ca = write(tmp_path, CA_PEM, "ca.crt")

    main(["crd", "--webhook-service", "ops/op", "--webhook-port", "9443", "--ca-bundle", str(ca)])

    service = yaml.safe_load(capsys.readouterr().out)["spec"]["conversion"]["webhook"][
        "clientConfig"
    ]["service"]
    assert service == {"name": "op", "namespace": "ops", "port": 9443, "path": "/convert"}


BAD_CRD_OPTIONS = {
    "no namespace": (
        ["--webhook-service", "op"],
        '--webhook-service: expected NAMESPACE/NAME, got "op"',
    ),
    "bad name": (["--webhook-service", "ops/Op_1"], "--webhook-service: expected NAMESPACE/NAME"),
    "no CA": (["--webhook-service", "ops/op"], "--ca-bundle is required with --webhook-service"),
    "port out of range": (
        ["--webhook-service", "ops/op", "--webhook-port", "70000", "--ca-bundle", "{ca}"],
        '--webhook-port: expected a port from 1 to 65535, got "70000"',
    ),
    "port not a number": (
        ["--webhook-service", "ops/op", "--webhook-port", "https", "--ca-bundle", "{ca}"],
        '--webhook-port: expected a port from 1 to 65535, got "https"',
    ),
    "CA without service": (
        ["--ca-bundle", "{ca}"],
        "--webhook-port and --ca-bundle need --webhook-service",
    ),
    "missing CA file": (
        ["--webhook-service", "ops/op", "--ca-bundle", "{missing}"],
        "No such file or directory",
    ),
    "CA not PEM": (
        ["--webhook-service", "ops/op", "--ca-bundle", "{not_pem}"],
        "holds no PEM certificate",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CRD_OPTIONS))
def test_crd_rejects_bad_webhook_options_with_one_line(case, capsys, tmp_path):
    options, message = BAD_CRD_OPTIONS[case]
    files = {
        "ca": write(tmp_path, CA_PEM, "ca.crt"),
        "missing": tmp_path / "missing.crt",
        "not_pem": write(tmp_path, "not a certificate", "bad.crt"),
    }

    assert main(["crd", *(option.format(**files) for option in options)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("locust-operator: ")
    assert message in captured.err


def test_version_prints_the_package_version(capsys):
    assert main(["version"]) == 0

    assert capsys.readouterr().out == f"{__version__}\n"


def test_installed_console_script_renders_a_sample():
    assert CONSOLE_SCRIPT.exists(), "install the package: pip install -e ."

    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "render", str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "JOB_TTL_SECONDS_AFTER_FINISHED": "300"},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [(d["kind"], d["spec"].get("ttlSecondsAfterFinished")) for d in documents] == [
        ("Service", None),
        ("Job", 300),
        ("Job", 300),
    ]
