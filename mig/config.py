"""One frozen Config, loaded from the state folder's config.ini plus flags.

This is the only module that reads ``os.environ`` (for ``MIG_STATE``); the
rest of the appliance gets its settings from the Config object it is given.
"""

import configparser
import hashlib
import os
import socket
import tempfile
from dataclasses import dataclass, fields, replace

from mig.errors import ConfigError

DEFAULT_STATE = "mig-state"


@dataclass(frozen=True)
class Config:
    state_dir: str
    port: int = 8443
    bind: str = "127.0.0.1"
    hostname: str = ""  # empty: this host's name
    scheduler_policy: str = "FairFit"
    local_resource: bool = True
    local_slots: int = 0  # 0: one per core
    local_staging: int = -1  # jobs staged ahead of free slots; -1: one per slot
    local_cputime: int = 7 * 86400
    local_runtimeenvs: str = ""
    local_job_user: str = "nobody"  # jobs run as this user when the appliance runs as root
    work_dir: str = ""  # job folders; empty: inside the state folder, or a 0711 temp folder as root
    job_retries: int = 2
    expire_after: int = 365 * 86400
    unfit_expire_after: int = 86400
    handshake_timeout: float = 10.0
    idle_timeout: float = 120.0
    max_upload_mb: int = 4096
    scheduler_tick: float = 5.0
    resource_keepalive: float = 60.0  # seconds between probes of remote resources; 0: none
    users_register_resources: bool = False  # else only admins register resources in the portal

    # -- derived paths -------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    @property
    def home_root(self):
        return self.path("home")

    @property
    def work_root(self):
        """Where local jobs get their folders.

        As root, jobs run as an unprivileged user who must reach its folder but
        never the state folder (mode 0700), so the folders live outside it.
        """
        if self.work_dir:
            return os.path.abspath(self.work_dir)
        if os.geteuid() == 0 and self.local_job_user:
            beside = self.state_dir.rstrip("/") + "-work"
            if _others_may_pass(os.path.dirname(beside)):
                return beside
            digest = hashlib.sha256(self.state_dir.encode()).hexdigest()[:12]
            return os.path.join(tempfile.gettempdir(), "mig-work-%s" % digest)
        return self.path("work")

    @property
    def server_id(self):
        return "%s.0" % self.hostname

    @property
    def url(self):
        host = self.hostname if self.bind in ("0.0.0.0", "::", "") else self.bind
        if ":" in host:
            host = "[%s]" % host
        return "https://%s:%d" % (host, self.port)


def _others_may_pass(folder):
    """Whether every folder from / down to folder lets other users pass through."""
    path = os.path.abspath(folder)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        if path == os.path.dirname(path):
            return True
        path = os.path.dirname(path)


def default_state_dir():
    return os.path.abspath(os.environ.get("MIG_STATE") or DEFAULT_STATE)


_SECTION = "appliance"


def _coerce(name, kind, text):
    if kind is bool:
        return str(text).strip().lower() in ("1", "true", "yes", "on")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError("%s: %r is not a valid %s" % (name, text, kind.__name__)) from None


def load(state_dir=None, **overrides):
    """Config from <state>/config.ini, with non-None overrides (flags) on top."""
    state_dir = os.path.abspath(state_dir or default_state_dir())
    config = Config(state_dir=state_dir)
    parser = configparser.ConfigParser()
    ini = os.path.join(state_dir, "config.ini")
    if os.path.exists(ini):
        try:
            parser.read(ini, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError("%s: %s" % (ini, str(exc).splitlines()[0])) from None
    values = {}
    types = {f.name: type(f.default) for f in fields(Config) if f.name != "state_dir"}
    if parser.has_section(_SECTION):
        for key, text in parser.items(_SECTION):
            if key in types:
                values[key] = _coerce(key, types[key], text)
    for key, value in overrides.items():
        if value is not None and key in types:
            values[key] = _coerce(key, types[key], value)
    if not values.get("hostname"):
        values["hostname"] = socket.gethostname() or "localhost"
    config = replace(config, **values)
    validate(config)
    return config


POLICIES = ("FIFO", "FirstFit", "BestFit", "FairFit")


def validate(config):
    """Refuse settings that cannot work, with the setting named."""
    if config.scheduler_policy.lower() not in [p.lower() for p in POLICIES]:
        raise ConfigError("scheduler_policy %r is not one of %s"
                          % (config.scheduler_policy, ", ".join(POLICIES)))
    if not 0 <= config.port <= 65535:
        raise ConfigError("port %d is not a TCP port" % config.port)
    for name in ("local_slots", "local_cputime", "job_retries", "expire_after",
                 "unfit_expire_after", "max_upload_mb"):
        if getattr(config, name) < 0:
            raise ConfigError("%s must not be negative" % name)
    if config.resource_keepalive < 0:
        raise ConfigError("resource_keepalive must not be negative (0 turns it off)")
    if config.local_staging < -1:
        raise ConfigError("local_staging must be -1 (one per slot), 0 or more")


def write_default(config):
    """Write config.ini with every default setting, so admins can see and edit them.

    Flags given to one command are not saved: they hold for that run only.
    """
    defaults = Config(state_dir=config.state_dir)
    parser = configparser.ConfigParser()
    parser[_SECTION] = {f.name: str(getattr(defaults, f.name))
                        for f in fields(Config) if f.name != "state_dir"}
    ini = config.path("config.ini")
    with open(ini, "w", encoding="utf-8") as handle:
        handle.write("# MiG appliance settings; command-line flags override them.\n")
        parser.write(handle)
