"""The conversion webhook's certificate: issued, kept, renewed and delivered to every unit."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ops
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ops import testing

import charm
import webhook_cert
import webhook_tls
import workload
from charm import LocustOperatorCharm
from reconciler.runtime.webhook import ConversionWebhook
from fakekube.server import FakeKube
from fakekube.sandbox import free_port
from tests.unit.charm.conftest import (
    APP,
    CRD,
    DNS_NAMES,
    MODEL,
    TLS,
    cert_dir,
    certificate_mounts,
    container,
    default_env,
    pushed_files,
    running_container,
    state,
    tls_secret,
    webhook_secret,
)
from webhook_tls import WebhookTLS

NOW = datetime.now(timezone.utc)


def issued(ago: timedelta) -> WebhookTLS:
    """Certificates as the leader issued them `ago`."""
    return webhook_tls.ensure(None, DNS_NAMES, NOW - ago)


def certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def bundle(tls: WebhookTLS) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(tls.ca_bundle.encode())


@pytest.fixture
def advance_clock(monkeypatch: pytest.MonkeyPatch):
    """Moves the charm's clock forward, for the hooks that run a year or ten later."""

    def advance(by: timedelta) -> None:
        class Later(datetime):
            @classmethod
            def now(cls, tz=None):
                return datetime.now(tz) + by

        monkeypatch.setattr(webhook_cert, "datetime", Later)

    return advance


def restarted(ctx: testing.Context) -> bool:
    return any("Restarting the reconciler" in line.message for line in ctx.juju_log)


# --- The certificates ---------------------------------------------------------------------------


def test_the_serving_certificate_names_the_applications_service_and_chains_to_the_ca():
    served, ca = certificate(TLS.cert), certificate(TLS.ca_cert)

    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        f"{APP}.{MODEL}.svc",
        f"{APP}.{MODEL}.svc.cluster.local",
    ]
    served.verify_directly_issued_by(ca)
    usage = served.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    assert not served.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert bundle(TLS) == [ca]


def test_the_key_matches_the_serving_certificate():
    key = serialization.load_pem_private_key(TLS.key.encode(), password=None)

    assert key.public_key() == certificate(TLS.cert).public_key()


def test_certificates_live_a_year_and_the_ca_ten():
    served, ca = certificate(TLS.cert), certificate(TLS.ca_cert)

    minute = timedelta(minutes=1)
    assert served.not_valid_after_utc - NOW == pytest.approx(timedelta(days=365), abs=minute)
    assert ca.not_valid_after_utc - NOW == pytest.approx(timedelta(days=3650), abs=minute)


def test_a_good_certificate_is_kept():
    assert webhook_tls.ensure(TLS, DNS_NAMES, NOW) is TLS
    assert webhook_tls.ensure(TLS, DNS_NAMES, NOW + timedelta(days=334)) is TLS


def test_the_serving_certificate_is_renewed_thirty_days_before_expiry_with_the_same_ca():
    renewed = webhook_tls.ensure(TLS, DNS_NAMES, NOW + timedelta(days=336))

    assert renewed.cert != TLS.cert and renewed.key != TLS.key
    assert (renewed.ca_cert, renewed.ca_key, renewed.ca_bundle) == (
        TLS.ca_cert,
        TLS.ca_key,
        TLS.ca_bundle,
    )
    certificate(renewed.cert).verify_directly_issued_by(certificate(TLS.ca_cert))


