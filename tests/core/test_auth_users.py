"""mig.core.auth (scrypt, tokens, CSRF) and mig.core.users (UserDB on a real
PickleStore, with a real CA, certificates and homes)."""

import os
import ssl
import stat

import pytest

import mig.config
from mig.core import auth, certs
from mig.core.users import NAME_RE, USERS_RECORD, UserDB
from mig.errors import ClientError, ConflictError
from mig.store.pickledb import PickleStore

SECRET = b"s" * 32


# --------------------------------------------------------------------- passwords

def test_hash_password_format_and_salt():
    stored = auth.hash_password("correct horse")
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) == 32 and len(digest) == 128
    int(salt, 16), int(digest, 16)
    assert auth.hash_password("correct horse") != stored  # fresh salt every time


def test_check_password():
    stored = auth.hash_password("correct horse")
    assert auth.check_password("correct horse", stored) is True
    assert auth.check_password("correct horse ", stored) is False
    assert auth.check_password("Correct horse", stored) is False
    assert auth.check_password("", stored) is False
    unicode_stored = auth.hash_password("p\u00e6ssw\u00f8rd")
    assert auth.check_password("p\u00e6ssw\u00f8rd", unicode_stored) is True
    assert auth.check_password("paessword", unicode_stored) is False


def test_check_password_other_salt_or_digest():
    stored = auth.hash_password("pw")
    kind, n, r, p, salt, digest = stored.split("$")
    other_salt = "%032x" % (int(salt, 16) ^ 1)
    assert auth.check_password("pw", "$".join([kind, n, r, p, other_salt, digest])) is False
    assert auth.check_password("pw", "$".join([kind, n, r, p, salt, digest[:-1]])) is False
    assert auth.check_password("pw", stored.upper()) is False


@pytest.mark.parametrize("stored", [
    None, "", "abc", 12, "scrypt$1$2$3$4", "pbkdf2$1$2$3$4$5", "scrypt$16384$8$1$$",
    "scrypt$16384$8$1$00$zz", "$$$$$", "scrypt$16384$8$1$00$00$extra",
])
def test_check_password_malformed_is_false(stored):
    assert auth.check_password("pw", stored) is False


@pytest.mark.parametrize("stored", [
    "scrypt$16384$8$1$zz$00", "scrypt$x$8$1$00$00", "scrypt$3$8$1$00$00",
    "scrypt$1048576$8$1$00$00",
])
def test_check_password_malformed_numbers_or_hex_is_false(stored):
    assert auth.check_password("pw", stored) is False


