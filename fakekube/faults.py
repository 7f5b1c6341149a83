"""Fault injection: make matching requests fail, stall or lose their connection.

    server.faults.add(verb="create", resource="jobs", status=500, times=1)
    server.faults.add(verb="create", resource="services", delay=0.2)
    server.faults.add(verb="list", resource="pods", drop=True)
    server.faults.add(resource="leases", status=429, retry_after=2)
    server.faults.add(verb="create", resource="jobs", status=422, skip=1, times=1)  # the 2nd
    server.faults.clear()

The first matching rule applies. A rule with ``skip`` lets that many matching requests through
first. A rule with ``times`` is spent after that many requests; without it the rule stays until
removed. ``delay`` stalls the request (other requests go on) and then lets
it proceed, unless the rule also sets ``status`` or ``drop``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .requestlog import RequestInfo


@dataclass(eq=False)
class FaultRule:
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None
    name: str | None = None
    namespace: str | None = None
    method: str | None = None
    status: int | None = None
    message: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    times: int | None = None
    skip: int = 0
    #: How many requests this rule has affected so far.
    hits: int = 0

    def matches(self, method: str, info: RequestInfo) -> bool:
        wanted = (
            (self.method, method),
            (self.verb, info.verb),
            (self.resource, info.resource),
            (self.subresource, info.subresource),
            (self.name, info.name),
            (self.namespace, info.namespace),
        )
        return all(expected is None or expected == actual for expected, actual in wanted)

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times


class FaultInjector:
    """Thread-safe: rules are added by tests and consumed by the server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(
        self,
        *,
        verb: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        method: str | None = None,
        status: int | None = None,
        message: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int | None = None,
        skip: int = 0,
    ) -> FaultRule:
        if status is None and not delay and not drop:
            raise ValueError("a fault needs a status, a delay or drop=True")
        rule = FaultRule(
            verb=verb,
            resource=resource,
            subresource=subresource,
            name=name,
            namespace=namespace,
            method=method.upper() if method else None,
            status=status,
            message=message,
            retry_after=retry_after,
            delay=delay,
            drop=drop,
            times=times,
            skip=skip,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, method: str, info: RequestInfo) -> FaultRule | None:
        """The rule that applies to this request, counting it as one use."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, info):
                    if rule.skip:
                        rule.skip -= 1
                        continue
                    rule.hits += 1
                    if rule.spent:
                        self._rules.remove(rule)
                    return rule
        return None
