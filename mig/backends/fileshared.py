"""What the Files backends share: their limits, links into the portal and
the home, and small formatting and checking helpers."""

import mimetypes
import os
import time
import urllib.parse

from mig.backends.homepaths import norm
from mig.backends.portal import page_url
from mig.core.atomic import write_atomic
from mig.core import archives as A
from mig.core import home as H
from mig.errors import ClientError
from mig.render import objects as O

EDIT_LIMIT = 2 * 1024 * 1024
VIEW_LIMIT = 1024 * 1024
MAX_ROWS = 10000
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
TEXT_TYPES = ("application/json", "application/xml", "application/javascript",
              "application/x-sh", "application/x-python", "application/x-tex",
              "application/x-yaml", "application/yaml", "image/svg+xml")
NEWLINES = {"unix": "\n", "windows": "\r\n"}
ACTION_COLUMNS = ("Path", "Result", "Message")
SORT_KEYS = {"name": "Name", "size": "Size", "date": "Modified"}
ORIGINS = ".origins.json"  # Trash/: where each trashed item came from (for Restore)
SCRIPTS = ["files.js"]  # the file manager's script (upload widget, actions in place)
SEARCH_ENTRIES = 20000  # a search looks at this many names at most ...
SEARCH_HITS = 200  # ... shows this many matches at most ...
SEARCH_BYTES = 256 * 1024 * 1024  # ... reads this much file content at most ...
SEARCH_FILE_BYTES = 16 * 1024 * 1024  # ... skips the content of larger files ...
SEARCH_SECONDS = 10  # ... and stops after this long


def download_href(rel):
    return "/cert_redirect/" + urllib.parse.quote(norm(rel), safe="/")


def links(pairs):
    return {"object_type": "links", "links": [list(p) for p in pairs]}


def back_to(folder):
    folder = norm(folder)
    return O.link(page_url("fileman", path=folder),
                  "Back to %s" % ("your home" if folder == "." else folder))


def folder_of(ctx, rel):
    path = ctx.home.resolve(rel, must_exist=True)
    if not os.path.isdir(path):
        raise ClientError("%s: not a folder" % rel)
    return path


def is_editable(name, size):
    """Cheap guess from the name (no file is opened) for the Edit action."""
    if size > EDIT_LIMIT or name.lower().endswith(IMAGES) or A.is_archive(name):
        return False
    kind = mimetypes.guess_type(name)[0]
    return kind is None or kind.startswith("text/") or kind in TEXT_TYPES


def read_text(home, rel, limit=EDIT_LIMIT):
    """A file's text for the editor, or a clear refusal (too large, binary, not UTF-8)."""
    path = home.resolve(rel, must_exist=True)
    if os.path.isdir(path):
        raise ClientError("%s: is a folder" % rel)
    if not os.path.isfile(path):
        raise ClientError("%s: not a regular file" % rel)
    size = os.path.getsize(path)
    if size > limit:
        raise ClientError("%s is %d bytes; only files up to %d MB can be edited here: "
                          "download it instead" % (rel, size, limit // (1024 * 1024)))
    data = home.read_bytes(rel)
    if b"\x00" in data:
        raise ClientError("%s looks like a binary file (it has NUL bytes) and cannot be "
                          "edited here: download it instead" % rel)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError("%s is not UTF-8 text and cannot be edited here: download it "
                          "instead" % rel) from None


def when(ts):
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def in_trash(rel):
    rel = norm(rel)
    return rel == H.TRASH or rel.startswith(H.TRASH + "/")


def store_file(ctx, rel, data):
    """Replace rel in the home with data, whole or not at all (a link there
    is replaced, never written through); durable before it returns."""
    final, _tmp = ctx.home.open_for_upload(rel)  # checks: folder exists, no folder in the way
    try:
        write_atomic(final, data)
    except OSError as exc:
        raise ClientError("cannot write %s: %s" % (rel, exc.strerror or exc)) from None
    return final
