"""The composition root: builds a grid from a state folder.

``init_state`` makes a fresh state folder usable (CA, server certificate,
secret, admin account); ``Grid`` wires the store, accounts, jobs, resources,
the grid daemon and the executors together.  Only this module, cli.py and
web/server.py know how the layers fit.
"""

import json
import os
import secrets

from mig.core import certs
from mig.core.jobs import JobService
from mig.core.resconf import exe_units
from mig.core.resourcedb import ResourceDB
from mig.core.resources import ResourceRegistry, local_exe_unit
from mig.core.scheduler import make_policy
from mig.core.sweeps import SweepService
from mig.core.users import UserDB
from mig.daemon.checkpoint import CheckpointDaemon
from mig.daemon.gridd import GridDaemon
from mig.execute.local import LocalExecutor
from mig.execute.ssh import SshExecutor, ensure_grid_key
from mig.store.pickledb import PickleStore, atomic_write_bytes
from mig import config as cfg

ADMIN = "admin"


def server_names(config):
    names = ["localhost", "127.0.0.1", "::1", config.hostname]
    if config.bind not in ("", "0.0.0.0", "::"):
        names.append(config.bind)
    unique = []
    for name in names:
        if name and name.lower() not in [n.lower() for n in unique]:
            unique.append(name)
    return unique


def init_state(config):
    """Create what a fresh state folder needs; safe to call on every start.

    Returns the admin's first credentials when it created the account, else None.
    """
    os.makedirs(config.state_dir, mode=0o700, exist_ok=True)
    os.chmod(config.state_dir, 0o700)
    store = PickleStore(config.path("db"))
    with store.lock("init"):
        if not os.path.exists(config.path("config.ini")):
            cfg.write_default(config)
        ca_dir = config.path("ca")
        os.makedirs(ca_dir, mode=0o700, exist_ok=True)
        ca_crt, ca_key = os.path.join(ca_dir, "ca.crt"), os.path.join(ca_dir, "ca.key")
        if not (os.path.exists(ca_crt) and os.path.exists(ca_key)):
            certs.create_ca(ca_dir, "MiG Appliance CA %s" % config.hostname)
        names = server_names(config)
        names_file = os.path.join(ca_dir, "server.names")
        known = open(names_file, encoding="utf-8").read().split() if os.path.exists(
            names_file) else []
        if sorted(known) != sorted(names) or not os.path.exists(
                os.path.join(ca_dir, "server.crt")):
            certs.create_server_cert(ca_crt, ca_key, ca_dir, names)
            atomic_write_bytes(names_file, " ".join(names).encode())
        secret_file = config.path("secret.key")
        if not os.path.exists(secret_file):
            atomic_write_bytes(secret_file, secrets.token_bytes(32))
        users = UserDB(store, config)
        if users.names():
            return None
        created = users.add(ADMIN, admin=True)
        credentials = {"user": ADMIN, "password": created["password_plain"],
                       "token": created["token"], "cert": created["cert"],
                       "key": created["key"], "p12": created["p12"],
                       "p12_password": created["p12_password"], "ca": created["ca"]}
        text = "\n".join("%s: %s" % item for item in credentials.items()) + "\n"
        atomic_write_bytes(config.path("admin-credentials.txt"), text.encode())
        atomic_write_bytes(config.path("admin-credentials.json"),
                           json.dumps(credentials, indent=1).encode())
        return credentials


class Grid:
    """Every service of one running appliance."""

    def __init__(self, config):
        self.config = config
        self.store = PickleStore(config.path("db"))
        with open(config.path("secret.key"), "rb") as handle:
            self.secret = handle.read()
        self.users = UserDB(self.store, config)
        self.jobs = JobService(self.store, config.server_id, config.job_retries)
        self.registry = ResourceRegistry()
        run_as = config.local_job_user if os.geteuid() == 0 else ""
        local = None
        if config.local_resource:
            runtimeenvs = [r.strip().upper() for r in config.local_runtimeenvs.split(",")
                           if r.strip()]
            local = local_exe_unit(config.state_dir, config.local_slots or None,
                                   config.local_cputime, runtimeenvs,
                                   None if config.local_staging < 0 else config.local_staging)
            self.registry.add(local)
        self.executors = {"local": LocalExecutor(config.work_root, self.users.home, run_as,
                                                 slots=local.slots if local else 0)}
        self._add_ssh_resources(config)
        self.sweeps = SweepService(self.store, self.jobs)
        self.daemon = GridDaemon(self.jobs, self.registry, make_policy(config.scheduler_policy),
                                 self.executors, expire_after=config.expire_after,
                                 unfit_expire_after=config.unfit_expire_after,
                                 tick_seconds=config.scheduler_tick, sweeps=self.sweeps)
        self.checkpointer = CheckpointDaemon(self.jobs)

    def _add_ssh_resources(self, config):
        """Registered resources, reached over ssh (native or Slurm), join the scheduler."""
        remote = {}
        resources = ResourceDB(self.store)
        for name in resources.names():
            conf = resources.get(name)["CONF"]
            remote[name] = conf  # native and slurm both go through ssh
        if remote:
            ensure_grid_key(config.path("ssh"))
            self.executors["ssh"] = SshExecutor(config.path("work-ssh"), self.users.home,
                                                config.path("ssh"), remote)
            for name, conf in remote.items():
                for unit in exe_units(name, conf, "ssh"):
                    self.registry.add(unit)

    def start(self):
        self.daemon.start()
        self.checkpointer.start()

    def stop(self):
        self.daemon.stop()
        self.checkpointer.stop()

    @property
    def tls_files(self):
        ca = self.config.path("ca")
        return (os.path.join(ca, "server.crt"), os.path.join(ca, "server.key"),
                os.path.join(ca, "ca.crt"))

