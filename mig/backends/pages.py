"""Settings and the listing pages: Resources, Runtime Envs, VGrids, People,
Downloads and the built-in Docs.  Their management features arrive with
their own issues; the pages show what exists now."""

import importlib.resources

from mig.backends import Field, backend, truthy
from mig.backends.jobs import asctime, live
from mig.backends.portal import page_url, reach_summary, visible_units
from mig.backends.submitpages import refused
from mig.backends.scripts import download_objects as script_download_objects
from mig.core import keywords, scheduler
from mig.core import jobs as J
from mig.errors import ClientError, InvalidArgument, MigError
from mig.render import objects as O

MIN_PASSWORD = 8


def _password_problems(ctx, args):
    """{field: (MiG's wording for scripts, words for people)}: every problem at once."""
    missing = {"current": "Type your current password.", "password": "Type a new password.",
               "repeat": "Type the new password a second time."}
    problems = {name: ("missing required field: %s" % name, words)
                for name, words in missing.items() if not args[name]}
    if args["current"] and not ctx.grid.users.check_password(ctx.user, args["current"]):
        problems["current"] = ("the current password is wrong; nothing changed",
                               "This is not your current password: type it again.")
    if args["password"] and len(args["password"]) < MIN_PASSWORD:
        problems["password"] = ("a password needs at least %d characters; nothing changed"
                                % MIN_PASSWORD, "Too short: a password needs at least %d "
                                                "characters." % MIN_PASSWORD)
    elif args["password"] and args["repeat"] and args["password"] != args["repeat"]:
        problems["repeat"] = ("the new passwords differ; nothing changed",
                              "This differs from the new password: type the same twice.")
    return problems


def _settings_objects(ctx, message=None, problems=None, revoke=False):
    """The Settings page; problems ({field: message}) mark the password form's
    fields after a refused change (passwords are never sent back)."""
    users = ctx.grid.users
    settings = users.settings(ctx.user)
    problems = problems or {}
    objects = []
    if message:
        objects.append(message)
    objects.append(O.header("Password"))
    objects.append({"object_type": "form", "action": "changepassword", "submit": "Change password",
                    "problems_title": "Your password was not changed",
                    "fields": [
                        {"name": "current", "label": "Current password", "type": "password",
                         "autocomplete": "current-password", "error": problems.get("current")},
                        {"name": "password", "label": "New password", "type": "password",
                         "autocomplete": "new-password", "error": problems.get("password"),
                         "help": "at least %d characters" % MIN_PASSWORD},
                        {"name": "repeat", "label": "New password again", "type": "password",
                         "autocomplete": "new-password", "error": problems.get("repeat")},
                        {"name": "revoke_tokens", "type": "checkbox", "value": revoke,
                         "label": "Also revoke all my API tokens",
                         "help": "your other browser sessions end in any case"}]})
    objects.append(O.header("API tokens"))
    rows = [(token_id, label, asctime(created),
             {"post": "revoketoken", "fields": {"token_id": token_id}, "text": "Revoke",
              "confirm": "Revoke this token? Scripts using it stop working."})
            for token_id, label, created in users.tokens(ctx.user)]
    table = O.table("tokens", ("Id", "Label", "Created (UTC)", ""), rows)
    table["empty"] = "No tokens."
    objects.append(table)
    objects.append({"object_type": "form", "action": "newtoken", "submit": "Make a new token",
                    "fields": [{"name": "label", "label": "Label", "value": "script",
                                "help": "to tell your tokens apart"}]})
    objects.append(O.header("Notifications and default job"))
    objects.append({"object_type": "form", "action": "savesettings", "submit": "Save",
                    "fields": [
                        {"name": "email", "label": "Notification address", "type": "email",
                         "value": settings.get("email", ""),
                         "help": "used for NOTIFY SETTINGS in jobs"},
                        {"name": "default_job", "label": "Default job", "type": "textarea",
                         "value": _default_job(ctx), "rows": 8,
                         "help": "shown first on the Submit Job text page"}]})
    return objects


