#!/usr/bin/env python3
"""Charm for the Locust operator: runs the LocustTest reconciler under Pebble.

The leader installs the LocustTest CRD and the reconciler's RBAC; every unit runs a reconciler,
and a Kubernetes Lease named after the application lets one of them work at a time. Every unit also
serves the CRD's conversion webhook, with a certificate the leader issues and keeps in a Juju
secret. COS gets the reconciler's metrics and alert rules (metrics-endpoint), a dashboard
(grafana-dashboard) and its logs (logging); other charms get load tests run (load-test). The
status is computed only in collect-status; the only status written elsewhere is a transient
Maintenance.
"""

from __future__ import annotations

import functools
import hashlib
import logging

import ops

import actions
import charm_config
import charm_status
import cluster_objects
import kube
import peers
import webhook_cert
import workload
from charm_config import CharmConfig, InvalidConfigError, WorkloadConfig
from grafana_dashboard import GrafanaDashboard
from load_test_relation import LoadTestRelation
from log_forwarding import LogForwarding
from metrics_endpoint import MetricsEndpoint
from webhook_tls import WebhookTLS

logger = logging.getLogger(__name__)

# The application secret that keeps the conversion webhook's CA and serving certificate.
WEBHOOK_TLS_LABEL = webhook_cert.LABEL


