"""Request parsing as MiG's clients need it.

Form bodies and query strings are split on ';' as well as '&' (MiG's
scripts start their bodies with ``_=certauth;output_format=txt``), values
are URL-decoded with '+' as space, repeated keys keep their order, and
blank values count as absent (as upstream's FieldStorage did).
"""

import json
import mmap
import re
import tempfile
import urllib.parse

from mig.errors import ClientError, InvalidArgument
from mig.web import sessions as S

_SPLIT = re.compile(r"[&;]")
READ_BLOCK = 256 * 1024
SPOOL_BYTES = 1024 * 1024  # uploaded files larger than this go to a temp file
MAX_TEXT_BYTES = 16 * 1024 * 1024  # all non-file fields of one multipart body
MAX_PART_HEAD = 16 * 1024  # a boundary line or one part's headers


def parse_form(text):
    """'a=1;b=2&b=3&c=' -> {'a': ['1'], 'b': ['2', '3']}"""
    fields = {}
    for piece in _SPLIT.split(text or ""):
        if "=" not in piece:
            continue
        key, value = piece.split("=", 1)
        key = urllib.parse.unquote_plus(key).strip()
        value = urllib.parse.unquote_plus(value)
        if key.startswith("amp;"):
            key = key[4:]
        if key and value != "":
            fields.setdefault(key, []).append(value)
    return fields


def parse_json_fields(body):
    """A JSON object body -> the same {name: [values]} shape as a form."""
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise InvalidArgument("invalid JSON body: %s" % exc) from None
    if not isinstance(data, dict):
        raise InvalidArgument("a JSON body must be an object of field: value")
    fields = {}
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        cleaned = [json.dumps(v) if isinstance(v, (dict, list)) else str(v)
                   for v in values if v is not None and str(v) != ""]
        if cleaned:
            fields[str(key)] = cleaned
    return fields


def merge(*dicts):
    merged = {}
    for fields in dicts:
        for key, values in fields.items():
            merged.setdefault(key, []).extend(values)
    return merged


class _Body:
    """A bounded look-ahead buffer over a request body of known length."""

    def __init__(self, rfile, length):
        self.rfile, self.remaining, self.buf = rfile, length, b""

    def more(self):
        """Read the next block into the buffer; False at the end of the body."""
        if self.remaining <= 0:
            return False
        chunk = self.rfile.read(min(self.remaining, READ_BLOCK))
        if not chunk:
            raise InvalidArgument("the request body ended early")
        self.remaining -= len(chunk)
        self.buf += chunk
        return True

    def until(self, marker, limit, what):
        """The bytes before marker (consumed with it); at most limit bytes are held."""
        while True:
            at = self.buf.find(marker)
            if at >= 0:
                data, self.buf = self.buf[:at], self.buf[at + len(marker):]
                return data
            if len(self.buf) > limit or not self.more():
                raise InvalidArgument("invalid multipart body: %s" % what)

    def copy_until(self, marker, sink):
        """Pass the bytes before marker to sink block by block, never holding them all."""
        keep = len(marker) - 1
        while True:
            at = self.buf.find(marker)
            if at >= 0:
                sink.write(self.buf[:at])
                self.buf = self.buf[at + len(marker):]
                return
            if len(self.buf) > keep:
                sink.write(self.buf[:-keep])
                self.buf = self.buf[-keep:]
            if not self.more():
                raise InvalidArgument("invalid multipart body: a part does not end")


class _TextSink:
    """A form field's value, counted against the request's budget for text."""

    def __init__(self, budget):
        self.budget, self.data = budget, bytearray()

    def write(self, block):
        self.budget[0] -= len(block)
        if self.budget[0] < 0:
            raise InvalidArgument("the form fields are too large")
        self.data += block


class _FileSink:
    """An uploaded file: in memory while small, else spooled to an unlinked temp file."""

    def __init__(self, spool_dir):
        self.spool_dir, self.data, self.file = spool_dir, bytearray(), None

    def write(self, block):
        if self.file is None and len(self.data) + len(block) > SPOOL_BYTES:
            self.file = tempfile.TemporaryFile(dir=self.spool_dir)
            self.file.write(self.data)
            self.data = None
        if self.file is not None:
            self.file.write(block)
        else:
            self.data += block

    def value(self):
        """bytes, or for a spooled file a read-only mmap (bytes-like: len, slices,
        memoryview) so backends get the data without it ever being in memory."""
        if self.file is None:
            return bytes(self.data)
        with self.file:
            self.file.flush()
            return mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)


