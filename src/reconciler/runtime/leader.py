"""Leader election over a coordination.k8s.io Lease, with client-go's rules.

Only the holder of the Lease reconciles; standbys keep trying to acquire it every retry period. A
standby judges the holder's lease expired by its own clock (how long since it last saw the record
change), never by comparing clocks across machines. A leader that cannot renew within the renew
deadline stops leading at once, since another replica may already have taken over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from ..config import LeaderElectionSettings
from .metrics import LEADER

log = logging.getLogger(__name__)


class LeadershipLost(Exception):
    """The Lease could not be renewed in time."""


def default_identity() -> str:
    # POD_NAME is unique per replica in Kubernetes; the hostname is the pod name too, but keep a
    # random suffix so two processes on one host never share an identity.
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LeaderElector:
    def __init__(
        self,
        client: AsyncClient,
        settings: LeaderElectionSettings,
        *,
        identity: str | None = None,
        on_api: Callable[[bool], None] = lambda ok: None,
    ):
        self._client = client
        self._settings = settings
        self.identity = identity or default_identity()
        self._on_api = on_api
        self._observed: tuple[str | None, object] | None = None
        self._observed_at = 0.0
        self._leader_gauge = LEADER.labels(settings.lease_name)
        self._leader_gauge.set(0)

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Wait for the Lease, then run `lead()` while renewing; LeadershipLost if renewal fails.

        Cancellation (shutdown) releases the Lease, so a standby takes over without waiting for
        expiry.
        """
        settings = self._settings
        log.info(
            "Waiting to acquire lease %s/%s as %s",
            settings.lease_namespace,
            settings.lease_name,
            self.identity,
        )
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(settings.retry_period_seconds)
        log.info(
            "Acquired lease %s/%s: this replica is now the leader",
            settings.lease_namespace,
            settings.lease_name,
        )
        self._leader_gauge.set(1)
        leading = asyncio.create_task(lead(), name="leading")
        renewing = asyncio.create_task(self._keep_renewing(), name="lease-renewal")
        try:
            done, _ = await asyncio.wait({leading, renewing}, return_when=asyncio.FIRST_COMPLETED)
            if renewing in done:
                leading.cancel()
                await asyncio.gather(leading, return_exceptions=True)
                renewing.result()
            else:
                renewing.cancel()
                leading.result()
        finally:
            # The leader drains (reconciles in flight, queued events) before the Lease goes, and
            # keeps renewing meanwhile: a drain may outlast the lease, and a standby that took
            # over before it ends would write beside this replica.
            leading.cancel()
            await asyncio.gather(leading, return_exceptions=True)
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            self._leader_gauge.set(0)
            await self._release()

    async def _keep_renewing(self) -> None:
        settings = self._settings
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(settings.retry_period_seconds)
            if await self._try_acquire_or_renew():
                last_renewal = time.monotonic()
            elif time.monotonic() - last_renewal > settings.renew_deadline_seconds:
                raise LeadershipLost(
                    f"failed to renew lease {settings.lease_namespace}/{settings.lease_name} "
                    f"within {settings.renew_deadline_seconds:g}s"
                )

    async def _try_acquire_or_renew(self) -> bool:
        settings = self._settings
        try:
            lease = await self._client.get(
                Lease, settings.lease_name, namespace=settings.lease_namespace
            )
        except ApiError as error:
            if error.status.code != 404:
                return self._failed(error)
            try:
                await self._client.create(self._new_lease())
            except ApiError as create_error:
                return self._failed(create_error)
            self._on_api(True)
            return True
        except Exception as error:
            return self._failed(error)
        self._on_api(True)
        spec = lease.spec or LeaseSpec()
        record = (spec.holderIdentity, spec.renewTime)
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        held_by_other = spec.holderIdentity and spec.holderIdentity != self.identity
        duration = spec.leaseDurationSeconds or settings.lease_duration_seconds
        if held_by_other and time.monotonic() - self._observed_at < duration:
            return False
        now = _now()
        if spec.holderIdentity != self.identity:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = int(settings.lease_duration_seconds)
        spec.renewTime = now
        lease.spec = spec
        try:
            # replace() sends the resourceVersion we read: if another replica wrote in between,
            # the apiserver answers 409 and this round is lost, which is the point.
            updated = await self._client.replace(lease)
        except ApiError as error:
            return self._failed(error)
        except Exception as error:
            return self._failed(error)
        renewed = updated.spec or spec
        self._observed = (renewed.holderIdentity, renewed.renewTime)
        self._observed_at = time.monotonic()
        return True

    def _failed(self, error: Exception) -> bool:
        if isinstance(error, ApiError):
            if error.status.code == 409:
                return False  # another replica won this round
            log.warning("Lease request failed: %s %s", error.status.code, error.status.message)
            self._on_api((error.status.code or 500) < 500)
        else:
            log.warning("Lease request failed: %s", error or type(error).__name__)
            self._on_api(False)
        return False

    def _new_lease(self) -> Lease:
        now = _now()
        settings = self._settings
        return Lease(
            metadata=ObjectMeta(name=settings.lease_name, namespace=settings.lease_namespace),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=int(settings.lease_duration_seconds),
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )

    async def _release(self) -> None:
        """Give the Lease up so a standby need not wait for it to expire."""
        settings = self._settings
        try:
            lease = await self._client.get(
                Lease, settings.lease_name, namespace=settings.lease_namespace
            )
            if lease.spec is None or lease.spec.holderIdentity != self.identity:
                return
            lease.spec.holderIdentity = None
            lease.spec.leaseDurationSeconds = 1
            lease.spec.renewTime = _now()
            await self._client.replace(lease)
            log.info("Released lease %s/%s", settings.lease_namespace, settings.lease_name)
        except Exception as error:  # shutting down: the lease simply expires instead
            log.info(
                "Could not release lease %s/%s: %s",
                settings.lease_namespace,
                settings.lease_name,
                error,
            )
