"""A throwaway CA and serving certificate for tests of the HTTPS conversion webhook.

Issued by the charm's own `webhook_tls`, so the tests serve what production serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from webhook_tls import ensure


@dataclass(frozen=True)
class ServingCertificate:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path) -> Path:
        """Write tls.crt and tls.key, as the operator's WEBHOOK_CERT_DIR expects them."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tls.crt").write_bytes(self.cert_pem)
        (directory / "tls.key").write_bytes(self.key_pem)
        return directory


def serving_certificate(*dns_names: str) -> ServingCertificate:
    """A new CA, and a certificate it signed for `dns_names`."""
    tls = ensure(None, dns_names, datetime.now(timezone.utc))
    return ServingCertificate(tls.ca_bundle.encode(), tls.cert.encode(), tls.key.encode())
