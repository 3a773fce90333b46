"""The Content-Disposition header of a download (RFC 6266 with RFC 5987).

File names are the user's: a quote, a CR/LF or a non-latin-1 character
copied into the header would inject headers or break the reply.  So the
plain ``filename`` is an ASCII fallback with those removed and the real name
travels percent-encoded in ``filename*``.
"""

import urllib.parse

_DROP = {c: None for c in list(range(0x20)) + [0x7f, ord('"'), ord("\\")]}


def attachment(filename):
    """'attachment; filename="ascii"; filename*=UTF-8''pct-encoded' for any name."""
    fallback = filename.translate(_DROP).encode("ascii", "replace").decode("ascii")
    fallback = fallback.replace("?", "_").strip() or "download"
    encoded = urllib.parse.quote(filename.encode("utf-8", "surrogateescape"), safe="")
    return "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (fallback, encoded)
