"""The composition root: builds a grid from a state folder.

``init_state`` makes a fresh state folder usable (CA, server certificate,
secret, admin account); ``Grid`` wires the store, accounts, jobs, resources,
the grid daemon and the executors together.  Only this module, cli.py and
web/server.py know how the layers fit.
"""

import json
import os
import secrets
import time

from mig.core import certs, saferegex, sharedfolders, submission, vgridrepo
from mig.core.accounting import Accounting
from mig.core.accounts import Accounts
from mig.core.visibility import Visibility
from mig.core.triggers import TriggerRules
from mig.core.vgridcontent import VGridContent
from mig.core import jobs as J
from mig.core.jobs import JobService
from mig.core.inbox import Inbox
from mig.core.quota import Quota
from mig.core.resourcedb import ResourceDB
from mig.core.resources import LOCAL_EXE, LOCAL_RESOURCE, ResourceRegistry, local_exe_unit
from mig.core.runtimeenvs import RuntimeEnvDB, provided

from mig.core.scheduler import job_vgrids, make_policy, vgrid_match
from mig.core.sweeps import SweepService
from mig.core.users import UserDB
from mig.core.vgrids import VGridDB
from mig.core.keywords import DEFAULT_VGRID
from mig.daemon.checkpoint import CheckpointDaemon
from mig.daemon.gridd import GridDaemon
from mig.daemon.jobnotify import JobNotifier
from mig.daemon.keepalive import KeepAlive
from mig.daemon.mailer import Mailer
from mig.daemon.periodic import Periodic
from mig.daemon.triggerd import TriggerDaemon
from mig.daemon.resourcesync import ResourceSync
from mig.errors import AccessDenied, ClientError, MigError
from mig.execute import sshcontrol
from mig.execute.local import Limits, LocalExecutor
from mig.execute.ssh import SshExecutor
from mig.execute.sshremote import ensure_grid_key
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


HOST_RUNTIMEENVS = "host/runtimeenvs"  # what the appliance host provides, set by admins


