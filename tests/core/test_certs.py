"""Real certificates from both backends, checked with openssl and a real TLS handshake."""

import importlib.util
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time

import pytest

from mig.core import certs

SUBJECT = {"C": "DK", "ST": "NA", "L": "NA", "O": "MiG Appliance", "OU": "NA",
           "CN": "alice", "emailAddress": "alice@localhost"}
DN = "/C=DK/ST=NA/L=NA/O=MiG Appliance/OU=NA/CN=alice/emailAddress=alice@localhost"
HOSTS = ["localhost", "127.0.0.1", "grid.example"]
PW = "s3cret pass"
OPENSSL = shutil.which("openssl")
needs_openssl_cli = pytest.mark.skipif(not OPENSSL, reason="apt-get install openssl")


def _force(mp, backend):
    """Select a backend through the real environment switch, or skip/fail if absent."""
    if backend == "openssl":
        if not OPENSSL:
            pytest.skip("apt-get install openssl")
        mp.setenv("MIG_CERT_BACKEND", "openssl")
    else:
        if importlib.util.find_spec("cryptography") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("cryptography must be installed in CI")
            pytest.skip("pip install cryptography")
        mp.delenv("MIG_CERT_BACKEND", raising=False)
    assert certs.backend_name() == backend


@pytest.fixture(scope="module", params=["cryptography", "openssl"])
def pki(request, tmp_path_factory):
    """One CA, server cert and client cert per backend, shared to keep the suite fast."""
    with pytest.MonkeyPatch.context() as mp:
        _force(mp, request.param)
        d = tmp_path_factory.mktemp(request.param)
        start = time.time()
        ca_crt, ca_key = certs.create_ca(str(d))
        srv_crt, srv_key = certs.create_server_cert(ca_crt, ca_key, str(d), HOSTS)
        user = certs.create_client_cert(ca_crt, ca_key, str(d), SUBJECT, PW)
        yield dict(backend=request.param, dir=d, start=start, ca_crt=ca_crt, ca_key=ca_key,
                   srv_crt=srv_crt, srv_key=srv_key, user=user)


@pytest.fixture(params=["cryptography", "openssl"])
def backend(request, monkeypatch):
    _force(monkeypatch, request.param)
    return request.param


