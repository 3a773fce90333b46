"""Fetching a job's input files from http(s) URLs without becoming a way in.

The appliance fetches for the job, from inside the grid's host, so a URL
could name a service that only listens on loopback, the cloud's link-local
metadata address, or the appliance itself.  Each host name is resolved
once, every address is checked, and the connection goes to that checked
address (a second lookup could answer differently).  Redirects are checked
the same way, at most a few.  A download larger than the job's DISK (or the
given cap) is cut off and fails.
"""

import http.client
import ipaddress
import socket
import ssl
import urllib.parse

TIMEOUT = 60
MAX_REDIRECTS = 3
CHUNK = 256 * 1024


class FetchRefused(OSError):
    pass


def local_addresses():
    """This host's own addresses (every interface), from /proc."""
    found = set()
    try:
        with open("/proc/net/fib_trie", encoding="ascii") as handle:
            last = None
            for line in handle:
                words = line.split()
                if len(words) == 2 and words[0] in ("|--", "+--"):
                    last = words[1]
                elif "/32 host LOCAL" in line and last:
                    found.add(ipaddress.ip_address(last))
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as handle:
            for line in handle:
                raw = line.split()[0]
                found.add(ipaddress.ip_address(":".join(raw[i:i + 4] for i in range(0, 32, 4))))
    except (OSError, ValueError):
        pass
    return found


def refusal(address, own):
    """Why an address may not be fetched from, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a unicast address"
    if address in own:
        return "the appliance host itself"
    return None


class UrlFetcher:
    """Fetches URLs into files; allow_local lets the admin permit loopback,
    link-local and this host's own addresses (e.g. for a test grid)."""

    def __init__(self, max_bytes=None, allow_local=False, timeout=TIMEOUT):
        self.max_bytes = max_bytes
        self.allow_local = allow_local
        self.timeout = timeout

    def fetch(self, url, target):
        for _ in range(MAX_REDIRECTS + 1):
            location = self._fetch_once(url, target)
            if location is None:
                return
            url = urllib.parse.urljoin(url, location)
        raise FetchRefused("%s: too many redirects" % url)

    def _address(self, host, port):
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchRefused("%s: cannot be resolved: %s" % (host, exc)) from None
        own = set() if self.allow_local else local_addresses()
        chosen = None
        for family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0].split("%")[0])
            why = None if self.allow_local else refusal(address, own)
            if why:
                raise FetchRefused("%s resolves to %s, %s: input URLs may not reach it"
                                   % (host, address, why))
            chosen = chosen or (family, sockaddr)
        if chosen is None:
            raise FetchRefused("%s: no address" % host)
        return chosen

    def _fetch_once(self, url, target):
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused("%s: only http and https URLs are fetched" % url)
        port = parts.port or (443 if scheme == "https" else 80)
        family, sockaddr = self._address(parts.hostname, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(sockaddr)
            if scheme == "https":
                sock = ssl.create_default_context().wrap_socket(
                    sock, server_hostname=parts.hostname)
            conn = http.client.HTTPConnection(parts.hostname, port, timeout=self.timeout)
            conn.sock = sock  # already connected to the checked address
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            conn.request("GET", path, headers={"User-Agent": "mig-appliance",
                                               "Connection": "close"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                return response.getheader("Location")
            if response.status != 200:
                raise FetchRefused("%s: HTTP %d" % (url, response.status))
            self._save(response, target, url)
            return None
        finally:
            sock.close()

    def _save(self, response, target, url):
        written = 0
        with open(target, "wb") as out:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    return
                written += len(chunk)
                if self.max_bytes is not None and written > self.max_bytes:
                    raise FetchRefused("%s: larger than the job's disk limit of %d bytes"
                                       % (url, self.max_bytes))
                out.write(chunk)