class Grid:
    """Every service of one running appliance."""

    def __init__(self, config):
        self.config = config
        saferegex.configure(seconds=config.regex_seconds)
        self.store = PickleStore(config.path("db"))
        with open(config.path("secret.key"), "rb") as handle:
            self.secret = handle.read()
        self.users = UserDB(self.store, config)
        self.quota = Quota(config.user_quota_mb)
        self.jobs = JobService(self.store, config.server_id, config.job_retries)
        self.registry = ResourceRegistry()
        self.vgrids = VGridDB(self.store, self.users, config.path("vgrid_files"))
        self.users.shared_folders = self.shared_folders
        self.runtimeenvs = RuntimeEnvDB(self.store)
        self.registry.defined_runtimeenvs = self.runtimeenvs.names
        local = None
        if config.local_resource:
            runtimeenvs = {r.strip().upper(): {} for r in config.local_runtimeenvs.split(",")
                           if r.strip()}
            runtimeenvs.update(self.store.read(HOST_RUNTIMEENVS, {}))
            vgrids = [v.strip() for v in config.local_vgrids.split(",") if v.strip()]
            local = local_exe_unit(config.state_dir, config.local_slots or None,
                                   config.local_cputime, runtimeenvs,
                                   None if config.local_staging < 0 else config.local_staging,
                                   vgrids or [DEFAULT_VGRID])
            self._vgrid_gate(local)
            self.registry.add(local)
        limits = Limits(processes=config.local_max_processes,
                        default_disk_mb=config.local_default_disk_mb,
                        network=config.local_network, tmp_mb=config.local_job_tmp_mb,
                        fetch_local=config.local_fetch_local)
        self.executors = {"local": LocalExecutor(
            config.work_root, self.users.home_folder, slots=local.slots if local else 0, limits=limits,
            uid_base=config.local_uid_base, uid_count=config.local_uid_count,
            hide=[config.state_dir], may_run=self._is_admin, quota=self.quota)}
        # Registered resources, reached over ssh (native or Slurm), join the
        # scheduler now and follow their records while the grid runs.
        self.resources = ResourceDB(self.store, self.users, sshcontrol.scan_host_key,
                                    config.users_register_resources)
        self.resource_sync = ResourceSync(self.resources, self.registry, self._set_remotes,
                                          tick_seconds=config.scheduler_tick,
                                          vgrid_gate=self._vgrid_gate)
        self.resource_sync.sync()
        self.sweeps = SweepService(self.store, self.jobs)
        self.daemon = GridDaemon(self.jobs, self.registry, make_policy(config.scheduler_policy),
                                 self.executors, expire_after=config.expire_after,
                                 unfit_expire_after=config.unfit_expire_after,
                                 tick_seconds=config.scheduler_tick, sweeps=self.sweeps)
        self.daemon.user_vgrids = self.vgrids.user_vgrids
        self.daemon.runtimeenvs_for = self.runtimeenvs_for
        self.daemon.may_start = self._owner_in_vgrid
        self.resource_sync.on_change = self.daemon.poke
        self.keepalive = KeepAlive(self.registry, self._probe, config.resource_keepalive,
                                   on_change=self.daemon.poke)
        self.inbox = Inbox(self.store)
        self.mailer = Mailer(config.smtp_server, config.smtp_from or "mig@%s" % config.hostname,
                             self.inbox.deliver)
        self.public_url = config.url  # the portal's address, as serve bound it
        self.jobs.add_listener(JobNotifier(self.mailer, self.inbox, self.users,
                                           lambda: self.public_url))
        self.vgrid_content = VGridContent(self.store, self.vgrids)
        self.accounts = Accounts(self.store, self.users, self.vgrids, config.signup_vgrid)
        self.visibility = Visibility(self.store, self.vgrids, self._is_admin)
        self.accounting = Accounting(self.store, self._resource_owners)
        self.jobs.add_listener(self.accounting)
        self.accounting_flush = Periodic("accounting", 5.0, self.accounting.flush,
                                         "accounting flush")
        self.trigger_rules = TriggerRules(self.vgrids)
        self.triggers = TriggerDaemon(self.vgrids, self.trigger_rules, self.submit_as,
                                      self.deliver_message, interval=config.trigger_seconds)
        self.checkpointer = CheckpointDaemon(self.jobs, retention_days=config.job_retention_days,
                                             archive=config.job_retention == "archive")

    def _vgrid_gate(self, unit):
        """Mark the VGrids a unit offers to serve that have not accepted its resource."""
        unit.vgrids_waiting = tuple(v for v in unit.vgrids
                                    if not self.vgrids.has_resource(v, unit.resource))

    def _owner_in_vgrid(self, record, unit):
        """Why a job may not start on unit any more: its owner has left every
        VGrid of the job that meets the unit since submitting it; else None."""
        meeting = [v for v in job_vgrids(record["SPEC"])
                   if any(vgrid_match(v, u) for u in unit.vgrids if u not in unit.vgrids_waiting)]
        if not meeting or any(self.vgrids.is_member(record["OWNER"], v) for v in meeting):
            return None
        return "%s is no longer a member of the VGrid %s" % (record["OWNER"],
                                                             " or ".join(meeting))

    def host_runtimeenvs(self):
        """What the appliance host provides: {runtime environment: {VARIABLE: value}}."""
        local = self.registry.get(LOCAL_RESOURCE + "_" + LOCAL_EXE)
        return dict(local.re_values) if local else {}

    def set_host_runtimeenvs(self, lines, by_user):
        """The admins declare what the appliance host provides (MiG's format);
        checked against the definitions, kept, and the scheduler follows."""
        if not self._is_admin(by_user):
            raise AccessDenied("only the grid's admins declare what the appliance host provides")
        local = self.registry.get(LOCAL_RESOURCE + "_" + LOCAL_EXE)
        if local is None:
            raise ClientError("this grid runs no jobs on its own host (local_resource is off)")
        values = provided(lines)
        problems = self.runtimeenvs.check_provided(values)
        if problems:
            raise ClientError("; ".join(problems))
        self.store.write(HOST_RUNTIMEENVS, values)
        local.runtimeenvs, local.re_values = tuple(values), values
        self.registry.touch()
        self.daemon.poke()

    def _resource_owners(self, resource):
        """Who contributed a resource: its owners (the appliance host: the admins)."""
        try:
            return list(self.resources.get(resource)["OWNERS"])
        except ClientError:
            return [u for u in self.users.names() if self._is_admin(u)]

    def owners_of(self, kind, obj):
        """Who owns a shared object: a job's owner, a runtime environment's
        creator, a resource's owners (the appliance host's: the admins), a
        home folder's owner."""
        if kind == "folder":
            return [sharedfolders.split_folder_id(obj)[0]]
        if kind == "job":
            return [self.jobs.record(obj)["OWNER"]]
        if kind == "runtimeenv":
            return [self.runtimeenvs.get(obj)["CREATOR"]]
        return self._resource_owners(obj)

    def manages_resource(self, user, resource):
        """Its owners and the admins (the appliance host's owners are the admins)."""
        return user in self._resource_owners(resource) or self._is_admin(user)

    def sees(self, user, kind, obj, levels=None):
        """Whether user may see the object (core/visibility.py decides)."""
        try:
            owners = self.owners_of(kind, obj)
        except ClientError:
            owners = []  # offered by name only (local_runtimeenvs): nobody's
        return self.visibility.may_see(user, kind, obj, owners, levels)

    def runtimeenvs_for(self, user):
        """The runtime environments user may see and ask for."""
        levels = self.visibility.levels("runtimeenv")
        known = self.registry.known_runtimeenvs()
        if not levels:  # every one is public (the default): nothing to look up
            return known
        return {n for n in known if self.sees(user, "runtimeenv", n, levels)}

    def trigger_checks(self, name):
        """(how often the VGrid's shared folder was listed for its triggers, when
        last): a rule watches from the first listing after it was added."""
        return self.triggers.checked.get(name, (0, 0.0))

    def submit_as(self, owner, text):
        """Submit a job for owner (a trigger's): checked as any submission; the job id."""
        spec = submission.prepare(self.vgrids.user_vgrids(owner), text,
                                  self.runtimeenvs_for(owner), self.config.job_retries)
        return self.jobs.submit(owner, spec, text)["JOB_ID"]

    def deliver_message(self, user, subject, text, sender=""):
        """A message to a user's inbox, e-mailed too when they saved an address
        and the grid has a mail server."""
        self.inbox.deliver(user, subject, text, sender)
        address = self.users.settings(user).get("email", "")
        if address and self.mailer.enabled:
            self.mailer.send(address, subject, "%s\n\n-- from %s on %s\n"
                             % (text, sender or "the grid", self.public_url))

    @property
    def vgrid_repos(self):
        return self.config.path("vgrid_repos")

    def git_env(self):
        return vgridrepo.git_env(self.vgrid_repos)

    def vgrid_repository(self, user, name, write):
        """The folder name (below vgrid_repos) of a VGrid's git repository, if
        user may read it (push, with write); else AccessDenied."""
        return vgridrepo.open_repository(self.vgrid_repos, self.vgrids, user, name, write)

    def shared_folders(self, user):
        """{name in user's home: (real folder, whether user may write there)} of the
        VGrids' shared folders and the home folders opened to user."""
        return sharedfolders.shared_folders(user, self.vgrids, self.visibility,
                                            self.users.home)

    def vgrids_changed(self):
        """A VGrid's resources changed: the scheduler sees it at once."""
        for unit in self.registry.all():
            self._vgrid_gate(unit)
        self.registry.touch()
        self.daemon.poke()

    def _is_admin(self, name):
        try:
            return self.users.is_admin(name)
        except MigError:
            return False

    def _set_remotes(self, confs):
        """The ssh executor follows the resource records; made with the first one."""
        executor = self.executors.get("ssh")
        if executor is None:
            if not confs:
                return
            ensure_grid_key(self.config.path("ssh"))
            executor = SshExecutor(self.config.path("work-ssh"), self.users.home_folder,
                                   self.config.path("ssh"), {})
            self.executors["ssh"] = executor
        executor.set_resources(confs)

    def remote(self, name):
        """The ssh Remote of a registered resource, after catching up with the records."""
        self.resource_sync.check()
        self.resources.get(name)
        executor = self.executors.get("ssh")
        remote = executor.remotes.get(name) if executor else None
        if remote is None:
            raise ClientError("%s is not known to the running grid yet" % name)
        return remote

    def _probe(self, name):
        """The keep-alive's probe: None when the grid can log in, else why not."""
        try:
            sshcontrol.check(self.executors["ssh"].remotes[name], timeout=30)
        except MigError as exc:
            return exc.message.split(": ", 1)[-1]
        return None

    def check_resource(self, name):
        """Can the grid log in to the resource now?  Raises with the reason if not."""
        remote = self.remote(name)
        sshcontrol.check(remote)
        for unit in self.registry.all():
            if unit.resource == name:
                unit.last_seen = time.time()

    def clean_resource(self, name):
        """Remove the job folders left on the resource, except of jobs running there."""
        running = set()
        for unit in self.registry.all():
            if unit.resource == name:
                running |= set(unit.running)
        sshcontrol.clean(self.remote(name), sorted(running))
        return running

    # -- what backends may ask of the running grid (never its daemon or executors) --
    def scheduling_pass(self):
        """(passes done, when the last one ended): what a waiting job's
        explanation refers to."""
        return self.daemon.passes, self.daemon.last_pass

    def fitting_units(self, record, now=None):
        """The exe units that could run a waiting job (the scheduler's cache)."""
        return self.daemon.fitting_units(record, now)

    def poke_scheduler(self):
        """New work (a sweep, a resubmission): schedule now, not a tick later."""
        self.daemon.poke()

    def run_started(self, record):
        """When an EXECUTING job really started (epoch), 0 while it is handed
        to its resource but waits there, None when nobody can tell."""
        executor = self.executors.get(record.get("EXECUTOR", ""))
        if record["STATUS"] != J.EXECUTING or executor is None:
            return None
        return executor.started_at(record["JOB_ID"])

    def live_output(self, record, suffix="stdout"):
        """The end of a running job's stdout (or stderr), or None where its
        resource cannot show it while it runs."""
        executor = self.executors.get(record.get("EXECUTOR", ""))
        if record["STATUS"] != J.EXECUTING or not hasattr(executor, "live_output"):
            return None
        return executor.live_output(record["JOB_ID"], suffix)

    def local_job_folder(self, job_id):
        """The folder of a job that runs on the embedded local resource now, or None."""
        executor = self.executors.get("local")
        if executor is None or job_id not in executor.running():
            return None
        return os.path.join(executor.work_root, job_id)

    def resources_changed(self):
        """A resource record changed: the running grid follows at once."""
        self.resource_sync.sync()

    def follow_resources(self):
        """Pick up resource records changed by the command line meanwhile."""
        self.resource_sync.check()

    def ssh_public_key(self):
        """The grid's ssh public key, which resource owners authorize."""
        with open(ensure_grid_key(self.config.path("ssh")), encoding="utf-8") as handle:
            return handle.read().strip()

    def start(self):
        self.mailer.start()
        self.daemon.start()
        self.checkpointer.start()
        self.resource_sync.start()
        self.keepalive.start()
        self.triggers.start()
        self.accounting_flush.start()

    def stop(self):
        self.accounting_flush.stop()
        self.accounting.flush()
        self.triggers.stop()
        self.keepalive.stop()
        self.resource_sync.stop()
        self.daemon.stop()
        self.checkpointer.stop()
        self.mailer.stop()
        saferegex.shutdown()

    @property
    def tls_files(self):
        ca = self.config.path("ca")
        return (os.path.join(ca, "server.crt"), os.path.join(ca, "server.key"),
                os.path.join(ca, "ca.crt"), self._extra_client_ca())

    def _extra_client_ca(self):
        extra = self.config.extra_client_ca and self.config.path(self.config.extra_client_ca)
        if extra and not os.path.isfile(extra):
            raise ClientError("extra_client_ca: no such file: %s" % extra)
        return extra