def test_a_certificate_for_other_names_is_replaced():
    renamed = webhook_tls.ensure(TLS, webhook_tls.service_dns_names("other", MODEL), NOW)

    sans = certificate(renamed.cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sans.value.get_values_for_type(x509.DNSName)[0] == f"other.{MODEL}.svc"
    assert renamed.ca_cert == TLS.ca_cert


def test_a_new_ca_keeps_the_outgoing_one_trusted_until_it_expires():
    # Ten days before the CA expires: units may still serve a certificate it signed.
    old = issued(ago=timedelta(days=3640))

    renewed = webhook_tls.ensure(old, DNS_NAMES, NOW)

    assert renewed.ca_cert != old.ca_cert
    assert bundle(renewed) == [certificate(renewed.ca_cert), certificate(old.ca_cert)]
    certificate(renewed.cert).verify_directly_issued_by(certificate(renewed.ca_cert))
    # Once the outgoing CA has expired, the next renewal drops it.
    later = webhook_tls.ensure(renewed, DNS_NAMES, NOW + timedelta(days=3630))
    assert certificate(old.ca_cert) not in bundle(later)


def test_a_serving_certificate_never_outlives_its_ca():
    old = issued(ago=timedelta(days=3600))  # the CA has 50 days left

    renewed = webhook_tls.ensure(old, DNS_NAMES, NOW)

    assert (
        certificate(renewed.cert).not_valid_after_utc
        == certificate(old.ca_cert).not_valid_after_utc
    )


def test_the_secret_content_reads_back_and_hides_the_keys_from_repr():
    content = TLS.to_secret()

    assert set(content) == {"ca-cert", "ca-key", "cert", "key", "ca-bundle"}
    assert WebhookTLS.from_secret(content) == TLS
    assert "PRIVATE KEY" not in repr(TLS)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda content: content.pop("key"), "no 'key' key"),
        (
            lambda content: content.update(cert="not a certificate"),
            "cert is not a PEM certificate",
        ),
        (
            lambda content: content.update(**{"ca-key": TLS.cert}),
            "ca-key is not a PEM private key",
        ),
    ],
)
def test_damaged_secret_content_is_refused(damage, message: str):
    content = TLS.to_secret()
    damage(content)

    with pytest.raises(ValueError, match=message):
        WebhookTLS.from_secret(content)


# --- Issued once by the leader, kept in an application secret ----------------------------------