def openssl(*args, check=True):
    proc = subprocess.run([OPENSSL, *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_files_and_modes(pki):
    d, user = pki["dir"], pki["user"]
    assert (pki["ca_crt"], pki["ca_key"]) == (str(d / "ca.crt"), str(d / "ca.key"))
    assert (pki["srv_crt"], pki["srv_key"]) == (str(d / "server.crt"), str(d / "server.key"))
    assert user["cert"] == str(d / "user.crt") and user["key"] == str(d / "user.key")
    assert user["p12"] == str(d / "user.p12") and user["dn"] == DN
    for name in ("ca.key", "server.key", "user.key", "user.p12"):
        assert stat.S_IMODE(os.stat(d / name).st_mode) == 0o600, name
        assert "ENCRYPTED" not in (d / name).read_bytes().decode("latin-1")
    assert sorted(os.listdir(d)) == sorted(["ca.crt", "ca.key", "server.crt", "server.key",
                                            "user.crt", "user.key", "user.p12"])


@needs_openssl_cli
def test_chain_and_purposes_verify(pki):
    out = openssl("verify", "-CAfile", pki["ca_crt"], pki["srv_crt"], pki["user"]["cert"]).stdout
    assert out.count(": OK") == 2
    openssl("verify", "-purpose", "sslserver", "-CAfile", pki["ca_crt"], pki["srv_crt"])
    openssl("verify", "-purpose", "sslclient", "-CAfile", pki["ca_crt"], pki["user"]["cert"])
    wrong = openssl("verify", "-purpose", "sslserver", "-CAfile", pki["ca_crt"],
                    pki["user"]["cert"], check=False)
    assert wrong.returncode != 0


@needs_openssl_cli
def test_extensions(pki):
    san = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", pki["srv_crt"]).stdout
    for entry in ("DNS:localhost", "IP Address:127.0.0.1", "DNS:grid.example"):
        assert entry in san
    assert "DNS:127.0.0.1" not in san
    ca = openssl("x509", "-noout", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier",
                 "-in", pki["ca_crt"]).stdout
    assert "critical" in ca and "CA:TRUE" in ca and "Certificate Sign, CRL Sign" in ca
    assert "Subject Key Identifier" in ca
    subj = openssl("x509", "-noout", "-subject", "-nameopt", "compat",
                   "-in", pki["user"]["cert"]).stdout
    assert subj.strip() == "subject=" + DN
    eku = openssl("x509", "-noout", "-ext", "extendedKeyUsage", "-in", pki["user"]["cert"])
    assert "TLS Web Client Authentication" in eku.stdout


@needs_openssl_cli
def test_pkcs12(pki):
    p12 = pki["user"]["p12"]
    out = openssl("pkcs12", "-in", p12, "-passin", "pass:" + PW, "-nokeys").stdout
    assert out.count("BEGIN CERTIFICATE") == 2  # user + CA
    keys = openssl("pkcs12", "-in", p12, "-passin", "pass:" + PW, "-nocerts", "-nodes").stdout
    assert "PRIVATE KEY" in keys
    assert openssl("pkcs12", "-in", p12, "-passin", "pass:wrong", "-nokeys",
                   check=False).returncode != 0


def test_mutual_tls_gives_dn(pki):
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(pki["srv_crt"], pki["srv_key"])
    srv_ctx.verify_mode = ssl.CERT_OPTIONAL
    srv_ctx.load_verify_locations(pki["ca_crt"])
    cli_ctx = ssl.create_default_context(cafile=pki["ca_crt"])
    cli_ctx.load_cert_chain(pki["user"]["cert"], pki["user"]["key"])
    for server_name in ("localhost", "127.0.0.1"):  # checks both DNS and IP SANs
        seen, errors = [], []
        with socket.create_server(("127.0.0.1", 0)) as lsock:
            lsock.settimeout(5)

            def serve():
                try:
                    conn, _ = lsock.accept()
                    with srv_ctx.wrap_socket(conn, server_side=True) as tls:
                        seen.append(tls.getpeercert())
                        tls.sendall(b"ok")
                except Exception as exc:  # surfaced by the assert below
                    errors.append(exc)

            t = threading.Thread(target=serve)
            t.start()
            with socket.create_connection(lsock.getsockname(), timeout=5) as raw:
                with cli_ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                    assert tls.recv(2) == b"ok"
            t.join(5)
        assert not errors and seen
        assert certs.dn_from_peercert(seen[0]) == pki["user"]["dn"] == DN


def test_not_after(pki):
    day = 86400
    for path, days in ((pki["ca_crt"], 3650), (pki["srv_crt"], 825),
                       (pki["user"]["cert"], 825)):
        expiry = certs.cert_not_after(path)
        assert isinstance(expiry, float) and expiry > time.time()
        assert abs(expiry - (pki["start"] + days * day)) < 300, path
    assert pki["user"]["not_after"] == certs.cert_not_after(pki["user"]["cert"])


@needs_openssl_cli
def test_cross_backend_chain(pki, tmp_path, monkeypatch):
    """A CA from one backend signs with the other: files really are interchangeable."""
    other = "cryptography" if pki["backend"] == "openssl" else "openssl"
    _force(monkeypatch, other)
    crt, _ = certs.create_server_cert(pki["ca_crt"], pki["ca_key"], str(tmp_path), ["::1"])
    openssl("verify", "-CAfile", pki["ca_crt"], crt)
    san = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", crt).stdout
    assert "IP Address:0:0:0:0:0:0:0:1" in san


def test_dn_string_and_decoded_cert(pki):
    assert certs.dn_string(SUBJECT) == DN
    decoded = ssl._ssl._test_decode_cert(pki["user"]["cert"])
    assert certs.dn_from_peercert(decoded) == DN


@pytest.mark.parametrize("bad", ["a/b", "a\nb", "a\x00b", ""])
def test_bad_subject_value_rejected(backend, tmp_path, bad):
    with pytest.raises(certs.CertError):
        certs.dn_string(dict(SUBJECT, CN=bad))
    with pytest.raises(certs.CertError):
        certs.create_client_cert(str(tmp_path / "ca.crt"), str(tmp_path / "ca.key"),
                                 str(tmp_path), dict(SUBJECT, O=bad), PW)
    assert not (tmp_path / "user.crt").exists()


def test_bad_inputs_rejected(backend, tmp_path):
    ca_crt, ca_key = certs.create_ca(str(tmp_path / "ca"), common_name="Test CA", days=2)
    for hosts in ([], ["bad host"], ["a;b"], "localhost"):
        with pytest.raises(certs.CertError):
            certs.create_server_cert(ca_crt, ca_key, str(tmp_path), hosts)
    with pytest.raises(certs.CertError):
        certs.create_client_cert(ca_crt, ca_key, str(tmp_path), dict(SUBJECT, C="DNK"), PW)
    with pytest.raises(certs.CertError):
        certs.create_client_cert(ca_crt, ca_key, str(tmp_path), {"X": "y", "CN": "a"}, PW)
    with pytest.raises(certs.CertError):
        certs.create_client_cert(ca_crt, ca_key, str(tmp_path), SUBJECT, "")
    assert sorted(os.listdir(tmp_path)) == ["ca"]  # nothing written, scratch dirs removed
    assert abs(certs.cert_not_after(ca_crt) - time.time() - 2 * 86400) < 300


def test_no_backend_message(tmp_path):
    """Without cryptography and without openssl on PATH the error says what to install."""
    code = ("import sys; sys.modules['cryptography'] = None\n"
            "from mig.core import certs\n"
            "try:\n    certs.backend_name()\nexcept certs.CertError as e:\n    print(e)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PATH=str(tmp_path), PYTHONPATH=root)
    env.pop("MIG_CERT_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=30)
    assert "apt-get install openssl" in out.stdout and "pip install cryptography" in out.stdout
