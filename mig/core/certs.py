"""The appliance's own certificate authority.

The appliance issues its CA, its HTTPS server certificate and the user
(client) certificates that MiG uses as identities.  Certificates are made
with the ``cryptography`` package when it is importable, otherwise with the
``openssl`` command line tool, so a bare system with only openssl still works.
Both backends produce the same files: PKCS#8 PEM keys, PEM certificates with
the same extensions in the same order, and an AES-protected PKCS#12 bundle.
``MIG_CERT_BACKEND=openssl`` forces the command line backend.
"""

import ipaddress
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone

from mig.errors import SystemFailure
from mig.store.atomic import write_atomic

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    _HAVE_CRYPTOGRAPHY = True
except ImportError:  # the openssl CLI fallback takes over
    _HAVE_CRYPTOGRAPHY = False


class CertError(SystemFailure):
    """Raised when a certificate cannot be made, or does not contain what was asked."""


# MiG DN key -> (long name used by ssl.getpeercert(), max length per RFC 5280 bounds)
_ATTRS = {
    "C": ("countryName", 2), "ST": ("stateOrProvinceName", 128),
    "L": ("localityName", 128), "O": ("organizationName", 64),
    "OU": ("organizationalUnitName", 64), "CN": ("commonName", 64),
    "emailAddress": ("emailAddress", 128),
}
_LONG_TO_SHORT = {long: short for short, (long, _) in _ATTRS.items()}
_HOST_RE = re.compile(r"^[A-Za-z0-9_*][A-Za-z0-9_.*-]*$")
_RSA_BITS = 2048

# Shared by both backends so the extension set and order stay identical.
_PROFILES = {
    "ca": dict(ca=True, ku="keyCertSign,cRLSign", eku=None),
    "server": dict(ca=False, ku="digitalSignature,keyEncipherment", eku="serverAuth"),
    "client": dict(ca=False, ku="digitalSignature,keyEncipherment", eku="clientAuth"),
}


def backend_name() -> str:
    """Pick the backend once per call so tests can flip MIG_CERT_BACKEND."""
    forced = os.environ.get("MIG_CERT_BACKEND", "").strip().lower()
    if forced not in ("", "auto", "openssl", "cryptography"):
        raise CertError(f"MIG_CERT_BACKEND={forced!r}: use 'openssl' or 'cryptography'")
    if forced in ("", "auto", "cryptography") and _HAVE_CRYPTOGRAPHY:
        return "cryptography"
    if forced == "cryptography":
        raise CertError("MIG_CERT_BACKEND=cryptography but it is not importable: "
                        "pip install cryptography")
    if shutil.which("openssl"):
        return "openssl"
    raise CertError("no certificate backend: install the openssl package "
                    "(apt-get install openssl) or pip install cryptography")


def dn_string(subject: dict[str, str]) -> str:
    """MiG identifies users by this slash-separated DN, in the given order."""
    _check_subject(subject)
    return "".join(f"/{k}={v}" for k, v in subject.items())


def dn_from_peercert(peercert: dict, field: str = "subject") -> str:
    """Same DN string as dn_string(), from what a TLS server sees of the client
    (field "issuer": the DN of the CA that signed it)."""
    parts = []
    for rdn in peercert.get(field, ()):
        for name, value in rdn:
            parts.append(f"/{_LONG_TO_SHORT.get(name, name)}={value}")
    return "".join(parts)


def subject_dn(crt_path: str) -> str:
    """The DN string of a certificate file's subject (a CA's, to compare issuers)."""
    return dn_from_peercert(_decode(crt_path))


def cert_not_after(crt_path: str) -> float:
    """Expiry as epoch seconds, via the stdlib so it needs no backend at all."""
    return float(ssl.cert_time_to_seconds(_decode(crt_path)["notAfter"]))