def test_new_token_and_password_shapes():
    tokens = {auth.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert token.startswith("mig_") and len(token) == 4 + 43
    assert auth.token_digest("mig_x") == auth.token_digest("mig_x")
    assert len(auth.token_digest("mig_x")) == 64
    assert auth.token_digest("mig_x") != auth.token_digest("mig_y")
    assert len({auth.new_password() for _ in range(20)}) == 20


# -------------------------------------------------------------------------- CSRF

def test_csrf_tokens_per_user_and_session():
    alice = auth.csrf_token(SECRET, "alice")
    assert alice == auth.csrf_token(SECRET, "alice")  # deterministic
    assert len(alice) == 64 and int(alice, 16) >= 0
    assert alice != auth.csrf_token(SECRET, "bob")
    assert alice != auth.csrf_token(SECRET, "alice", "session1")
    assert alice != auth.csrf_token(b"t" * 32, "alice")
    assert auth.csrf_token(SECRET, "alice", "s1") != auth.csrf_token(SECRET, "alice", "s2")


def test_check_csrf():
    token = auth.csrf_token(SECRET, "alice")
    assert auth.check_csrf(SECRET, "alice", token) is True
    assert auth.check_csrf(SECRET, "bob", token) is False
    assert auth.check_csrf(SECRET, "alice", token, session="other") is False
    assert auth.check_csrf(b"t" * 32, "alice", token) is False
    assert auth.check_csrf(SECRET, "alice", token.upper()) is False
    assert auth.check_csrf(SECRET, "alice", token[:-1]) is False
    assert auth.check_csrf(SECRET, "alice", token + "0") is False
    assert auth.check_csrf(SECRET, "alice", "") is False
    assert auth.check_csrf(SECRET, "alice", None) is False
    session_token = auth.csrf_token(SECRET, "alice", "sess")
    assert auth.check_csrf(SECRET, "alice", session_token, session="sess") is True


def test_check_csrf_uses_constant_time_compare():
    import inspect
    source = inspect.getsource(auth.check_csrf)
    assert "compare_digest" in source
    assert "==" not in source


@pytest.mark.parametrize("token", ["\u00e9", "a" * 63 + "\u00e9"])
def test_check_csrf_non_ascii_token_is_false(token):
    assert auth.check_csrf(SECRET, "alice", token) is False


# ------------------------------------------------------------------------ UserDB

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    state = str(tmp_path_factory.mktemp("state"))
    certs.create_ca(os.path.join(state, "ca"))
    config = mig.config.load(state)
    db = UserDB(PickleStore(config.path("db")), config)
    alice = db.add("alice", password="alice-pw")
    return {"state": state, "config": config, "db": db, "alice": alice}


def fresh_db(world):
    return UserDB(PickleStore(world["config"].path("db")), world["config"])


def test_add_creates_cert_key_p12_and_home(world):
    config, alice = world["config"], world["alice"]
    folder = config.path("users", "alice")
    assert alice["cert"] == os.path.join(folder, "user.crt")
    assert alice["key"] == os.path.join(folder, "user.key")
    assert alice["p12"] == os.path.join(folder, "user.p12")
    for name in ("cert", "key", "p12"):
        assert os.path.isfile(alice[name]) and os.path.getsize(alice[name]) > 0
    assert stat.S_IMODE(os.stat(alice["key"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(alice["p12"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert alice["home"] == os.path.join(config.home_root, "alice")
    assert os.path.isdir(alice["home"])
    assert stat.S_IMODE(os.stat(alice["home"]).st_mode) == 0o700
    assert alice["ca"] == os.path.join(config.state_dir, "ca", "ca.crt")
    assert alice["dn"] == ("/C=DK/ST=NA/L=NA/O=MiG Appliance/OU=NA/CN=alice/"
                           "emailAddress=alice@%s" % config.hostname)
    assert alice["password_plain"] == "alice-pw"
    assert alice["admin"] is False
    assert alice["not_after"] == certs.cert_not_after(alice["cert"])
    # the key belongs to the certificate
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(alice["cert"], alice["key"])


def test_add_generates_password_and_stores_only_hashes(world):
    db = world["db"]
    bob = db.add("bob", admin=True)
    assert bob["admin"] is True
    assert len(bob["password_plain"]) >= 12
    assert db.check_password("bob", bob["password_plain"])
    raw = open(db.store.path(USERS_RECORD), "rb").read()
    assert bob["password_plain"].encode() not in raw
    assert bob["token"].encode() not in raw
    assert world["alice"]["token"].encode() not in raw
    assert db.get("bob")["password"].startswith("scrypt$")


@pytest.mark.parametrize("name", ["Alice", "ALICE", "../x", "", None, "a" * 33, "1abc",
                                  "a b", "a/b", "_x", "-x", ".x", "al\u00efce", "a\x00"])
def test_add_refuses_bad_names(world, name):
    db = world["db"]
    with pytest.raises(ClientError) as info:
        db.add(name, password="x")
    assert "invalid user name" in str(info.value)
    if name:
        assert not os.path.exists(os.path.join(world["config"].home_root, name))
    assert db.names() == sorted(set(db.names()))
    assert name not in db.names()


def test_add_refuses_name_with_trailing_newline(world):
    db = world["db"]
    with pytest.raises(ClientError):
        db.add("eve\n", password="x")
    assert not os.path.exists(world["config"].path("users", "eve\n"))


def test_name_rule():
    assert NAME_RE.match("a" * 32)
    assert not NAME_RE.match("a" * 33)
    for good in ("a", "a1", "a.b", "a_b", "a-b", "x9.-_"):
        assert NAME_RE.match(good)


def test_add_refuses_duplicates(world):
    db = world["db"]
    before = db.get("alice")
    with pytest.raises(ConflictError) as info:
        db.add("alice", password="other")
    assert "already exists" in str(info.value)
    with pytest.raises(ConflictError):
        fresh_db(world).add("alice")
    assert db.get("alice") == before
    assert db.check_password("alice", "alice-pw")


def test_lookups(world):
    db, alice = world["db"], world["alice"]
    assert db.by_dn(alice["dn"]) == "alice"
    assert db.by_dn(alice["dn"].replace("alice", "mallory")) is None
    assert db.by_dn("") is None
    assert db.by_token(alice["token"]) == "alice"
    assert db.by_token(alice["token"] + "x") is None
    assert db.by_token("") is None
    assert db.exists("alice") and not db.exists("nobody")
    with pytest.raises(ClientError):
        db.get("nobody")
    assert "alice" in db.names()


def test_userdb_check_password(world):
    db = world["db"]
    assert db.check_password("alice", "alice-pw") is True
    assert db.check_password("alice", "wrong") is False
    assert db.check_password("alice", "") is False
    assert db.check_password("alice", None) is False
    assert db.check_password("nobody", "alice-pw") is False


def test_new_token(world):
    db = fresh_db(world)
    first = db.new_token("alice", label="ci")
    second = db.new_token("alice")
    assert first != second
    assert db.by_token(first) == "alice"
    assert db.by_token(second) == "alice"
    assert db.by_token(world["alice"]["token"]) == "alice"  # older tokens keep working
    labels = sorted(t["label"] for t in db.get("alice")["tokens"].values())
    assert "ci" in labels and "initial" in labels
    with pytest.raises(ClientError):
        db.new_token("nobody")


def test_set_password(world):
    db = world["db"]
    db.add("carol", password="old-pw")
    db.set_password("carol", "new-pw")
    assert db.check_password("carol", "new-pw") is True
    assert db.check_password("carol", "old-pw") is False
    with pytest.raises(ClientError):
        db.set_password("nobody", "x")
    assert not db.exists("nobody")


def test_second_instance_sees_changes_of_the_first(world):
    first = world["db"]
    second = fresh_db(world)
    assert second.check_password("alice", "alice-pw")  # second has loaded its cache
    names_before = second.names()
    dave = first.add("dave", password="d1")
    assert second.names() == sorted(names_before + ["dave"])
    assert second.by_dn(dave["dn"]) == "dave"
    assert second.by_token(dave["token"]) == "dave"
    first.set_password("dave", "d2")
    assert second.check_password("dave", "d2") is True
    assert second.check_password("dave", "d1") is False
    token = first.new_token("dave")
    assert second.by_token(token) == "dave"
    # and the other way round
    token2 = second.new_token("dave", "from-second")
    assert first.by_token(token2) == "dave"
    second.set_password("dave", "d3")
    assert first.check_password("dave", "d3") is True