def _default_job(ctx):
    try:
        with open(ctx.home.resolve(".default.mrsl"), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


@backend("settings", title="Settings", header="Settings")
def settings(ctx, args):
    """Your password, API tokens, notification address and default job."""
    return O.Result(_settings_objects(ctx))


@backend("changepassword", title="Settings", header="Settings", state_changing=True,
         fields={"current": Field("text", help="your current password (required)"),
                 "password": Field("text", help="the new password (required)"),
                 "repeat": Field("text", help="the new password again (required)"),
                 "revoke_tokens": Field("bool", help="also revoke all your API tokens")})
def changepassword(ctx, args):
    """Change your login password (needs the current one); ends your other sessions.
    A refused change shows the form again with every problem next to its field."""
    users = ctx.grid.users
    revoke = truthy(args["revoke_tokens"])
    problems = _password_problems(ctx, args)
    if problems:
        missing = any(wire.startswith("missing required") for wire, _ in problems.values())
        error = InvalidArgument("") if missing else ClientError("")
        return refused(_settings_objects(ctx, problems={k: words for k, (_, words)
                                                        in problems.items()}, revoke=revoke),
                       error, [wire for wire, _ in problems.values()])
    users.set_password(ctx.user, args["password"])  # ends every session of the user ...
    ctx.end_other_sessions()  # ... but this one (the web layer knows which)
    text = "Your password was changed. Your other sessions were ended."
    if revoke:
        count = users.revoke_all_tokens(ctx.user)
        text += " %d API token%s revoked." % (count, " was" if count == 1 else "s were")
    return O.Result(_settings_objects(ctx, O.success(text)))


@backend("newtoken", title="Settings", header="Settings", state_changing=True,
         fields={"label": Field("word", default=("token",))})
def newtoken(ctx, args):
    """Make a new API token; it is shown once."""
    token = ctx.grid.users.new_token(ctx.user, args["label"] or "token")
    return O.Result(_settings_objects(ctx, O.success(
        "Your new token (shown only now): %s  Use it as 'Authorization: Bearer TOKEN'."
        % token)) + [{"object_type": "token", "token": token}])


@backend("revoketoken", title="Settings", header="Settings", state_changing=True,
         fields={"token_id": Field("word", required=True)})
def revoketoken(ctx, args):
    """Revoke one of your API tokens."""
    ctx.grid.users.revoke_token(ctx.user, args["token_id"])
    return O.Result(_settings_objects(ctx, O.success("The token was revoked.")))


@backend("savesettings", title="Settings", header="Settings", state_changing=True,
         fields={"email": Field("text"), "default_job": Field("text")})
def savesettings(ctx, args):
    """Save your notification address and default job."""
    email = args["email"].strip()
    if email and ("@" not in email or any(c in email for c in " <>\"'\n")):
        raise ClientError("%r is not an e-mail address" % email)
    ctx.grid.users.save_settings(ctx.user, email=email)
    if args["default_job"].strip():
        with open(ctx.home.resolve(".default.mrsl"), "w", encoding="utf-8") as handle:
            handle.write(args["default_job"].replace("\r\n", "\n"))
    return O.Result(_settings_objects(ctx, O.success("Your settings were saved.")))


@backend("resources", title="Resources", header="Resources")
def resources(ctx, args):
    """The resources of this grid and their execution units; which of them your
    VGrids reach, their free slots and how many of your jobs wait."""
    mine = ctx.grid.vgrids.user_vgrids(ctx.user)
    units = visible_units(ctx)
    yours = [u for u in units if scheduler.reaches(u, mine)]
    rows = [(u.resource, u.name, u.architecture, u.cpucount, u.nodecount, u.memory, u.disk,
             u.cputime, ", ".join(u.runtimeenvs) or "-",
             ", ".join(v + (" (not accepted)" if v in u.vgrids_waiting else "")
                       for v in u.vgrids),
             "%d of %d" % (len(u.running), u.slots), "online" if u.online else "offline",
             "yes" if u in yours else "no")
            for u in units]
    table = O.table("resources", ("Resource", "Exe unit", "Arch", "Cores", "Nodes", "MB", "GB",
                                  "Max s", "Runtime envs", "VGrids", "Busy", "State",
                                  "For you"), rows)
    table["empty"] = "No resources."
    summary = reach_summary(yours, ctx.grid.jobs.state_counts(ctx.user), mine)
    return O.Result([O.text(summary), table, {"object_type": "links", "links": [
        ("/cgi-bin/monitor.py", "Monitor: who is up, what runs where"),
        ("/cgi-bin/resman.py", "Manage: your resources' configuration, start and stop, "
                               "owners; register one")]},
        O.text("Remote resources (ssh, Slurm) are managed by their owners; see the admin "
               "guide.")])


def _sees_all_jobs(ctx, resource, admin):
    """Admins and the resource's owners see every job id on it; others only theirs."""
    if admin:
        return True
    try:
        return ctx.user in ctx.grid.resources.get(resource)["OWNERS"]
    except ClientError:  # the appliance host, or a resource removed meanwhile
        return False


def _busy(grid, unit):
    """'N of SLOTS' running, and how many more are handed over but wait."""
    staged = sum(1 for job_id in unit.running
                 if grid.run_started(grid.jobs.record(job_id)) == 0)
    text = "%d of %d" % (len(unit.running) - staged, unit.slots)
    return text + (" (+%d staged)" % staged if staged else "")


def _jobs_left(ctx, unit, sees_all, now):
    """'JOB (N s left)' for the jobs the viewer may see, then a count of the others."""
    shown, others = [], 0
    for job_id in sorted(unit.running):
        record = ctx.grid.jobs.record(job_id)
        if not sees_all and record.get("OWNER") != ctx.user:
            others += 1
            continue
        started = ctx.grid.run_started(record)
        if started == 0:
            shown.append("%s (staged: waits for a free slot)" % job_id)
            continue
        ends = (started or record.get("EXECUTING_TIMESTAMP") or now) + \
            int(record["SPEC"]["CPUTIME"])
        shown.append("%s (%d s left)" % (job_id, max(0, ends - now)))
    if others:
        shown.append("%d job%s of other users" % (others, "" if others == 1 else "s"))
    return shown


@backend("monitor", title="Monitor", header="Resource Monitor",
         fields={"vgrid_name": Field("vgrid", help="only the exe units that serve this VGrid")})
def monitor(ctx, args):
    """Every exe unit: state, last seen, last job request, VGrids, specs, jobs, time left.
    Job ids only of your own jobs, the others counted (admins and owners see every id)."""
    import time
    now = time.time()
    admin = ctx.grid.users.is_admin(ctx.user)
    rows, sees = [], {}
    for unit in visible_units(ctx):
        if args["vgrid_name"] and not scheduler.reaches(unit, [args["vgrid_name"]]):
            continue
        if unit.resource not in sees:
            sees[unit.resource] = _sees_all_jobs(ctx, unit.resource, admin)
        left = _jobs_left(ctx, unit, sees[unit.resource], now)
        state = "online" if unit.online else "offline: %s" % unit.down_reason
        rows.append((unit.resource, unit.name, state, asctime(unit.last_seen) or "-",
                     asctime(unit.last_request) or "-", ", ".join(unit.vgrids),
                     unit.specs_text(), _busy(ctx.grid, unit),
                     "; ".join(left) or "-"))
    table = O.table("monitor", ("Resource", "Exe unit", "Status", "Last seen (UTC)",
                                "Last job request (UTC)", "VGrids", "Specs", "Busy",
                                "Jobs and time left"), rows)
    table["empty"] = "No resources."
    busy = any(unit.running for unit in ctx.grid.registry.all())
    objects = [live(ctx, busy, every=5), table]
    if args["vgrid_name"]:
        objects += _vgrid_jobs(ctx, args["vgrid_name"])
    return O.Result(objects)


def _vgrid_jobs(ctx, name):
    """The jobs of a VGrid (its members only): how many wait and run where; the
    ids of those the caller may see (their own, or shared with them)."""
    grid = ctx.grid
    grid.vgrids.check_visible(name, ctx.user)

    def ours(record):
        return any(v == name or v.startswith(name + "/")
                   for v in record["SPEC"].get("VGRID") or ())
    rows = []
    for unit in grid.registry.all():
        for job_id in sorted(unit.running):
            try:
                record = grid.jobs.record(job_id)
            except MigError:
                continue
            if ours(record):
                rows.append((_shown_id(ctx, record), record["OWNER"], "running",
                             unit.unit_id))
    for record in grid.jobs.queued_records():
        if ours(record):
            rows.append((_shown_id(ctx, record), record["OWNER"], record["STATUS"].lower(),
                         "-"))
    table = O.table("vgridjobs", ("Job", "Owner", "State", "Where"), rows)
    table["empty"] = "No job of %s waits or runs." % name
    return [O.header("Jobs of %s" % name), table]


def _shown_id(ctx, record):
    job_id = record["JOB_ID"]
    if ctx.grid.visibility.may_see(ctx.user, "job", job_id, [record["OWNER"]]):
        return job_id
    return "(a job of %s)" % record["OWNER"]



DOWNLOADS = (("ca", "The grid's CA certificate (PEM): let curl and browsers trust this grid",
              "ca.crt", "application/x-pem-file"),
             ("cert", "Your certificate (PEM)", "user.crt", "application/x-pem-file"),
             ("key", "Your private key (PEM); keep it secret", "user.key",
              "application/x-pem-file"),
             ("p12", "Your certificate and key as PKCS#12 for browsers", "user.p12",
              "application/x-pkcs12"),
             ("client", "The Python client (one stdlib-only file; see Docs)", "client.py",
              "text/x-python"))


@backend("downloads", title="Downloads", header="Downloads")
def downloads(ctx, args):
    """Certificates and keys to use this grid from scripts and browsers."""
    account = ctx.grid.users.get(ctx.user)
    rows = [({"text": filename, "href": page_url("download", what=what)}, text)
            for what, text, filename, _ctype in DOWNLOADS]
    objects = [O.table("downloads", ("File", "What"), rows),
               O.text("The password of your PKCS#12 file: %s" % account.get("p12_password", "")),
               O.text("Your certificate is valid until %s UTC." % asctime(account.get("not_after"))),
               {"object_type": "post_button", "backend": "renewcert", "fields": {},
                "text": "Renew my certificate", "style": "secondary",
                "confirm": "Make a new certificate and key for you?"},
               O.text("The MiG user scripts and a Python client are described in Docs.")]
    return O.Result(objects + script_download_objects())


@backend("download", title="Download", header="Download",
         fields={"what": Field("word", required=True)})
def download(ctx, args):
    """One of the files listed on the Downloads page, as a file."""
    for what, _text, filename, ctype in DOWNLOADS:
        if what == args["what"]:
            if what == "client":  # from the package, so it also works from the zipapp
                data = importlib.resources.files("mig").joinpath("client.py").read_bytes()
            else:
                account = ctx.grid.users.get(ctx.user)
                path = (ctx.grid.config.path("ca", "ca.crt") if what == "ca"
                        else account[{"cert": "cert", "key": "key", "p12": "p12"}[what]])
                with open(path, "rb") as handle:
                    data = handle.read()
            return O.Result([{"object_type": "binary", "data": data, "filename": filename,
                              "content_type": ctype}])
    raise ClientError("nothing to download as %r" % args["what"])


DOC_TOPICS = (("start", "Getting started"), ("mrsl", "mRSL reference"),
              ("states", "Job states"), ("curl", "The curl interface"))


def _docs_start():
    return [O.text("New here? The Dashboard runs a ready sample job with one click; then "
                   "open its page to see its output and the file it kept."),
            O.text("Submit a job on the Submit Job page: give the commands to run (EXECUTE), "
                   "the files to bring (INPUTFILES) and the files to keep (OUTPUTFILES)."),
            O.verbatim("::EXECUTE::\nwc -l input.txt > count.txt\n\n::INPUTFILES::\n"
                       "data/input.txt input.txt\n\n::OUTPUTFILES::\ncount.txt\n"),
            O.text("Follow it on the Jobs page. Its output lands in job_output/JOBID/ in your "
                   "home: JOBID.stdout, JOBID.stderr, JOBID.status (each command and its exit "
                   "code) and JOBID.io-status. Output files go where OUTPUTFILES says.")]


def _docs_mrsl():
    objects = [O.text("A job is blank-line separated ::KEYWORD:: blocks; '#' starts a comment "
                      "(write \\# for a literal #). +JOBID+ and +JOBNAME+ are replaced in every "
                      "value. The same job may be given as JSON.")]
    rows = []
    for kw in keywords.KEYWORDS:
        default = kw.default if kw.default not in ([], "", None) else "-"
        rows.append(({"text": kw.name, "href": "#" + kw.name, "id": kw.name}, kw.type,
                     str(default), "yes" if kw.required else "no", kw.help))
    objects.append(O.table("keywords", ("Keyword", "Type", "Default", "Required", "Meaning"),
                           rows))
    return objects


def _docs_states():
    rows = [(state, ", ".join(sorted(J.TRANSITIONS.get(state, ()))) or "(final)")
            for state in J.STATES]
    return [O.table("states", ("State", "Can become"), rows),
            O.text("RETRY: queued again after a failed run, until RETRIES is spent; then FAILED "
                   "with the reason. A job no resource can run EXPIRES after a while, with "
                   "the reasons.")]


def _docs_curl():
    return [O.text("Every page is also an API: /cgi-bin/NAME.py with output_format=txt (MiG's "
                   "format), json or html, and /api/NAME (JSON). Authenticate with your client "
                   "certificate or 'Authorization: Bearer TOKEN' (make tokens in Settings)."),
            O.verbatim("curl --cacert ca.crt --cert user.crt --key user.key \\\n"
                       "     --data output_format=txt https://HOST:8443/cgi-bin/jobstatus.py")]


@backend("docs", title="Docs", header="Documentation",
         fields={"topic": Field("word", default=("start",)), "search": Field("text"),
                 "show": Field("text")})
def docs(ctx, args):
    """Built-in documentation: getting started, mRSL, job states, the curl interface."""
    topic = args["topic"]
    builders = {"start": _docs_start, "mrsl": _docs_mrsl, "states": _docs_states,
                "curl": _docs_curl}
    titles = dict(DOC_TOPICS)
    if args["search"] or args["show"]:  # MiG's migdoc: search=WORD (or *), show=TOPIC
        wanted = args["show"] or args["search"]
        found = [t for t, title in DOC_TOPICS if wanted == "*" or wanted.lower() in t or
                 wanted.lower() in title.lower()]
        if not found:
            return O.Result([O.text("No topics matching %s" % wanted)])
        if args["show"]:
            objects = []
            for name in found:
                objects += [O.header(titles[name])] + builders[name]()
            return O.Result(objects)
        return O.Result([O.table("topics", ("Topic", "Title"),
                                 [(name, titles[name]) for name in found])])
    if topic not in builders:
        raise ClientError("No topics matching %r" % topic)
    tabs = {"object_type": "tabs", "tabs": [(page_url("docs", topic=t), label, t == topic)
                                            for t, label in DOC_TOPICS]}
    return O.Result([tabs] + builders[topic]())
