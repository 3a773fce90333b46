"""The HTTPS server: http.server with TLS done in the worker thread.

The listening socket accepts plain TCP; each connection is wrapped with
``do_handshake_on_connect=False`` and the handshake runs in the connection's
own thread under a timeout, so one idle or slow client never blocks the
others.  HTTP/1.1 keep-alive, TLS 1.2 minimum, client certificates optional
and verified against the appliance CA.
"""

import logging
import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mig.core import certs
from mig.web.dispatch import Dispatcher, Request

log = logging.getLogger("mig.web")
CHUNK = 256 * 1024
DRAIN_LIMIT = 1024 * 1024


def tls_context(cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffer replies so headers and a small body leave in one segment; the
    # base class flushes after every request.
    wbufsize = 64 * 1024
    server_version = "MiGAppliance"
    sys_version = ""

    def handle_expect_100(self):
        """Answer 'Expect: 100-continue' at once: replies are buffered, so flush it,
        or curl waits a second before every upload."""
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def setup(self):
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)

    def log_message(self, fmt, *args):  # quiet: no per-request line on stderr
        log.debug("%s " + fmt, self.address_string(), *args)

    def _client_dn(self):
        try:
            peer = self.connection.getpeercert()
        except (ValueError, AttributeError):
            return None
        return certs.dn_from_peercert(peer) if peer else None

    def _dispatch(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = BodyReader(self.rfile, max(0, length))
        req = Request(self.command, self.path, self.headers, body,
                      client_dn=self._client_dn(), peer=self.client_address[0])
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

    def __init__(self, address, grid, tls, handshake_timeout=10.0, idle_timeout=120.0):
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.dispatcher = Dispatcher(grid)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # Replies are written whole; never let Nagle hold the last segment back.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

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
