"""User accounts: certificates signed by the appliance CA, passwords, tokens.

The account database is one record, changed only under its lock, so the
CLI can add users while the server runs; the server notices the change by
the record's modification time.
"""

import os
import re
import shutil
import threading
import time

from mig.core import auth, certs
from mig.core.home import Home
from mig.errors import ClientError, ConflictError, SystemFailure

USERS_RECORD = "users/db"
NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")


def user_subject(name, hostname):
    return {"C": "DK", "ST": "NA", "L": "NA", "O": "MiG Appliance", "OU": "NA",
            "CN": name, "emailAddress": "%s@%s" % (name, hostname)}


class UserDB:
    """Accounts by name, by certificate DN and by API token."""

    def __init__(self, store, config):
        self.store = store
        self.config = config
        self.lock = threading.Lock()
        self._users = {}
        self._version = ()
        self._by_dn = {}
        self._by_token = {}
        self._homes = {}
        self.shared_folders = lambda name: {}  # the grid sets: a user's VGrid shared folders

    # -- cross-process cache ----------------------------------------------------
    def _refresh(self):
        version = self.store.version(USERS_RECORD)
        if version != self._version:
            with self.lock:
                users = self.store.read(USERS_RECORD, {})
                self._users = users
                self._by_dn = {u["dn"]: n for n, u in users.items()}
                self._by_dn.update({u["external_dn"]: n for n, u in users.items()
                                    if u.get("external_dn")})
                self._by_token = {d: n for n, u in users.items() for d in u.get("tokens", {})}
                self._version = version
        return self._users

    def _change(self, change):
        result = self.store.update(USERS_RECORD, lambda users: change(users) or users, {})
        self._version = ()
        return result

    # -- queries -------------------------------------------------------------------
    def names(self):
        return sorted(self._refresh())

    def get(self, name):
        user = self._refresh().get(name)
        if user is None:
            raise ClientError("no such user: %s" % name)
        return user

    def is_admin(self, name):
        """Whether the user is one of the grid's admins (ClientError: no such user)."""
        return bool(self.get(name).get("admin"))

    def exists(self, name):
        return name in self._refresh()

    def by_dn(self, dn):
        self._refresh()
        return self._by_dn.get(dn)

    def by_cert(self, dn, issuer):
        """The user a verified client certificate belongs to: its DN must be the
        user's and its issuer the CA that DN is registered with (the grid's own
        CA, or the other CA of a certificate the user signed up with), so that
        another trusted CA cannot name a user of ours."""
        name = self.by_dn(dn)
        if name is None:
            return None
        user = self._users[name]
        if dn == user.get("external_dn"):
            return name if issuer == user.get("external_issuer") else None
        return name if issuer == self.own_ca_dn() else None

    def own_ca_dn(self):
        if getattr(self, "_own_ca_dn", None) is None:
            self._own_ca_dn = certs.subject_dn(self.config.path("ca", "ca.crt"))
        return self._own_ca_dn

    def set_external_cert(self, name, dn, issuer):
        """Let a certificate of another CA (one of extra_client_ca) log the user in."""
        def change(users):
            if any(dn in (u["dn"], u.get("external_dn")) for u in users.values()):
                raise ConflictError("the certificate %s belongs to an account already" % dn)
            users[name]["external_dn"], users[name]["external_issuer"] = dn, issuer
        self._change(change)

    def named(self, who):
        """A user's name from their name or certificate DN (MiG's cert_id)."""
        if self.exists(who):
            return who
        name = self.by_dn(who)
        if name is None:
            raise ClientError("no such user: %s" % who)
        return name

    def by_token(self, token):
        self._refresh()
        return self._by_token.get(auth.token_digest(token))

    def check_password(self, name, password):
        """Unknown names and empty passwords cost one scrypt too: the answer's
        timing does not tell which user names exist."""
        user = self._refresh().get(name)
        stored = user["password"] if user else auth.DUMMY_HASH
        matches = auth.check_password(password or "", stored)
        return bool(user and password and matches and not user.get("disabled"))

    def session_epoch(self, name):
        """Moves on with every password change, ending older browser sessions;
        None for no such user."""
        user = self._refresh().get(name)
        return None if user is None else user.get("epoch", 0)

    # -- paths ----------------------------------------------------------------------
    def home(self, name):
        return os.path.join(self.config.home_root, name)

    def home_folder(self, name):
        """The user's Home (path confinement), its real path looked up once, with
        the shared folders of the user's VGrids as they are now."""
        home = self._homes.get(name)
        if home is None:
            home = self._homes[name] = Home(self.home(name))
        home.shared = self.shared_folders(name)
        return home

    def cert_dir(self, name):
        return self.config.path("users", name)

    # -- changes ----------------------------------------------------------------------
    def add(self, name, password=None, admin=False):
        """Create the account, its home, certificate, PKCS#12 file and first token."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ClientError("invalid user name %r: use 1-32 lower-case letters, digits, "
                              "'.', '_' or '-', starting with a letter" % name)
        if self.exists(name):
            raise ConflictError("user %s already exists" % name)
        password = password or auth.new_password()
        p12_password = auth.new_password()
        token = auth.new_token()
        folder = self.cert_dir(name)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        ca = self.config.path("ca")
        try:
            issued = certs.create_client_cert(
                os.path.join(ca, "ca.crt"), os.path.join(ca, "ca.key"), folder,
                user_subject(name, self.config.hostname), p12_password)
        except certs.CertError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise SystemFailure("could not make a certificate for %s: %s" % (name, exc)) from None
        home = self.home(name)
        os.makedirs(home, mode=0o700, exist_ok=True)
        record = {"name": name, "dn": issued["dn"], "password": auth.hash_password(password),
                  "admin": bool(admin), "created": time.time(), "cert": issued["cert"],
                  "key": issued["key"], "p12": issued["p12"], "p12_password": p12_password,
                  "not_after": issued["not_after"],
                  "tokens": {auth.token_digest(token): {"label": "initial", "created": time.time()}}}

        def insert(users):
            if name in users:
                raise ConflictError("user %s already exists" % name)
            users[name] = record
        self._change(insert)
        return dict(record, password_plain=password, token=token, home=home,
                    ca=os.path.join(ca, "ca.crt"))

    def set_password(self, name, password):
        self.get(name)
        hashed = auth.hash_password(password)

        def change(users):
            users[name]["password"] = hashed
            users[name]["epoch"] = users[name].get("epoch", 0) + 1
        self._change(change)

    def settings(self, name):
        return dict(self.get(name).get("settings", {}))

    def save_settings(self, name, **values):
        self.get(name)

        def change(users):
            users[name].setdefault("settings", {}).update(values)
        self._change(change)

    def tokens(self, name):
        """[(id, label, created)]: the id is a prefix of the token's hash, never the token."""
        return sorted(((digest[:12], info.get("label", ""), info.get("created", 0))
                       for digest, info in self.get(name).get("tokens", {}).items()),
                      key=lambda t: t[2])

    def revoke_token(self, name, token_id):
        if not token_id or len(token_id) < 8:
            raise ClientError("no such token")

        def change(users):
            tokens = users[name].get("tokens", {})
            matches = [d for d in tokens if d.startswith(token_id)]
            if len(matches) != 1:
                raise ClientError("no such token: %s" % token_id)
            del tokens[matches[0]]
        self._change(change)

    def set_password_hash(self, name, hashed):
        """Take a password already hashed (an accepted account request's)."""
        self.get(name)

        def change(users):
            users[name]["password"] = hashed
        self._change(change)

    def set_disabled(self, name, disabled):
        """A disabled account logs in no way (certificate, token, password); its
        browser sessions end.  Its jobs and files stay."""
        self.get(name)

        def change(users):
            users[name]["disabled"] = bool(disabled)
            users[name]["epoch"] = users[name].get("epoch", 0) + 1
        self._change(change)

    def remove(self, name):
        """Forget the account (its certificate and tokens no longer log in); the
        caller deals with its home, jobs and VGrid roles first."""
        self.get(name)

        def change(users):
            del users[name]
        self._change(change)
        self._homes.pop(name, None)

    def renew_cert(self, name):
        """A new certificate (same DN, a new key and expiry) and PKCS#12 file."""
        user = self.get(name)
        p12_password = auth.new_password()
        ca = self.config.path("ca")
        try:
            issued = certs.create_client_cert(
                os.path.join(ca, "ca.crt"), os.path.join(ca, "ca.key"), self.cert_dir(name),
                user_subject(name, self.config.hostname), p12_password)
        except certs.CertError as exc:
            raise SystemFailure("could not renew the certificate of %s: %s" % (name, exc)) \
                from None
        if issued["dn"] != user["dn"]:
            raise SystemFailure("the renewed certificate of %s has another DN" % name)

        def change(users):
            users[name].update(cert=issued["cert"], key=issued["key"], p12=issued["p12"],
                               p12_password=p12_password, not_after=issued["not_after"])
        self._change(change)
        return issued["not_after"]

    def revoke_all_tokens(self, name):
        """Revoke every API token of the user; returns how many there were."""
        self.get(name)
        count = []

        def change(users):
            count.append(len(users[name].get("tokens", {})))
            users[name]["tokens"] = {}
        self._change(change)
        return count[0]

    def new_token(self, name, label="token"):
        self.get(name)
        token = auth.new_token()

        def change(users):
            users[name].setdefault("tokens", {})[auth.token_digest(token)] = {
                "label": label, "created": time.time()}
        self._change(change)
        return token
