"""Python client for a MiG appliance: stdlib only, and one file you can copy.

    from mig.client import connect          # or: import client (the downloaded file)
    grid = connect("https://grid.example.org:8443", token="mig_...", ca="ca.crt")
    job_id = grid.submit("::EXECUTE::\\necho hello\\n")
    grid.wait(job_id)
    print(grid.output(job_id))

``connect(local=True)`` gives the same API without a server: jobs run as
local processes through the appliance's own engine (states, job_output
layout, one job per core), so a program is developed offline and moved to
the real grid by changing one argument.  Every failure raises GridError
(with the MiG exit code); AuthenticationError and NotFound are subclasses.
"""

import http.client
import json
import os
import ssl
import tempfile
import time
import urllib.parse

FINAL_STATES = ("FINISHED", "FAILED", "CANCELED", "EXPIRED")


class GridError(Exception):
    """A refusal from the grid: exit_code is MiG's (100 client error, 105 not found...)."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


class AuthenticationError(GridError):
    pass


class NotFound(GridError):
    pass


def _raise_for(objects, exit_code, description):
    errors = [o.get("text", "") for o in objects if o.get("object_type") == "error_text"]
    errors += ["%s: No such file or directory" % o["name"]
               for o in objects if o.get("object_type") == "file_not_found"]
    rows = [r[-1] for o in objects if o.get("object_type") == "table"
            for r in o.get("rows", []) if r and r[-1] and isinstance(r[-1], str)]
    message = "; ".join(errors or rows) or description
    kind = NotFound if exit_code in (105, 404) else \
        AuthenticationError if exit_code == 104 else GridError
    raise kind(message, exit_code)


def _table(objects, kind=None):
    for obj in objects:
        if obj.get("object_type") == "table" and (kind is None or obj.get("kind") == kind):
            return obj
    return {"columns": [], "rows": []}


class _API:
    """The operations, on top of call(); subclasses say how a call travels."""

    def call(self, backend, **fields):
        raise NotImplementedError

    # -- jobs -------------------------------------------------------------------
    def submit(self, job, idempotency_key=None):
        """Submit mRSL text, a JSON-able dict of keywords, or a local .mRSL/.json file."""
        return self.submit_many([job], idempotency_key)[0]

    def submit_many(self, jobs, idempotency_key=None):
        fields = {"mrsltextarea_%d" % i: _job_text(job) for i, job in enumerate(jobs)}
        if idempotency_key:
            fields["idempotency_key"] = idempotency_key
        objects = self.call("textarea", **fields)
        return [row[2] for row in _table(objects, "submitstatuslist")["rows"]]

    def status(self, job_id):
        """The job as a dict: job_id, status, timestamps, exit_codes, message..."""
        objects = self.call("jobstatus", job_id=job_id)
        for obj in objects:
            if obj.get("object_type") == "job_list" and obj["jobs"]:
                return obj["jobs"][0]
        raise NotFound("%s: no such job" % job_id, 105)

    def wait(self, job_id, timeout=None, poll=0.2):
        """Poll until the job is final; returns its status dict."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            status = self.status(job_id)
            if status["status"] in FINAL_STATES:
                return status
            if deadline is not None and time.time() > deadline:
                raise GridError("%s is still %s after %s s" % (job_id, status["status"], timeout))
            time.sleep(poll)

    def _action(self, action, job_id):
        objects = self.call("jobaction", job_id=job_id, action=action)
        return _table(objects, "changedstatusjobs")["rows"][0][2]

    def cancel(self, job_id):
        return self._action("cancel", job_id)

    def freeze(self, job_id):
        return self._action("freeze", job_id)

    def thaw(self, job_id):
        return self._action("thaw", job_id)

    def resubmit(self, job_id):
        """Submit a copy of a job; returns the new job id."""
        return _table(self.call("resubmit", job_id=job_id), "resubmitobjs")["rows"][0][2]

    def output(self, job_id, stream="stdout"):
        """A job's stdout, stderr, status or io-status text."""
        return self.download("job_output/%s/%s.%s" % (job_id, job_id, stream)).decode(
            "utf-8", "replace")

    def outputs(self, job_id):
        return {stream: self.output(job_id, stream)
                for stream in ("stdout", "stderr", "status", "io-status")}

    # -- sweeps and polling ---------------------------------------------------------
    def sweep(self, template, params, mode="product", idempotency_key=None):
        """A parameter sweep: params is {name: [values]} or 'name=v1,v2' lines."""
        if isinstance(params, dict):
            params = "\n".join("%s=%s" % (k, v if isinstance(v, str) else
                                          ",".join(str(x) for x in v))
                               for k, v in params.items())
        fields = {"mrsltextarea_0": _job_text(template), "params": params, "mode": mode}
        if idempotency_key:
            fields["idempotency_key"] = idempotency_key
        return _table(self.call("sweep", **fields), "sweeplist")["rows"][0][0]

    def sweep_status(self, sweep_id):
        table = _table(self.call("sweepstatus", sweep_id=sweep_id), "sweeplist")
        return dict(zip(table["columns"], table["rows"][0]))

    def cancel_sweep(self, sweep_id):
        self.call("sweepaction", sweep_id=sweep_id, action="cancel")

    def changes(self, since=0.0):
        """(now, [(job_id, state)]) of the jobs changed since `since`; pass now next time."""
        objects = self.call("jobchanges", since=repr(float(since)))
        now = float([o["text"] for o in objects if o.get("object_type") == "text"][0].split()[1])
        return now, [(row[0], row[1]) for row in _table(objects, "changedjobs")["rows"]]

    # -- files ------------------------------------------------------------------------
    def ls(self, path="."):
        """Names in a folder of your home."""
        objects = self.call("ls", path=path)
        return [e["name"] for o in objects if o.get("object_type") == "dir_listing"
                for e in o["entries"]]

    def mkdir(self, path, parents=False):
        self.call("mkdir", path=path, flags="p" if parents else "")

    def rm(self, path, recursive=False, force=True):
        self.call("rm", path=path, flags=("r" if recursive else "") + ("f" if force else ""))

    def exists(self, path):
        try:
            self.call("ls", path=path)
            return True
        except NotFound:
            return False


