"""The HTTPS server: http.server with TLS done in the worker thread.

The listening socket accepts plain TCP; each connection is wrapped with
``do_handshake_on_connect=False`` and the handshake runs in the connection's
own thread under a timeout, so one idle or slow client never blocks the
others.  HTTP/1.1 keep-alive, TLS 1.2 minimum (AEAD suites only), client
certificates optional and verified against the appliance CA.

Limits against clients that hold resources: at most max_connections
connections at once (more are closed at once), a request's line and headers
must arrive within head_timeout (not just one byte per idle_timeout), and
requests whose length is ambiguous (several Content-Length headers, any
Transfer-Encoding) are refused and their connection closed, so no body can
be taken for a request.
"""

import io
import logging
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mig.core import certs
from mig.web.dispatch import Dispatcher
from mig.web.request import Request

log = logging.getLogger("mig.web")
CHUNK = 256 * 1024
DRAIN_LIMIT = 1024 * 1024
# TLS 1.2 suites: forward secret AEAD only (no CBC, no RSA key exchange); TLS 1.3 has
# only such suites and is not changed by this.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_LENGTH = re.compile(r"[0-9]{1,18}")


def tls_context(cert, key, ca, extra_client_ca=""):
    """extra_client_ca: CA certificates (PEM) whose client certificates are
    verified too, so that their holders may ask for an account with them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    if extra_client_ca:
        ctx.load_verify_locations(extra_client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class BodyReader:
    """The request body, never read past its Content-Length."""

    def __init__(self, raw, length):
        self.raw = raw
        self.remaining = length

    def read(self, size=-1):
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        if size <= 0:
            return b""
        data = self.raw.read(size)
        self.remaining -= len(data)
        return data


class DeadlineIO(socket.SocketIO):
    """The connection's raw reader: every recv waits at most idle_timeout, and while
    a deadline is set, no longer than until the deadline."""

    def __init__(self, sock, idle_timeout):
        super().__init__(sock, "rb")
        self.idle_timeout = idle_timeout
        self.deadline = None

    def readinto(self, buffer):
        timeout = self.idle_timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                raise TimeoutError("the request head took too long")
        self._sock.settimeout(timeout)
        return super().readinto(buffer)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffer replies so headers and a small body leave in one segment; the
    # base class flushes after every request.
    wbufsize = 64 * 1024
    server_version = "MiGAppliance"
    sys_version = ""

    def handle_expect_100(self):
        """Answer 'Expect: 100-continue' at once: replies are buffered, so flush it,
        or curl waits a second before every upload.  A request refused for its
        length gets no 100, so its client sends no body."""
        if not self._length_is_clear():
            return False
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def setup(self):
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)
        self.rfile.close()  # the base class's reader: replaced by one that knows deadlines
        self.raw_reader = DeadlineIO(self.connection, self.server.idle_timeout)
        self.rfile = io.BufferedReader(self.raw_reader, io.DEFAULT_BUFFER_SIZE)

    def handle_one_request(self):
        """Wait for a request as long as a keep-alive connection may idle; from its
        first byte, the whole head must arrive within head_timeout."""
        try:
            if not self.rfile.peek(1):
                self.close_connection = True
                return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        self.raw_reader.deadline = time.monotonic() + self.server.head_timeout
        try:
            super().handle_one_request()
        finally:
            self.raw_reader.deadline = None

    def parse_request(self):
        """The base parser, then no deadline for the body, and no ambiguous lengths."""
        if not super().parse_request():
            return False
        self.raw_reader.deadline = None
        self.connection.settimeout(self.server.idle_timeout)  # replies, too, wait this long
        return self._length_is_clear()

    def _length_is_clear(self):
        """No Transfer-Encoding (501) and at most one numeric Content-Length (400):
        otherwise the end of the body is ambiguous, and so is the next request.
        send_error closes the connection."""
        if self.headers.get_all("Transfer-Encoding"):
            self.send_error(501, "Transfer-Encoding is not supported: send a Content-Length")
            return False
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1 or not all(_LENGTH.fullmatch(v.strip()) for v in lengths):
            self.send_error(400, "one Content-Length header with a number is required")
            return False
        return True

    def log_message(self, fmt, *args):  # quiet: no per-request line on stderr
        log.debug("%s " + fmt, self.address_string(), *args)

    def _client_cert(self):
        """(subject DN, issuer DN) of the verified client certificate, or (None, None)."""
        try:
            peer = self.connection.getpeercert()
        except (ValueError, AttributeError):
            return None, None
        if not peer:
            return None, None
        return certs.dn_from_peercert(peer), certs.dn_from_peercert(peer, "issuer")

    def _dispatch(self):
        length = int(self.headers.get("Content-Length") or 0)  # checked in parse_request
        body = BodyReader(self.rfile, length)
        client_dn, client_issuer = self._client_cert()
        req = Request(self.command, self.path, self.headers, body, client_dn=client_dn,
                      peer=self.client_address[0], client_issuer=client_issuer)
        resp = self.server.dispatcher.handle(req)
        if body.remaining:
            # An unread body would be taken for the next request: drain a small
            # one, otherwise end the connection after this reply.
            if body.remaining <= DRAIN_LIMIT:
                body.read(body.remaining)
            else:
                self.close_connection = True
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(resp.length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            if self.command != "HEAD":
                if resp.stream is not None:
                    while True:
                        chunk = resp.stream.read(CHUNK)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                else:
                    self.wfile.write(resp.body)
        finally:
            if resp.stream is not None:
                resp.stream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_CERTPUT = do_SHAREPUT = do_DELETE = _dispatch


class GridHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, grid, tls, handshake_timeout=10.0, idle_timeout=120.0,
                 head_timeout=None, max_connections=None):
        """head_timeout and max_connections default to the grid's configuration."""
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        config = grid.config
        self.head_timeout = head_timeout or config.request_head_timeout
        self.max_connections = max_connections or config.max_connections
        self.connections = threading.BoundedSemaphore(self.max_connections)
        self.full_warned = -60.0
        self.dispatcher = Dispatcher(grid)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # Replies are written whole; never let Nagle hold the last segment back.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def process_request(self, request, client_address):
        """Serve the connection in its own thread, or close it when too many are open."""
        if not self.connections.acquire(blocking=False):
            now = time.monotonic()
            if now - self.full_warned > 60:  # one line a minute, not one per connection
                self.full_warned = now
                log.warning("%d connections are open: closing new ones (from %s, ...)",
                            self.max_connections, client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    def finish_request(self, request, client_address):
        try:
            request.settimeout(self.handshake_timeout)
            request.do_handshake()
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        log.debug("connection from %s ended with an error", client_address, exc_info=True)