class LocustOperatorCharm(ops.CharmBase):
    """Runs the reconciler; the leader also owns the CRD and RBAC."""

    # The outcome of the leader's last attempt at the cluster objects: collect-status runs in
    # every hook (actions too), long after the attempt, so it needs to be remembered. So is the
    # CA bundle last written into the CRD, to rewrite it only when the CA changes.
    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._stored.set_default(
            cluster_problem="",
            cluster_problem_blocking=True,
            applied_ca_bundle_id="",
            stop_reason="",
            stopped_reconciler=False,
        )
        self.container = self.unit.get_container(workload.CONTAINER)
        self._metrics_endpoint = MetricsEndpoint(self)
        self._grafana_dashboard = GrafanaDashboard(self)
        self._log_forwarding = LogForwarding(self, self.container)
        self._load_tests = LoadTestRelation(self, self.container)
        framework.observe(self.on[workload.CONTAINER].pebble_ready, self._on_pebble_ready)
        # A failing or recovering check is shown at once, not at the next update-status.
        framework.observe(self.on[workload.CONTAINER].pebble_check_failed, self._on_check)
        framework.observe(self.on[workload.CONTAINER].pebble_check_recovered, self._on_check)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.secret_changed, self._on_secret_changed)
        framework.observe(self.on.upgrade_charm, self._on_upgrade_charm)
        framework.observe(self.on.leader_elected, self._on_leader_elected)
        framework.observe(self.on.update_status, self._on_update_status)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on["list-tests"].action, self._on_list_tests)
        framework.observe(self.on["describe-test"].action, self._on_describe_test)
        framework.observe(self.on["run-test"].action, self._on_run_test)
        framework.observe(self.on["stop-test"].action, self._on_stop_test)
        framework.observe(self.on["test-results"].action, self._on_test_results)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(self.on.collect_app_status, self._on_collect_app_status)

    # --- Hooks, in observe order ------------------------------------------------------------

    def _on_pebble_ready(self, event: ops.PebbleReadyEvent) -> None:
        self._update_workload()
        version = workload.version(self.container)
        if version:
            self.unit.set_workload_version(version)

    def _on_check(self, event: ops.PebbleCheckEvent) -> None:
        # Pebble restarts the service itself; collect-status, which follows, shows the check.
        what = "failed" if isinstance(event, ops.PebbleCheckFailedEvent) else "recovered"
        logger.info("Check %s %s", event.info.name, what)

    def _on_config_changed(self, event: ops.ConfigChangedEvent) -> None:
        self._apply_cluster_objects()
        self._update_workload()

    def _on_secret_changed(self, event: ops.SecretChangedEvent) -> None:
        # The Kafka credentials got a new revision. (Juju never tells the owner's units of a
        # new revision of the webhook certificate: update-status picks that up.)
        self._update_workload()

    def _on_upgrade_charm(self, event: ops.UpgradeCharmEvent) -> None:
        # A new charm may ship a new CRD schema or new RBAC rules.
        self._apply_cluster_objects()
        self._update_workload()

    def _on_leader_elected(self, event: ops.LeaderElectedEvent) -> None:
        self._apply_cluster_objects()

    def _on_update_status(self, event: ops.UpdateStatusEvent) -> None:
        # Retry a failed apply: `juju trust` or removing a foreign CRD may fire no hook of ours.
        # A new CA (the leader renews the certificate when due, see _webhook_tls) goes to the CRD.
        if self.unit.is_leader() and (
            self._stored.cluster_problem or self._stored.applied_ca_bundle_id != self._ca_bundle_id
        ):
            self._apply_cluster_objects()
        # secret-changed reaches a secret's observers, not its owner's units: this is how every
        # unit loads a renewed certificate.
        self._update_workload()

    def _on_remove(self, event: ops.RemoveEvent) -> None:
        # `remove` also fires on scale-down, and Juju cannot say which: the RBAC goes only with
        # the last unit, and the CRD never (deleting it would delete every user's tests).
        if not self.unit.is_leader() or self.app.planned_units() > 0:
            return
        try:
            client = kube.client(self.app.name)
            cluster_objects.release_crd(client, self.app.name, self.model.name)
            cluster_objects.delete_rbac(client, self.app.name, self.model.name)
        except kube.ClusterError as error:
            logger.warning("Could not release the CRD or delete the RBAC: %s", error.message)

    def _on_list_tests(self, event: ops.ActionEvent) -> None:
        actions.handle_list_tests(event, self.app.name)

    def _on_describe_test(self, event: ops.ActionEvent) -> None:
        loaded = self._workload_config
        if isinstance(loaded, InvalidConfigError):
            # The arguments depend on no option: show what the defaults give.
            loaded = charm_config.load(CharmConfig(), app=self.app.name, namespace=self.model.name)
        actions.handle_describe_test(event, self.app.name, loaded.operator)

    def _on_run_test(self, event: ops.ActionEvent) -> None:
        image = str(self.config.get(charm_config.LOCUST_IMAGE_OPTION) or "")
        actions.handle_run_test(event, self.app.name, self.model.name, image)

    def _on_stop_test(self, event: ops.ActionEvent) -> None:
        actions.handle_stop_test(event, self.app.name, self.model.name)

    def _on_test_results(self, event: ops.ActionEvent) -> None:
        actions.handle_test_results(event, self.app.name, self.model.name)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        for status in charm_status.unit_statuses(self._status_facts):
            event.add_status(status)

    def _on_collect_app_status(self, event: ops.CollectStatusEvent) -> None:
        for status in charm_status.app_statuses(self._status_facts):
            event.add_status(status)

    # --- Helpers ------------------------------------------------------------------------------

    @functools.cached_property
    def _workload_config(self) -> WorkloadConfig | InvalidConfigError:
        """The validated configuration, or why it is invalid (read once per hook)."""
        try:
            return charm_config.load(
                self.load_config(CharmConfig),
                app=self.app.name,
                namespace=self.model.name,
                read_credentials=self._kafka_credentials,
            )
        except InvalidConfigError as error:
            return error

    def _kafka_credentials(self, secret: ops.Secret) -> dict[str, str]:
        """The secret's content (latest revision), or InvalidConfigError saying how to fix it."""
        try:
            return secret.get_content(refresh=True)
        except ops.SecretNotFoundError:
            detail = "not found"
        except ops.ModelError as error:  # Juju answers "permission denied" if not granted
            detail = str(error).strip().removeprefix("ERROR ")
        fix = f"run: juju grant-secret {secret.id} {self.app.name}"
        problem = f"kafka-credentials: cannot read the secret ({detail}); {fix}"
        raise InvalidConfigError({charm_config.SECRET_OPTION: problem})

    @functools.cached_property
    def _status_facts(self) -> charm_status.Facts:
        loaded, leader = self._workload_config, self.unit.is_leader()
        state = workload.state(self.container)
        return charm_status.Facts(
            leader=leader,
            config_problem=loaded.status_message()
            if isinstance(loaded, InvalidConfigError)
            else "",
            cluster_problem=self._stored.cluster_problem,
            cluster_problem_blocking=self._stored.cluster_problem_blocking,
            stop_reason=self._stop_reason,
            waiting_for_certificate=not leader and self._webhook_tls is None,
            workload=state,
            check_failures=workload.check_failures(self.container, state),
            planned_units=self.app.planned_units() if leader else 1,
            load_test_note=self._load_tests.note,
        )

    @functools.cached_property
    def _webhook_tls(self) -> WebhookTLS | None:
        """The conversion webhook's CA and serving certificate, read once per hook.

        The leader first creates them, or renews them when due; another unit gets None until the
        leader has created them.
        """
        return webhook_cert.load(self.model)

    @property
    def _ca_bundle_id(self) -> str:
        """A short fingerprint of the CA bundle, to notice a new one ("" without certificate)."""
        tls = self._webhook_tls
        return hashlib.sha256(tls.ca_bundle.encode()).hexdigest() if tls else ""

    def _update_workload(self) -> None:
        """Give the reconciler the webhook certificate, and run it with the current config.

        An invalid config keeps the running service and its last good environment as they are;
        a new certificate still reaches it, with a restart.
        """
        self.unit.set_ports(charm_config.METRICS_PORT, charm_config.WEBHOOK_PORT)
        if not self.container.can_connect():
            logger.info("Reconciler container not up yet; pebble-ready will follow")
            return
        if self._stop_reason:
            workload.stop(self.container)
            self._stored.stopped_reconciler = True
            return
        tls = self._webhook_tls
        if tls is None:
            logger.info("Waiting for the leader to issue the webhook certificate")
            return
        loaded = self._workload_config
        try:
            pushed = workload.push_certificate(self.container, tls.cert, tls.key)
            if isinstance(loaded, InvalidConfigError):
                logger.warning("Not updating the reconciler: %s", loaded)
                replanned = False
            else:
                replanned = workload.apply_layer(self.container, workload.layer(loaded.env))
            if pushed and not replanned:  # a replan restarts the service anyway
                workload.restart_if_running(self.container)
            if self._stored.stopped_reconciler and not isinstance(loaded, InvalidConfigError):
                workload.start(self.container)  # stopped for a reason that has gone
                self._stored.stopped_reconciler = False
        except ops.pebble.ChangeError as error:
            logger.error("The reconciler service failed to start: %s", error.err)
        except ops.pebble.ConnectionError as error:
            logger.info("Lost the reconciler container: %s", error)
            return
        self._log_forwarding.update()

    def _apply_cluster_objects(self) -> None:
        """Leader only: apply the CRD and RBAC, and remember how it went for collect-status."""
        if not self.unit.is_leader():
            return
        self.unit.status = ops.MaintenanceStatus("applying the CRD and RBAC")
        tls = self._webhook_tls
        assert tls is not None  # the leader always has one
        loaded = self._workload_config
        watched = (
            () if isinstance(loaded, InvalidConfigError) else loaded.operator.watch_namespaces
        )
        self._stored.stop_reason = ""
        try:
            client = kube.client(self.app.name)
            cluster_objects.apply_cluster_objects(
                client, self.app.name, self.model.name, tls.ca_bundle, watched
            )
        except kube.ClusterError as error:
            self._stored.cluster_problem = error.message
            self._stored.cluster_problem_blocking = error.blocking
            if isinstance(error, cluster_objects.CrdOwnedElsewhere):
                self._stored.stop_reason = error.message
        else:
            self._stored.cluster_problem = ""
            self._stored.applied_ca_bundle_id = self._ca_bundle_id
        peers.set_stop_reason(self.model, self._stored.stop_reason)

    @property
    def _stop_reason(self) -> str:
        """Why this unit's reconciler must not run: another deployment owns the CRD."""
        return self._stored.stop_reason if self.unit.is_leader() else peers.stop_reason(self.model)


if __name__ == "__main__":  # pragma: nocover
    ops.main(LocustOperatorCharm)
