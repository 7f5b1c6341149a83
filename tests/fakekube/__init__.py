"""A fake Kubernetes API server for tests and demos (see ``server.FakeKube``)."""

from .errors import StatusError
from .faults import FaultRule
from .requestlog import RequestRecord
from .server import FakeKube, JobControls

__all__ = ["FakeKube", "FaultRule", "JobControls", "RequestRecord", "StatusError"]
