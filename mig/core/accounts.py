"""Accounts beyond the admin's ``user add``: people ask for an account and an
admin accepts or rejects; passwords are reset through a link mailed to the
address saved on the Settings page; admins disable, enable and remove
accounts.

A request keeps the hash of the password the person chose, never the
password.  A reset link holds a random token of which only the digest is
kept; it works once, for an hour.
"""

import os
import re
import secrets
import time

from mig.core import auth
from mig.core.users import NAME_RE
from mig.errors import AccessDenied, ClientError, ConflictError, InvalidArgument

REQUESTS = "accountrequests"
RESETS = "passwordresets"
MAX_REQUESTS = 500
RESET_SECONDS = 3600
EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}$")
MIN_PASSWORD = 10


def check_password_strength(password):
    if len(password or "") < MIN_PASSWORD:
        raise InvalidArgument("password: at least %d characters" % MIN_PASSWORD)
    return password


class Accounts:
    """users: the UserDB; store: the PickleStore; vgrids: the VGridDB; signup_vgrid:
    a VGrid whose owners answer account requests too, and which accepted people
    join (empty: the admins alone)."""

    def __init__(self, store, users, vgrids=None, signup_vgrid=""):
        self.store, self.users = store, users
        self.vgrids, self.signup_vgrid = vgrids, signup_vgrid

    def may_answer(self, user):
        """The admins, and the owners of the signup VGrid."""
        if self.users.is_admin(user):
            return True
        return bool(self.signup_vgrid and self.vgrids is not None and
                    self.vgrids.exists(self.signup_vgrid) and
                    self.vgrids.is_owner(user, self.signup_vgrid))

    def answerers(self):
        """Who is told of a new account request."""
        return [u for u in self.users.names() if self.may_answer(u)]

    # -- requests ----------------------------------------------------------------------
    def request(self, name, full_name, email, organization, comment, password, cert=None):
        """A person asks for an account; cert: (DN, issuer DN) of the client
        certificate they presented (verified by the TLS layer), which the
        account will log in with; then a password is optional."""
        name = (name or "").strip()
        if not NAME_RE.fullmatch(name):
            raise InvalidArgument("user name: 1-32 lower-case letters, digits, '.', '_' or "
                                  "'-', starting with a letter")
        if not EMAIL.match(email or ""):
            raise InvalidArgument("email: an e-mail address, so that you hear the answer")
        if password or not cert:
            check_password_strength(password)
        if cert and self.users.by_dn(cert[0]):
            raise ConflictError("your certificate belongs to an account already: log in "
                                "with it")
        entry = {"id": secrets.token_hex(8), "name": name, "time": time.time(),
                 "full_name": " ".join((full_name or "").split())[:100],
                 "email": email, "organization": " ".join((organization or "").split())[:100],
                 "comment": (comment or "")[:2000],
                 "password": auth.hash_password(password) if password else None,
                 "cert": tuple(cert) if cert else None}

        def change(requests):
            requests = list(requests or [])
            if self.users.exists(name) or any(r["name"] == name for r in requests):
                raise ConflictError("the user name %s is taken: choose another" % name)
            if cert and any(r.get("cert") and r["cert"][0] == cert[0] for r in requests):
                raise ConflictError("an account request with your certificate waits already")
            if len(requests) >= MAX_REQUESTS:
                raise ClientError("too many account requests wait: try again later")
            return requests + [entry]
        self.store.update(REQUESTS, change, [])
        return entry

    def requests(self):
        return list(self.store.read(REQUESTS, []))

    def _take(self, request_id):
        taken = {}

        def change(requests):
            kept = []
            for r in requests or []:
                if r["id"] == request_id:
                    taken["request"] = r
                else:
                    kept.append(r)
            if not taken:
                raise ClientError("no such account request: %s" % request_id)
            return kept
        self.store.update(REQUESTS, change, [])
        return taken["request"]

    def accept(self, request_id, by_admin):
        """Create the account with the chosen password and the given e-mail address."""
        self._admin(by_admin)
        request = self._take(request_id)
        made = self.users.add(request["name"])
        if request.get("cert"):
            self.users.set_external_cert(request["name"], *request["cert"])
        if request["password"]:
            self.users.set_password_hash(request["name"], request["password"])
        self.users.save_settings(request["name"], email=request["email"],
                                 full_name=request["full_name"],
                                 organization=request["organization"])
        if self.signup_vgrid and self.vgrids is not None and \
                self.vgrids.exists(self.signup_vgrid) and \
                not self.vgrids.is_member(request["name"], self.signup_vgrid):
            self.vgrids.add(self.signup_vgrid, "MEMBERS", request["name"], by_admin)
        return request, made

    def reject(self, request_id, by_admin):
        self._admin(by_admin)
        return self._take(request_id)

    def _admin(self, user):
        if not self.may_answer(user):
            raise AccessDenied("only the grid's admins%s answer account requests" % (
                " and the owners of %s" % self.signup_vgrid if self.signup_vgrid else ""))

    def _only_admins(self, user):
        if not self.users.is_admin(user):
            raise AccessDenied("only the grid's admins remove accounts")

    # -- disabling and removing ---------------------------------------------------------
    def remove(self, name, by_admin, vgrids, pending_jobs, keep_root):
        """Remove an account: refused while it has jobs waiting or running, or is
        the only owner of a VGrid.  Its direct VGrid roles and trigger rules go;
        its home is moved to keep_root/NAME-TIME for the admins (nothing is
        deleted); its certificate and tokens no longer log in."""
        if by_admin == name:
            raise ClientError("you cannot remove your own account")
        self._only_admins(by_admin)
        self.users.get(name)
        if pending_jobs:
            raise ClientError("%s has %d job(s) waiting or running: cancel them first"
                              % (name, pending_jobs))
        vgrids.forget_user(name)
        home = self.users.home(name)
        self.users.remove(name)
        if os.path.isdir(home):
            os.makedirs(keep_root, mode=0o700, exist_ok=True)
            os.rename(home, os.path.join(keep_root, "%s-%d" % (name, time.time())))

    # -- password reset ----------------------------------------------------------------
    def reset_token(self, name):
        """A new one-time token for name's reset link (None when name has no account
        or no saved address: the caller answers the same either way)."""
        if not self.users.exists(name) or not self.users.settings(name).get("email"):
            return None
        token = secrets.token_urlsafe(32)
        digest = auth.token_digest(token)
        now = time.time()

        def change(resets):
            resets = {d: r for d, r in (resets or {}).items() if r["expires"] > now}
            resets[digest] = {"user": name, "expires": now + RESET_SECONDS}
            return resets
        self.store.update(RESETS, change, {})
        return token

    def reset(self, token, password):
        """Set a new password with a reset token (once); the user's name."""
        check_password_strength(password)
        digest, now, found = auth.token_digest(token or ""), time.time(), {}

        def change(resets):
            resets = {d: r for d, r in (resets or {}).items() if r["expires"] > now}
            entry = resets.pop(digest, None)
            if entry is None:
                raise AccessDenied("this reset link is not valid (used, expired or mistyped):"
                                   " ask for a new one")
            found["user"] = entry["user"]
            return resets
        self.store.update(RESETS, change, {})
        self.users.set_password(found["user"], password)
        return found["user"]
