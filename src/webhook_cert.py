"""The application secret that keeps the conversion webhook's CA and serving certificate.

Every unit reads it; the leader creates it, and renews the certificate when due (see
`webhook_tls.ensure`). The certificate itself is made in `webhook_tls`, which knows no Juju.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import ops

import webhook_tls
from webhook_tls import WebhookTLS

logger = logging.getLogger(__name__)

LABEL = "webhook-tls"


def load(model: ops.Model) -> WebhookTLS | None:
    """The CA and certificate: the leader's are always there (made or renewed now if needed);
    another unit gets None until the leader has made them."""
    secret: ops.Secret | None
    current: WebhookTLS | None = None
    try:
        secret = found = model.get_secret(label=LABEL)
    except ops.SecretNotFoundError:
        secret = None
    else:
        try:
            current = WebhookTLS.from_secret(found.get_content(refresh=True))
        except ValueError as error:  # says which part is damaged, never its content
            logger.warning("The webhook certificate secret is unusable: %s", error)
            current = None
    if not model.unit.is_leader():
        return current
    names = webhook_tls.service_dns_names(model.app.name, model.name)
    tls = webhook_tls.ensure(current, names, datetime.now(timezone.utc))
    if tls is not current:
        if secret is None:
            model.app.add_secret(
                tls.to_secret(),
                label=LABEL,
                description="CA and serving certificate of the LocustTest conversion webhook",
            )
        else:
            secret.set_content(tls.to_secret())
        logger.info("Issued the webhook serving certificate for %s", ", ".join(names))
    return tls
