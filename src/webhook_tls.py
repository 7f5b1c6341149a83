"""TLS for the conversion webhook: a private CA, and the serving certificate it signs.

The apiserver calls the reconciler's /convert endpoint through the application's Service and trusts
only the CA bundle written into the CRD, so the charm acts as its own CA: no cert-manager or other
charm is needed. Plain `cryptography`, no ops: the charm keeps the material in a Juju secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Renewal policy: the serving certificate lives a year, the CA ten, and each is renewed once it has
# less than thirty days left. Thirty days give every unit thousands of update-status hooks (one
# every five minutes by default) to load the renewed certificate before the old one expires.
SERVING_VALIDITY = timedelta(days=365)
CA_VALIDITY = timedelta(days=3650)
RENEW_BEFORE = timedelta(days=30)
# Certificates start a little in the past, so a node whose clock lags still accepts them.
BACKDATE = timedelta(minutes=5)
CA_NAME = "locust-operator conversion webhook CA"


def service_dns_names(app: str, namespace: str) -> tuple[str, ...]:
    """The names of the application's Service (Juju names it after the application)."""
    return (f"{app}.{namespace}.svc", f"{app}.{namespace}.svc.cluster.local")


@dataclass(frozen=True)
class WebhookTLS:
    """PEM texts: the CA and its key, the serving certificate and its key, and the CA bundle.

    The bundle is what the apiserver trusts: the current CA, plus an outgoing one until it expires.
    """

    ca_cert: str
    ca_key: str = dataclasses.field(repr=False)
    cert: str
    key: str = dataclasses.field(repr=False)
    ca_bundle: str

    def to_secret(self) -> dict[str, str]:
        """The content of the Juju secret that keeps it."""
        return {_secret_key(f.name): getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_secret(cls, content: Mapping[str, str]) -> WebhookTLS:
        """Read the secret's content back; ValueError if a part is missing or not PEM."""
        try:
            tls = cls(**{f.name: content[_secret_key(f.name)] for f in dataclasses.fields(cls)})
        except KeyError as missing:
            raise ValueError(f"no {missing} key") from None
        # Parse every part now, so that damaged content is noticed here (and replaced).
        for name in ("ca_cert", "cert", "ca_bundle"):
            try:
                _certificates(getattr(tls, name))
            except ValueError:
                raise ValueError(f"{_secret_key(name)} is not a PEM certificate") from None
        for name in ("ca_key", "key"):
            try:
                serialization.load_pem_private_key(getattr(tls, name).encode(), password=None)
            except (ValueError, TypeError):
                raise ValueError(f"{_secret_key(name)} is not a PEM private key") from None
        return tls


def _secret_key(field_name: str) -> str:
    """Juju secret keys are lowercase with dashes: `ca_cert` is kept under `ca-cert`."""
    return field_name.replace("_", "-")


def ensure(current: WebhookTLS | None, dns_names: Sequence[str], now: datetime) -> WebhookTLS:
    """The TLS material to serve from now on: `current` while it is good, else renewed.

    A new serving certificate keeps the CA, so the CRD's bundle does not change and units still
    serving the previous certificate stay trusted until they load the new one. A new CA keeps
    the outgoing CA in the bundle until it expires, for the same reason.
    """
    if current is not None and not _expiring(_certificate(current.ca_cert), now):
        if _serves(current, dns_names, now):
            return current
        ca_cert, ca_key = current.ca_cert, current.ca_key
    else:
        ca_cert, ca_key = _new_ca(now)
    previous = current.ca_bundle if current is not None else ""
    return _issue(ca_cert, ca_key, _bundle(ca_cert, previous, now), dns_names, now)


def _bundle(ca_cert: str, previous: str, now: datetime) -> str:
    """The CA, then the other CAs of the `previous` bundle that have not expired."""
    ca = _certificate(ca_cert)
    others = _certificates(previous) if previous else []
    return ca_cert + "".join(
        _pem(other) for other in others if other != ca and other.not_valid_after_utc > now
    )


def _serves(tls: WebhookTLS, dns_names: Sequence[str], now: datetime) -> bool:
    """True if the serving certificate is signed by the CA, names exactly `dns_names` and is
    not due for renewal."""
    served, ca = _certificate(tls.cert), _certificate(tls.ca_cert)
    try:
        served.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(names.get_values_for_type(x509.DNSName)) == set(dns_names) and not _expiring(
        served, now
    )


def _expiring(certificate: x509.Certificate, now: datetime) -> bool:
    return certificate.not_valid_after_utc - now < RENEW_BEFORE


def _certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _certificates(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _new_ca(now: datetime) -> tuple[str, str]:
    """A self-signed CA that may only sign serving certificates; returns its PEM and key PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem(certificate), _key_pem(key)


def _issue(
    ca_cert: str, ca_key: str, ca_bundle: str, dns_names: Sequence[str], now: datetime
) -> WebhookTLS:
    """A new serving key and certificate for `dns_names`, signed by the CA."""
    ca = _certificate(ca_cert)
    signer = serialization.load_pem_private_key(ca_key.encode(), password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        # Never outlive the CA: the chain would stop verifying first.
        .not_valid_after(min(now + SERVING_VALIDITY, ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
        .sign(signer, hashes.SHA256())
    )
    return WebhookTLS(
        ca_cert=ca_cert,
        ca_key=ca_key,
        cert=_pem(certificate),
        key=_key_pem(key),
        ca_bundle=ca_bundle,
    )
