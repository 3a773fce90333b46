"""Secrets: scrypt password hashes, API tokens and CSRF tokens (hmac).

Everything random comes from ``secrets``; every comparison is constant-time.
"""

import hashlib
import hmac
import secrets

_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
# Checked for unknown user names, so that they take as long as known ones: a
# well-formed hash of the current cost whose digest no password produces.
DUMMY_HASH = "scrypt$%d$%d$%d$%s$%s" % (_SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"],
                                        "00" * 16, "00" * 64)


def hash_password(password):
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return "scrypt$%d$%d$%d$%s$%s" % (_SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"],
                                      salt.hex(), digest.hex())


def check_password(password, stored):
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n),
                                   r=int(r), p=int(p), maxmem=64 * 1024 * 1024)
    except (AttributeError, ValueError, TypeError, OverflowError, MemoryError):
        return False  # a damaged stored hash never lets anybody in
    return hmac.compare_digest(candidate.hex(), digest)


def new_token():
    return "mig_" + secrets.token_urlsafe(32)


def token_digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def new_password():
    return secrets.token_urlsafe(12)


def csrf_token(secret, user, session=""):
    """A per-user (and per-session) token for state-changing browser forms."""
    return hmac.new(secret, ("csrf:%s:%s" % (user, session)).encode(),
                    hashlib.sha256).hexdigest()


def check_csrf(secret, user, token, session=""):
    if not isinstance(token, str) or not token:
        return False
    expected = csrf_token(secret, user, session).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", "surrogateescape"))