def _part_headers(block):
    from email.parser import BytesParser
    from email.policy import HTTP
    return BytesParser(policy=HTTP).parsebytes(block + b"\r\n\r\n", headersonly=True)


def parse_multipart(rfile, length, content_type, fields=None, spool_dir=None,
                    max_text=MAX_TEXT_BYTES, before_file=None):
    """A multipart/form-data body read from rfile as a stream.

    Returns ({name: [values]}, [(name, filename, data)]).  Field values are
    held in memory up to max_text bytes in all; file data goes to memory
    only while small and is otherwise spooled to spool_dir (see _FileSink),
    so a large upload never sits in memory.  fields is filled as parts
    arrive (callers see what was read when a check fails), and
    before_file(fields) runs before the first file is read, so a request
    can be refused before its bulk is accepted.
    """
    boundary = _boundary(content_type)
    fields = {} if fields is None else fields
    files, budget, checked = [], [max_text], before_file is None
    body = _Body(rfile, length)
    body.until(b"--" + boundary, MAX_PART_HEAD, "no first boundary")
    delimiter = b"\r\n--" + boundary
    try:
        while True:
            while len(body.buf) < 2 and body.more():
                pass
            if body.buf.startswith(b"--"):  # the closing boundary; the epilogue is ignored
                break
            body.until(b"\r\n", MAX_PART_HEAD, "a boundary line does not end")
            body.buf = b"\r\n" + body.buf  # so a part without headers needs no special case
            head = body.until(b"\r\n\r\n", MAX_PART_HEAD, "part headers do not end")[2:]
            part = _part_headers(head)
            cte = (part.get("Content-Transfer-Encoding") or "").strip().lower()
            if cte not in ("", "7bit", "8bit", "binary"):
                raise InvalidArgument("Content-Transfer-Encoding %s is not supported in "
                                      "form data" % cte[:40])
            name = part.get_param("name", header="content-disposition")
            filename = part.get_param("filename", header="content-disposition")
            if filename is not None and not checked:
                before_file(fields)
                checked = True
            sink = _TextSink(budget) if filename is None else _FileSink(spool_dir)
            body.copy_until(delimiter, sink)
            if not name:
                continue
            if filename is None:
                value = sink.data.decode("utf-8", "replace")
                if value != "":
                    fields.setdefault(name, []).append(value)
            elif filename:
                files.append((name, filename, sink.value()))
    except BaseException:
        close_files(files)
        raise
    return fields, files


def _boundary(content_type):
    from email.message import Message
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70:
        raise InvalidArgument("invalid multipart body: no usable boundary")
    return boundary.encode("latin-1", "replace")


def close_files(files):
    """Release the spooled uploads of parse_multipart (the temp files go with them)."""
    for _name, _filename, data in files:
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:  # still exported somewhere: the GC closes it later
                pass


BACKEND_PREFIXES = ("/cgi-bin/", "/wsgi-bin/")  # MiG's addresses of backends
ANONYMOUS_FORM_BYTES = 64 * 1024  # enough to say which format the refusal should take


class Request:
    """What the dispatcher needs from the HTTP layer."""

    def __init__(self, method, target, headers, rfile, client_dn=None, peer="",
                 client_issuer=None):
        self.method = method.upper()
        parsed = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parsed.path)
        self.query = parsed.query
        self.headers = headers
        self.rfile = rfile
        self.client_dn = client_dn
        self.client_issuer = client_issuer  # the DN of the CA that signed it
        self.peer = peer
        self.session_id = S.cookie_value(headers.get("Cookie", ""))
        self.fields = {}  # the fields read so far (see Dispatcher.read_fields)
        self.files = []
        self.keep_body = False  # a raw body its backend reads itself (declared raw_body)
        self.share_home = None  # the shared folder when a share link stands in for a login

    def header(self, name, default=""):
        return self.headers.get(name, default) or default

    def content_length(self):
        try:
            return max(0, int(self.header("Content-Length", "0")))
        except ValueError:
            raise ClientError("invalid Content-Length") from None

    def is_browser(self):
        """Whether a browser sent this (so a foreign page could have made it
        send it, with the grid certificate the browser holds): browsers mark
        every POST with Origin, and with Sec-Fetch-Site; scripts send
        neither.  Decided by what the request carries, never by the
        User-Agent, which any page's script may not set but any client may."""
        return bool(self.header("Origin") or self.header("Sec-Fetch-Site")
                    or self.header("Sec-Fetch-Mode"))


def refuse_files(_fields):
    """before_file for forms that take no files (login, logout)."""
    raise ClientError("this form takes no files")