def create_ca(dirpath: str, common_name: str = "MiG Appliance CA",
              days: int = 3650) -> tuple[str, str]:
    """Make the self-signed CA that signs every appliance certificate."""
    subject = {"CN": common_name}
    _check_subject(subject)
    _check_days(days)
    crt, key = os.path.join(dirpath, "ca.crt"), os.path.join(dirpath, "ca.key")
    with _workdir(dirpath) as work:
        _install(_make(backend_name(), work, subject, "ca", [], days, None), key, crt)
    return crt, key


def create_server_cert(ca_crt: str, ca_key: str, out_dir: str, hostnames: list[str],
                       days: int = 825) -> tuple[str, str]:
    """HTTPS certificate; CN is the first name, every name goes into the SAN."""
    sans = _check_hosts(hostnames)
    subject = {"CN": hostnames[0]}
    _check_subject(subject)
    _check_days(days)
    crt, key = os.path.join(out_dir, "server.crt"), os.path.join(out_dir, "server.key")
    with _workdir(out_dir) as work:
        _install(_make(backend_name(), work, subject, "server", sans, days,
                       (ca_crt, ca_key)), key, crt)
    return crt, key


def create_client_cert(ca_crt: str, ca_key: str, out_dir: str, subject: dict[str, str],
                       p12_password: str, days: int = 825) -> dict:
    """User identity certificate plus a PKCS#12 bundle for browsers and curl."""
    _check_subject(subject)
    _check_days(days)
    if "CN" not in subject:
        raise CertError("client subject needs a CN")
    if not p12_password or any(c in p12_password for c in "\n\r\x00"):
        raise CertError("p12_password must be non-empty and single-line")
    paths = {n: os.path.join(out_dir, f"user.{n}") for n in ("crt", "key", "p12")}
    backend = backend_name()
    with _workdir(out_dir) as work:
        made = _make(backend, work, subject, "client", [], days, (ca_crt, ca_key))
        p12 = _p12(backend, made[2], made[3], ca_crt, subject["CN"], p12_password)
        _install(made, paths["key"], paths["crt"])
        write_atomic(paths["p12"], p12, mode=0o600)
    return {"cert": paths["crt"], "key": paths["key"], "p12": paths["p12"],
            "dn": dn_string(subject), "not_after": cert_not_after(paths["crt"])}


# ---------------------------------------------------------------- validation

def _check_subject(subject: dict[str, str]) -> None:
    """Values go into '/K=V' DNs and openssl -subj, so '/' and control chars are out."""
    if not subject:
        raise CertError("empty certificate subject")
    for key, value in subject.items():
        if key not in _ATTRS:
            raise CertError(f"unsupported subject attribute {key!r}; use {list(_ATTRS)}")
        if not isinstance(value, str) or not value:
            raise CertError(f"subject {key} must be a non-empty string")
        if any(c in value for c in "/\n\r\x00"):
            raise CertError(f"subject {key}={value!r} contains '/', newline or NUL")
        limit = _ATTRS[key][1]
        if len(value) > limit or (key == "C" and len(value) != 2):
            raise CertError(f"subject {key}={value!r} must be at most {limit} chars"
                            + (" (exactly 2 for C)" if key == "C" else ""))


def _check_days(days: int) -> None:
    if not isinstance(days, int) or days < 1:
        raise CertError(f"days must be a positive integer, not {days!r}")


def _check_hosts(hostnames: list[str]) -> list[tuple[str, str]]:
    """Split names into ('DNS', name) / ('IP', addr) SAN entries, deduplicated."""
    if not hostnames or isinstance(hostnames, str):
        raise CertError("hostnames must be a non-empty list of names")
    sans: list[tuple[str, str]] = []
    for name in hostnames:
        if not isinstance(name, str):
            raise CertError(f"hostname {name!r} is not a string")
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if len(name) > 253 or not _HOST_RE.match(name):
                raise CertError(f"invalid hostname {name!r}") from None
            entry = ("DNS", name.lower())
        else:
            if getattr(ip, "scope_id", None):
                raise CertError(f"scoped IPv6 address {name!r} cannot go in a certificate")
            entry = ("IP", str(ip))
        if entry not in sans:
            sans.append(entry)
    return sans


