"""A fake Kubernetes API server for tests and demos (see ``server.FakeKube``), with a local kubelet
that runs the pods of Jobs as processes (see ``kubelet.LocalKubelet``)."""

from .authn import service_account_user
from .containers import LocalImage
from .errors import StatusError
from .faults import FaultRule
from .kubelet import KubeletSettings
from .requestlog import RequestRecord
from .server import FakeKube, JobControls, KubeletControls

__all__ = [
    "FakeKube",
    "FaultRule",
    "JobControls",
    "KubeletControls",
    "KubeletSettings",
    "LocalImage",
    "RequestRecord",
    "StatusError",
    "service_account_user",
]
