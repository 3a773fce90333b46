"""One frozen Config, loaded from the state folder's config.ini plus flags.

Settings come from here only: the rest of the appliance gets them from the
Config object it is given.  The environment is read here for ``MIG_STATE``;
elsewhere only for what is not a setting: ``MIG_CERT_BACKEND`` (a test
switch in ``core/certs.py``) and the safe variables handed to local jobs.
"""

import configparser
import os
import socket
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
    local_vgrids: str = ""  # comma-separated VGrids the local resource serves; empty: Generic
    local_uid_base: int = 0  # as root, jobs run under uids from here on; 0: derived per state folder
    local_uid_count: int = 65536  # how many uids the range holds
    local_max_processes: int = 256  # processes and threads one job may have at once
    local_default_disk_mb: int = 10240  # a job folder's limit when the job's DISK is 0
    local_job_tmp_mb: int = 256  # the private /tmp, /var/tmp and /dev/shm of each slot
    local_network: bool = False  # whether local jobs may use the network
    local_fetch_local: bool = False  # whether input URLs may name loopback or this host
    user_quota_mb: int = 0  # what job outputs may fill of each home; 0: no quota
    work_dir: str = ""  # job folders; empty: beside the state folder as root, else inside it
    job_retries: int = 2
    expire_after: int = 365 * 86400
    job_retention_days: int = 0  # final jobs older than this leave the hot index; 0: never
    job_retention: str = "archive"  # archive (still found, slower) or purge (deleted)
    unfit_expire_after: int = 86400
    handshake_timeout: float = 10.0
    idle_timeout: float = 120.0
    request_head_timeout: float = 20.0  # a request line and headers must arrive within this
    max_connections: int = 256  # open HTTPS connections; more are closed at once
    max_upload_mb: int = 4096
    scheduler_tick: float = 5.0
    resource_keepalive: float = 60.0  # seconds between probes of remote resources; 0: none
    users_register_resources: bool = False  # else only admins register resources in the portal
    trigger_seconds: float = 2.0  # how often the VGrids' shared folders are checked for triggers
    signup_vgrid: str = ""  # its owners answer account requests too; accepted people join it
    extra_client_ca: str = ""  # PEM file of other CAs whose users may sign up with their certificate
    smtp_server: str = ""  # host:port of the mail server for notifications; empty: the inbox only
    smtp_from: str = ""  # the From address; empty: mig@HOSTNAME
    regex_seconds: float = 2.0  # a user's pattern (grep, VERIFYFILES) is stopped after this

    # -- derived paths -------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    @property
    def home_root(self):
        return self.path("home")

    @property
    def work_root(self):
        """Where local jobs get their folders.

        As root, beside the state folder where the folders above let jobs
        pass (they run under their own uids), else inside it.
        """
        if self.work_dir:
            return os.path.abspath(self.work_dir)
        if os.geteuid() == 0:
            beside = self.state_dir.rstrip("/") + "-work"
            if _others_may_pass(os.path.dirname(beside)):
                return beside
        # Jobs reach folders in here through their launcher's view (see
        # execute/launcher.py), never through a folder in a shared place.
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
                 "unfit_expire_after", "max_upload_mb", "user_quota_mb", "local_uid_base",
                 "local_default_disk_mb", "local_job_tmp_mb", "job_retention_days"):
        if getattr(config, name) < 0:
            raise ConfigError("%s must not be negative" % name)
    if config.request_head_timeout <= 0 or config.max_connections < 1:
        raise ConfigError("request_head_timeout and max_connections must be more than 0")
    if config.resource_keepalive < 0:
        raise ConfigError("resource_keepalive must not be negative (0 turns it off)")
    if config.regex_seconds <= 0:
        raise ConfigError("regex_seconds must be more than 0")
    if config.local_max_processes < 2 or config.local_uid_count < 1:
        raise ConfigError("local_max_processes must be 2 or more and local_uid_count 1 or more")
    if config.job_retention not in ("archive", "purge"):
        raise ConfigError("job_retention %r must be archive or purge" % config.job_retention)
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