def _job_text(job):
    if isinstance(job, dict):
        return json.dumps(job)
    if isinstance(job, str) and "\n" not in job and job.lower().endswith((".mrsl", ".json")) \
            and os.path.isfile(job):
        with open(job, encoding="utf-8") as handle:
            return handle.read()
    if not isinstance(job, str):
        raise GridError("a job is mRSL text, a dict of keywords or a file name")
    return job


class RemoteGrid(_API):
    """A grid reached over HTTPS with a token or a client certificate."""

    def __init__(self, url, token=None, cert=None, key=None, ca=None, timeout=60.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https":
            raise GridError("the grid's address must start with https://")
        self.host, self.port = parts.hostname, parts.port or 443
        self.token, self.timeout = token, timeout
        self.context = ssl.create_default_context(cafile=ca)
        if cert:
            self.context.load_cert_chain(cert, key)
        elif not token:
            raise AuthenticationError("give a token or a client certificate", 104)
        self.conn = None

    def _request(self, method, path, body=None, headers=None):
        headers = dict(headers or {}, **{"User-Agent": "mig-python-client"})
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in (1, 2):  # one retry on a dropped keep-alive connection
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                                        timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError) as exc:
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise GridError("cannot reach the grid: %s" % exc) from None

    def call(self, backend, **fields):
        body = urllib.parse.urlencode([(k, v) for k, v in fields.items() if v is not None],
                                      doseq=True)
        status, data = self._request("POST", "/api/%s" % backend, body,
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        try:
            objects = json.loads(data)
        except ValueError:
            raise GridError("unexpected reply (HTTP %d): %s" % (status, data[:200])) from None
        head = objects[0] if objects else {}
        code = head.get("exit_code", 1)
        if code != 0:
            _raise_for(objects[1:], code, head.get("description", ""))
        return objects[1:]

    def upload(self, local, remote):
        with open(local, "rb") as handle:
            data = handle.read()
        status, reply = self._request("PUT", "/cert_redirect/" + urllib.parse.quote(remote), data)
        lines = reply.decode("utf-8", "replace").splitlines()
        if status != 200 or not lines or lines[0] != "0":
            raise GridError("upload of %s failed: %s" % (remote, " ".join(lines[1:]) or status))

    def download(self, remote, local=None):
        status, data = self._request("GET", "/cert_redirect/" + urllib.parse.quote(remote))
        if status == 404:
            raise NotFound("%s: No such file or directory" % remote, 105)
        if status != 200:
            raise GridError("download of %s failed: HTTP %d" % (remote, status))
        if local:
            with open(local, "wb") as handle:
                handle.write(data)
        return data

    def close(self):
        if self.conn is not None:
            self.conn.close()


class LocalGrid(_API):
    """The same API run by the appliance's engine in this process: no server."""

    def __init__(self, folder=None, user="me", cores=None):
        from mig import config as cfg
        from mig.appliance import Grid, init_state
        self.temporary = folder is None  # a folder we made is removed again on close
        folder = folder or tempfile.mkdtemp(prefix="mig-local-")
        config = cfg.load(folder, local_slots=cores)
        self.folders = (folder, config.work_root)
        init_state(config)
        self.grid = Grid(config)
        if not self.grid.users.exists(user):
            self.grid.users.add(user)
        self.user = user
        self.grid.start()

    def _context(self):
        from mig.backends import Context
        from mig.backends.catalog import load_all
        from mig.core.home import Home
        load_all()
        return Context(self.user, self.grid, Home(self.grid.users.home(self.user)))

    def call(self, backend, **fields):
        from mig.backends import REGISTRY
        from mig.backends.catalog import load_all
        from mig.errors import MigError
        load_all()
        raw = {k: (v if isinstance(v, list) else [str(v)]) for k, v in fields.items()
               if v not in (None, "")}
        try:
            chosen = REGISTRY[backend]
            result = chosen.run(self._context(), chosen.validate(raw))
        except KeyError:
            raise GridError("no such operation: %s" % backend, 100) from None
        except MigError as exc:
            raise (NotFound if exc.exit_code == 105 else GridError)(exc.message,
                                                                    exc.exit_code) from None
        objects = json.loads(json.dumps(result.objects, default=str))
        if result.exit_code != 0:
            _raise_for(objects, result.exit_code, result.description or "")
        return objects

    def upload(self, local, remote):
        from mig.backends.files import put_file
        from mig.errors import MigError
        with open(local, "rb") as handle:
            try:
                put_file(self._context(), remote, handle, os.path.getsize(local))
            except MigError as exc:
                raise GridError("upload of %s failed: %s" % (remote, " ".join(
                    [exc.message] + exc.details))) from None

    def download(self, remote, local=None):
        from mig.errors import MigError
        try:
            data = self._context().home.read_bytes(remote)
        except MigError as exc:
            raise NotFound(exc.message, 105) from None
        if local:
            with open(local, "wb") as handle:
                handle.write(data)
        return data

    def close(self):
        self.grid.stop()
        if self.temporary:
            import shutil
            for folder in self.folders:
                shutil.rmtree(folder, ignore_errors=True)


def connect(url=None, local=False, **options):
    """A RemoteGrid for url, or a LocalGrid when local is true."""
    if local:
        return LocalGrid(**options)
    if not url:
        raise GridError("give the grid's https:// address, or local=True")
    return RemoteGrid(url, **options)