def _verify(crt: str, key: str, subject: dict[str, str], sans=None) -> None:
    """Read the result back with the stdlib: right subject, SANs, and matching key."""
    info = _decode(crt)
    if dn_from_peercert(info) != dn_string(subject):
        raise CertError(f"certificate subject {dn_from_peercert(info)!r} "
                        f"!= requested {dn_string(subject)!r}")
    if sans is not None:
        got = set()
        for kind, value in info.get("subjectAltName", ()):
            got.add(("IP", str(ipaddress.ip_address(value))) if kind == "IP Address"
                    else (kind, value))
        if got != set(sans):
            raise CertError(f"certificate SANs {sorted(got)} != requested {sorted(sans)}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(crt, key)
    except ssl.SSLError as exc:
        raise CertError(f"certificate and key do not match: {exc}") from exc


def _decode(crt_path: str) -> dict:
    try:
        return ssl._ssl._test_decode_cert(crt_path)
    except (OSError, ssl.SSLError) as exc:
        raise CertError(f"cannot read certificate {crt_path}: {exc}") from exc


# ---------------------------------------------------------------- files

def _workdir(parent: str):
    """Private scratch dir next to the outputs, so os.replace stays on one filesystem."""
    os.makedirs(parent, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=parent, prefix=".certs-")


def _write(path: str, data: bytes, mode: int) -> None:
    """Create with the final mode from the start, so a key is never world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)  # umask-proof
        fh.write(data)


def _install(made, key, crt) -> None:
    """Put a checked key and certificate in place, each whole and synced."""
    key_pem, crt_pem = made[:2]
    write_atomic(key, key_pem, mode=0o600)
    write_atomic(crt, crt_pem, mode=0o644)


def _make(backend, work, subject, profile, sans, days, issuer):
    """Issue into the scratch dir and check it there, before touching real
    files: (key PEM, certificate PEM, scratch certificate, scratch key)."""
    key_pem, crt_pem = _issue(backend, work, subject, profile, sans, days, issuer)
    key, crt = os.path.join(work, "out.key"), os.path.join(work, "out.crt")
    _write(key, key_pem, 0o600)
    _write(crt, crt_pem, 0o644)
    _verify(crt, key, subject, sans if profile == "server" else None)
    return key_pem, crt_pem, crt, key


def _serial() -> int:
    """127 random bits from secrets, kept positive and below the 20-octet limit."""
    return secrets.randbits(127) | (1 << 64)


# ---------------------------------------------------------------- backends

def _issue(backend, work, subject, profile, sans, days, issuer):
    """Return (key_pem, crt_pem); issuer is (ca_crt, ca_key) or None for self-signed."""
    fn = _crypto_issue if backend == "cryptography" else _openssl_issue
    try:
        return fn(work, subject, profile, sans, days, issuer)
    except (ValueError, TypeError, OSError) as exc:
        raise CertError(f"{backend} could not make the {profile} certificate: {exc}") from exc


def _p12(backend, crt, key, ca_crt, name, password) -> bytes:
    if backend == "openssl":
        env = dict(os.environ, MIG_P12_PASS=password)  # keeps it off the command line
        return _run(["pkcs12", "-export", "-in", crt, "-inkey", key, "-certfile", ca_crt,
                     "-name", name, "-passout", "env:MIG_P12_PASS"], env=env)
    try:
        with open(crt, "rb") as c, open(key, "rb") as k, open(ca_crt, "rb") as a:
            cert, ca = (x509.load_pem_x509_certificate(f.read()) for f in (c, a))
            pkey = serialization.load_pem_private_key(k.read(), None)
        return pkcs12.serialize_key_and_certificates(
            name.encode(), pkey, cert, [ca],
            serialization.BestAvailableEncryption(password.encode()))
    except (ValueError, TypeError, OSError) as exc:
        raise CertError(f"cannot build PKCS#12 bundle: {exc}") from exc


def _crypto_issue(work, subject, profile, sans, days, issuer):
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
            "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
            "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME,
            "emailAddress": NameOID.EMAIL_ADDRESS}
    name = x509.Name([x509.NameAttribute(oids[k], v) for k, v in subject.items()])
    if issuer:
        with open(issuer[0], "rb") as c, open(issuer[1], "rb") as k:
            ca_cert = x509.load_pem_x509_certificate(c.read())
            sign_key = serialization.load_pem_private_key(k.read(), None)
        issuer_name = ca_cert.subject
    else:
        sign_key, issuer_name = key, name
    prof = _PROFILES[profile]
    ku = {u: u in prof["ku"].split(",") for u in
          ("digitalSignature", "keyEncipherment", "keyCertSign", "cRLSign")}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(_serial())
         .not_valid_before(now).not_valid_after(now + timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=prof["ca"], path_length=None), True)
         .add_extension(x509.KeyUsage(
             digital_signature=ku["digitalSignature"], content_commitment=False,
             key_encipherment=ku["keyEncipherment"], data_encipherment=False,
             key_agreement=False, key_cert_sign=ku["keyCertSign"], crl_sign=ku["cRLSign"],
             encipher_only=False, decipher_only=False), True))
    if prof["eku"]:
        eku = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
               "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}[prof["eku"]]
        b = b.add_extension(x509.ExtendedKeyUsage([eku]), False)
    b = (b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             sign_key.public_key()), False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(v) if t == "DNS" else x509.IPAddress(ipaddress.ip_address(v))
             for t, v in sans]), False)
    cert = b.sign(sign_key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _openssl_issue(work, subject, profile, sans, days, issuer):
    prof = _PROFILES[profile]
    lines = ["[req]", "distinguished_name = req_dn", "string_mask = utf8only",
             "utf8 = yes", "[req_dn]", "[ext]",
             f"basicConstraints = critical,CA:{'TRUE' if prof['ca'] else 'FALSE'}",
             f"keyUsage = critical,{prof['ku']}"]
    if prof["eku"]:
        lines.append(f"extendedKeyUsage = {prof['eku']}")
    lines += ["subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid:always"]
    if sans:
        lines += ["subjectAltName = @alt", "[alt]"]
        counts: dict[str, int] = {}
        for kind, value in sans:  # values were validated: no config metacharacters
            counts[kind] = counts.get(kind, 0) + 1
            lines.append(f"{kind}.{counts[kind]} = {value}")
    cfg, key = os.path.join(work, "openssl.cnf"), os.path.join(work, "new.key")
    _write(cfg, ("\n".join(lines) + "\n").encode(), 0o600)
    _write(key, _run(["genpkey", "-algorithm", "RSA",
                      "-pkeyopt", f"rsa_keygen_bits:{_RSA_BITS}"]), 0o600)
    subj = "".join("/{}={}".format(k, v.replace("\\", "\\\\")) for k, v in subject.items())
    common = ["-days", str(days), "-set_serial", hex(_serial()), "-sha256"]
    if issuer is None:
        crt = _run(["req", "-new", "-x509", "-utf8", "-config", cfg, "-key", key,
                    "-subj", subj, "-extensions", "ext"] + common)
    else:
        csr = os.path.join(work, "new.csr")
        _run(["req", "-new", "-utf8", "-config", cfg, "-key", key, "-subj", subj,
              "-out", csr])
        crt = _run(["x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1],
                    "-extfile", cfg, "-extensions", "ext"] + common)
    with open(key, "rb") as fh:
        return fh.read(), crt


def _run(args: list[str], env=None) -> bytes:
    """Run openssl with an argument list (never a shell) and return its stdout."""
    exe = shutil.which("openssl")
    if not exe:
        raise CertError("openssl not found: apt-get install openssl or pip install cryptography")
    try:
        proc = subprocess.run([exe, *args], capture_output=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CertError(f"openssl {args[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise CertError(f"openssl {args[0]} failed (exit {proc.returncode}): {err}")
    return proc.stdout