def test_the_leader_issues_the_certificate_into_an_application_secret(
    ctx: testing.Context, kube: FakeKube
):
    out = ctx.run(ctx.on.leader_elected(), state(leader=True, tls=None))

    secret = webhook_secret(out)
    assert secret.owner == "app"
    tls = WebhookTLS.from_secret(secret.latest_content)
    assert webhook_tls.ensure(tls, DNS_NAMES, NOW) is tls  # complete and current
    ca_bundle = kube.get(*CRD)["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
    assert base64.b64decode(ca_bundle).decode() == tls.ca_bundle


def test_the_next_hook_reuses_the_secret(ctx: testing.Context, kube: FakeKube):
    first = ctx.run(ctx.on.leader_elected(), state(leader=True, tls=None))

    out = ctx.run(ctx.on.config_changed(), first)

    assert [s.id for s in out.secrets] == [s.id for s in first.secrets]
    assert webhook_secret(out).latest_content == webhook_secret(first).latest_content


def test_a_non_leader_never_issues_and_waits_for_the_leader(ctx: testing.Context):
    out = ctx.run(ctx.on.config_changed(), state(tls=None))

    assert out.secrets == frozenset()
    assert out.get_container(workload.CONTAINER).layers == {}
    assert out.unit_status == testing.WaitingStatus("waiting for the leader's webhook certificate")


def test_a_damaged_secret_is_replaced_by_the_leader(ctx: testing.Context, kube: FakeKube):
    damaged = dataclasses.replace(TLS, cert="not a certificate")

    out = ctx.run(ctx.on.config_changed(), state(leader=True, tls=damaged))

    replaced = WebhookTLS.from_secret(webhook_secret(out).latest_content)
    assert replaced.ca_cert != TLS.ca_cert
    assert pushed_files(ctx)["tls.crt"] == replaced.cert
    assert any("unusable: " in line.message for line in ctx.juju_log)


# --- Pushed to the workload ---------------------------------------------------------------------


def test_the_certificate_and_key_are_pushed_before_the_service_starts(ctx: testing.Context):
    ready = container()

    out = ctx.run(ctx.on.pebble_ready(ready), state(containers={ready}))

    assert pushed_files(ctx) == {"tls.crt": TLS.cert, "tls.key": TLS.key}
    assert stat.S_IMODE((cert_dir(ctx) / "tls.key").stat().st_mode) == 0o600
    env = out.get_container(workload.CONTAINER).plan.services[workload.SERVICE].environment
    assert env["WEBHOOK_CERT_DIR"] == "/etc/locust-operator/webhook"
    assert (env["ENABLE_WEBHOOKS"], env["WEBHOOK_PORT"]) == ("true", "9443")
    assert not restarted(ctx)  # the first plan starts it with the files in place


def test_a_non_leader_pushes_the_leaders_certificate(ctx: testing.Context, kube: FakeKube):
    leader = ctx.run(ctx.on.leader_elected(), state(leader=True, tls=None))
    issued_by_leader = WebhookTLS.from_secret(webhook_secret(leader).latest_content)

    with testing.Context(LocustOperatorCharm, app_name=APP) as other_unit:
        other_unit.run(other_unit.on.config_changed(), dataclasses.replace(leader, leader=False))

        assert pushed_files(other_unit) == {
            "tls.crt": issued_by_leader.cert,
            "tls.key": issued_by_leader.key,
        }


def test_an_unchanged_certificate_restarts_nothing(ctx: testing.Context, tmp_path: Path):
    running = running_container(default_env(), mounts=certificate_mounts(tmp_path / "certs"))

    ctx.run(ctx.on.update_status(), state(containers={running}))

    assert not restarted(ctx)


def test_update_status_loads_a_renewed_certificate_on_a_standby(
    ctx: testing.Context, tmp_path: Path
):
    # Juju tells a secret's observers of a new revision, never its owner's units (secret-changed
    # does not fire): update-status is when a standby notices.
    renewed = webhook_tls.ensure(TLS, DNS_NAMES, NOW + timedelta(days=340))
    secret = tls_secret(TLS, latest_content=renewed.to_secret())
    running = running_container(default_env(), mounts=certificate_mounts(tmp_path / "certs"))

    out = ctx.run(ctx.on.update_status(), state(tls=None, secrets={secret}, containers={running}))

    assert pushed_files(ctx) == {"tls.crt": renewed.cert, "tls.key": renewed.key}
    assert restarted(ctx)
    assert out.get_container(workload.CONTAINER).plan == running.plan


def test_a_stopped_service_is_not_started_by_a_new_certificate(ctx: testing.Context):
    stopped = running_container(default_env(), running=False)

    out = ctx.run(ctx.on.update_status(), state(containers={stopped}))

    assert pushed_files(ctx)["tls.crt"] == TLS.cert
    service = out.get_container(workload.CONTAINER).service_statuses[workload.SERVICE]
    assert service == ops.pebble.ServiceStatus.INACTIVE


def test_invalid_config_still_gets_a_new_certificate_to_the_running_service(
    ctx: testing.Context,
):
    running = running_container(default_env())

    out = ctx.run(
        ctx.on.config_changed(), state(config={"log-level": "chatty"}, containers={running})
    )

    assert pushed_files(ctx)["tls.crt"] == TLS.cert
    assert restarted(ctx)
    assert out.get_container(workload.CONTAINER).plan == running.plan  # the last good env


# --- The apiserver's view ------------------------------------------------------------------------


@contextmanager
def reconciler_webhook(cert_dir: Path) -> Iterator[int]:
    """The reconciler's own conversion webhook, serving from `cert_dir` on a loopback port, in a
    thread (the fake API server blocks its loop while it calls a webhook)."""
    port = free_port()
    webhook = ConversionWebhook(cert_dir, port, host="127.0.0.1")
    loop = asyncio.new_event_loop()
    task = loop.create_task(webhook.run())
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not webhook.serving:
            assert time.monotonic() < deadline, "the webhook did not start"
            time.sleep(0.01)
        yield port
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(5)
        loop.close()


def test_the_apiserver_converts_through_the_charms_certificate_and_service(
    ctx: testing.Context, kube: FakeKube, tmp_path: Path
):
    # The leader issues the certificate, pushes it and writes the CRD; the reconciler serves
    # /convert with the pushed files; the API server verifies them against the CRD's caBundle
    # for <app>.<model>.svc, reached through the Service the CRD names.
    ctx.run(ctx.on.config_changed(), state(leader=True, tls=None))
    served_from = shutil.copytree(cert_dir(ctx), tmp_path / "pushed")
    called = []

    def route(namespace: str, name: str, port: int) -> tuple[str, int]:
        called.append((namespace, name, port))
        return "127.0.0.1", webhook_port

    kube.service_resolver = route
    with reconciler_webhook(served_from) as webhook_port:
        kube.create(
            {
                "apiVersion": "locust.io/v1",
                "kind": "LocustTest",
                "metadata": {"name": "legacy.test", "namespace": MODEL},
                "spec": {
                    "image": "locustio/locust:2.31.0",
                    "masterCommandSeed": "--locustfile /lotest/src/demo.py",
                    "workerCommandSeed": "--locustfile /lotest/src/demo.py",
                    "workerReplicas": 4,
                },
            }
        )
        as_v2 = kube.get("locust.io/v2", "LocustTest", "legacy.test", MODEL)
        as_v1 = kube.get("locust.io/v1", "LocustTest", "legacy.test", MODEL)

    assert as_v2["spec"]["worker"] == {
        "command": "--locustfile /lotest/src/demo.py",
        "replicas": 4,
    }
    assert as_v1["spec"]["workerReplicas"] == 4
    assert set(called) == {(MODEL, APP, 9443)}


# --- Renewal by the leader ----------------------------------------------------------------------


def test_update_status_renews_a_certificate_near_expiry(
    ctx: testing.Context, kube: FakeKube, tmp_path: Path, advance_clock
):
    running = running_container(default_env(), mounts=certificate_mounts(tmp_path / "certs"))
    installed = ctx.run(ctx.on.config_changed(), state(leader=True, containers={running}))
    kube.clear_requests()
    advance_clock(timedelta(days=340))  # 25 days before the serving certificate expires

    out = ctx.run(ctx.on.update_status(), installed)

    renewed = WebhookTLS.from_secret(webhook_secret(out).latest_content)
    assert renewed.cert != TLS.cert and renewed.ca_cert == TLS.ca_cert
    assert certificate(renewed.cert).not_valid_after_utc > NOW + timedelta(days=700)
    assert pushed_files(ctx) == {"tls.crt": renewed.cert, "tls.key": renewed.key}
    assert restarted(ctx)
    assert kube.requests == []  # same CA: the CRD's bundle is still right


def test_update_status_puts_a_new_ca_into_the_crd(
    ctx: testing.Context, kube: FakeKube, advance_clock
):
    installed = ctx.run(ctx.on.config_changed(), state(leader=True))
    advance_clock(timedelta(days=3640))  # 10 days before the CA expires

    out = ctx.run(ctx.on.update_status(), installed)

    renewed = WebhookTLS.from_secret(webhook_secret(out).latest_content)
    ca_bundle = kube.get(*CRD)["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
    # The outgoing CA stays trusted until units serving its certificate have caught up.
    assert base64.b64decode(ca_bundle).decode() == renewed.ca_cert + TLS.ca_cert
    assert out.unit_status == testing.ActiveStatus()


def test_key_material_never_reaches_logs_or_status(
    ctx: testing.Context, kube: FakeKube, advance_clock
):
    installed = ctx.run(ctx.on.leader_elected(), state(leader=True, tls=None))
    advance_clock(timedelta(days=3640))  # renews both the CA and the serving certificate
    out = ctx.run(ctx.on.update_status(), installed)

    shown = [line.message for line in ctx.juju_log] + [out.unit_status.message]
    keys = [
        key
        for secret in (webhook_secret(installed), webhook_secret(out))
        for key in (secret.latest_content["key"], secret.latest_content["ca-key"])
    ]
    assert not any("PRIVATE KEY" in text for text in shown)
    assert not any(key.splitlines()[1] in text for key in keys for text in shown)
