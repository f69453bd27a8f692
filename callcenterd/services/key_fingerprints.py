"""A daemon started with other keys than its database was written with refuses to start.

Its tokens would not verify on another daemon sharing the database, and the secrets stored
encrypted (the ARI and SMTP passwords, webhook secrets) would not decrypt. The store keeps a
fingerprint of each key (security.key_fingerprint); the first start with a database that has
none records the keys it runs with.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from callcenterd.errors import DatabaseUnavailable, KeysMismatch
from callcenterd.security import key_fingerprint
from callcenterd.store.system import KeyFingerprints

log = structlog.get_logger(__name__)

KEY_NAMES = {
    "jwt_signing": "the JWT signing key (auth.jwt_secret, else <state_dir>/jwt.key)",
    # A description of where the key comes from, not a password.
    "secret_encryption": "the key of stored secrets (auth.secret_key, else <state_dir>/secret.key)",  # nosec B105
}


async def verify_keys(
    store: KeyFingerprints, signing_key: bytes, secret_key: bytes, at: datetime
) -> None:
    current = {
        "jwt_signing": key_fingerprint(signing_key),
        "secret_encryption": key_fingerprint(secret_key),
    }
    recorded = await store.recorded()
    for name, fingerprint in current.items():
        kept = recorded.get(name)
        if kept is not None and kept != fingerprint:
            raise KeysMismatch(
                f"{KEY_NAMES[name]} differs from the one this database was written with"
                f" (fingerprint {fingerprint}, the database's {kept}): start with that key;"
                " every daemon sharing a database needs the same keys"
            )
    missing = {name: value for name, value in current.items() if name not in recorded}
    if not missing:
        return  # nothing to write: a database it may only read still starts
    try:
        await store.record_missing(missing, at)
    except DatabaseUnavailable as err:
        # Not writable now (readyz says so); recorded at the next start that can write.
        log.warning("key_fingerprints_not_recorded", error=err.detail)
