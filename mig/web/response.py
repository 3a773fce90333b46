"""What the appliance answers over HTTP: a response with its security
headers, the redirect that Post/Redirect/Get and logins use, and a full
disk turned into the request's clear error."""

import contextlib
import errno
import logging

from mig.errors import disk_full

log = logging.getLogger("mig.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'; object-src 'none'",
    # Pages, tokens, keys and files are private: nothing is kept by browsers or proxies
    # (only /static/ overrides this).
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000",
}


class Response:
    def __init__(self, status, body=b"", content_type="text/plain; charset=utf-8",
                 headers=None, stream=None, length=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = dict(SECURITY_HEADERS)
        self.headers["Content-Type"] = content_type
        self.headers.update(headers or {})
        self.stream = stream  # an open file to send instead of body
        self.length = length if stream is not None else len(self.body)


def redirect(location, headers=None):
    return Response(303, "see %s\n" % location, headers=dict(headers or {}, Location=location))


@contextlib.contextmanager
def disk_full_refused(what):
    """A full disk (blocks, inodes, quota) is the request's clear error, not a crash."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.warning("disk full: %s: %s", what, exc)
            raise disk_full(what) from None
        raise
