"""Runtime environment backends, with MiG's names and fields: ``redb``
(every environment and who provides it; the **Runtime Envs** page),
``showre``, ``createre``, ``deletere``; and, for the grid's admins, what
the appliance host itself provides (``hostruntimeenvs``,
``sethostruntimeenvs``).  Registered resources declare theirs in their
configuration (``::RUNTIMEENVIRONMENT::``), checked by the resource records.
"""

from mig.backends import Field, backend
from mig.backends.jobs import asctime
from mig.backends.visibility import visibility_form
from mig.core.runtimeenvs import definition, provided_lines
from mig.errors import AccessDenied, ClientError
from mig.core.atomic import write_atomic
from mig.render import objects as O

NAME = {"re_name": Field("text", required=True, help="the runtime environment (upper-cased)")}


def _list_page(ctx, message=None, code=0):
    grid = ctx.grid
    rows = []
    for name in sorted(grid.runtimeenvs_for(ctx.user)):
        try:
            record = grid.runtimeenvs.get(name)
            about, creator = record["DESCRIPTION"], record["CREATOR"]
        except ClientError:  # provided by name only (local_runtimeenvs), never defined
            about, creator = "(not defined: offered by the appliance host's settings)", "-"
        rows.append(({"text": name, "href": "/cgi-bin/showre.py?re_name=" + name}, about,
                     creator, ", ".join(grid.registry.providers(name)) or "nobody yet"))
    table = O.table("runtimeenvs", ("Name", "Description", "Creator", "Provided by"), rows)
    table["empty"] = "No runtime environments are defined yet."
    objects = ([message] if message else []) + [
        table, O.text("Jobs ask for them with RUNTIMEENVIRONMENT; a job runs only where "
                      "every one it asks for is provided, with its variables set."),
        O.header("Create a runtime environment"),
        {"object_type": "form", "action": "createre", "submit": "Create", "fields": [
            {"name": "re_name", "label": "Name",
             "help": "e.g. PYTHON-3.11; it never changes: a new version is a new name"},
            {"name": "redescription", "label": "Description"},
            {"name": "software", "label": "Software", "type": "textarea", "rows": 3,
             "help": "name=... version=... url=... description=... (one per line, "
                     "separated by ';')"},
            {"name": "environment", "label": "Environment variables", "type": "textarea",
             "rows": 3, "help": "name=PYTHON;example=/usr/bin/python3.11;description=the "
                                "interpreter (one variable per line)"},
            {"name": "testprocedure", "label": "Test job (mRSL)", "type": "textarea",
             "rows": 4, "help": "optional: a job that checks a resource provides it"}]}]
    if grid.users.is_admin(ctx.user):
        objects.append(O.link("/cgi-bin/hostruntimeenvs.py",
                              "What the appliance host provides (admins)"))
    return O.Result(objects, code)


@backend("runtimeenvs", title="Runtime Envs", header="Runtime Environments")
def runtimeenvs(ctx, args):
    """Every runtime environment, its creator and the resources that provide it."""
    return _list_page(ctx)


@backend("redb", title="Runtime Envs", header="Runtime Environments",
         fields={"operation": Field("word", default=("show",), help="show")})
def redb(ctx, args):
    """Every runtime environment and who provides it (MiG's RE database page)."""
    return _list_page(ctx)


def _lines(text):
    return [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


@backend("createre", title="Runtime Envs", header="Runtime Environment", state_changing=True,
         fields={"re_name": NAME["re_name"],
                 "redescription": Field("text", help="what it is"),
                 "software": Field("text", multi=True,
                                   help="name=... version=... url=... description=... icon=..."
                                        " (';' or newlines between keys; one entry a value)"),
                 "environment": Field("text", multi=True,
                                      help="name=VAR;example=...;description=... (one "
                                           "variable a value or a line)"),
                 "testprocedure": Field("text", help="an mRSL job that tests a resource"),
                 "verifystdout": Field("text", help="expected stdout lines of the test"),
                 "verifystderr": Field("text", help="expected stderr lines of the test"),
                 "verifystatus": Field("text", help="expected status lines of the test")})
def createre(ctx, args):
    """Define a runtime environment: its name, description, software and the variables
    every providing resource must set.  It never changes: a new version is a new name."""
    software = [line for value in args["software"] for line in _lines(value)]
    variables = [line for value in args["environment"] for line in _lines(value)]
    record = definition(args["re_name"], args["redescription"], software, variables,
                        args["testprocedure"],
                        {k: _lines(args[k]) for k in ("verifystdout", "verifystderr",
                                                      "verifystatus") if args[k]})
    ctx.grid.runtimeenvs.create(record, ctx.user)
    return _show_page(ctx, record["RENAME"], O.success("Created %s." % record["RENAME"]))


def _show_page(ctx, name, message=None):
    grid = ctx.grid
    record = grid.runtimeenvs.get(name)
    if not grid.sees(ctx.user, "runtimeenv", record["RENAME"]):
        raise ClientError("no such runtime environment: %s" % record["RENAME"])
    objects = ([message] if message else []) + [
        O.text("%s: %s" % (record["RENAME"], record["DESCRIPTION"])),
        O.text("Created by %s on %s UTC." % (record["CREATOR"],
                                            asctime(record["CREATED_TIMESTAMP"])))]
    software = O.table("resoftware", ("Software", "Version", "URL", "Description"),
                       [(s["name"], s["version"], s["url"], s["description"])
                        for s in record["SOFTWARE"]])
    software["empty"] = "No software entries."
    variables = O.table("revariables", ("Variable", "Example", "Description"),
                        [(v["name"], v["example"], v["description"])
                         for v in record["ENVIRONMENTVARIABLE"]])
    variables["empty"] = "No environment variables."
    values = {}
    for unit in grid.registry.all():
        if record["RENAME"] in unit.runtimeenvs:
            values.setdefault(unit.resource, "; ".join(
                "%s=%s" % item for item in sorted(unit.re_values[record["RENAME"]].items())))
    providers = O.table("reproviders", ("Provided by", "Values"), sorted(values.items()))
    providers["empty"] = "No resource provides it yet."
    objects += [O.header("Software"), software, O.header("Environment variables"), variables,
                O.header("Resources"), providers]
    if record["TESTPROCEDURE"]:
        objects += [O.header("Test job"), O.verbatim(record["TESTPROCEDURE"])]
    if record["CREATOR"] == ctx.user:
        objects += visibility_form(ctx, "runtimeenv", record["RENAME"])
        objects.append({"object_type": "post_button", "backend": "deletere",
                        "fields": {"re_name": record["RENAME"]}, "text": "Delete",
                        "confirm": "Delete %s?" % record["RENAME"], "style": "danger"})
    return O.Result(objects)


@backend("showre", title="Runtime Envs", header="Runtime Environment", fields=NAME)
def showre(ctx, args):
    """One runtime environment: software, variables with examples, the test job, and
    the resources that provide it."""
    return _show_page(ctx, args["re_name"])


@backend("deletere", title="Runtime Envs", header="Runtime Environments", state_changing=True,
         fields=NAME)
def deletere(ctx, args):
    """Delete a runtime environment you created, while no resource provides it."""
    grid = ctx.grid
    name = grid.runtimeenvs.get(args["re_name"])["RENAME"]
    grid.follow_resources()
    grid.runtimeenvs.delete(name, ctx.user, grid.registry.providers(name),
                            grid.users.is_admin(ctx.user))
    return _list_page(ctx, O.success("Deleted %s." % name))


def _host_page(ctx, message=None, text=None, code=0):
    if not ctx.grid.users.is_admin(ctx.user):
        raise AccessDenied("only the grid's admins manage what the appliance host provides")
    current = "\n".join(provided_lines(ctx.grid.host_runtimeenvs()))
    objects = ([message] if message else []) + [
        O.text("The runtime environments the appliance host provides to local jobs, in "
               "MiG's format: a 'name: NAME' line, then VARIABLE=value for each variable the "
               "environment declares."),
        {"object_type": "form", "action": "sethostruntimeenvs", "submit": "Save",
         "fields": [{"name": "runtimeenvironment", "label": "Runtime environments",
                     "type": "textarea", "rows": 10,
                     "value": current if text is None else text}]}]
    return O.Result(objects, code)


@backend("hostruntimeenvs", title="Runtime Envs", header="The appliance host's runtime "
                                                         "environments")
def hostruntimeenvs(ctx, args):
    """(Admins) what the appliance host provides, with the value of each variable."""
    return _host_page(ctx)


@backend("sethostruntimeenvs", title="Runtime Envs",
         header="The appliance host's runtime environments", state_changing=True,
         fields={"runtimeenvironment": Field("text", help="'name: NAME' then VARIABLE=value "
                                                          "lines; empty: none")})
def sethostruntimeenvs(ctx, args):
    """(Admins) declare what the appliance host provides; every variable of each
    environment needs a value.  Jobs see the change at once."""
    text = args["runtimeenvironment"].replace("\r\n", "\n")
    try:
        ctx.grid.set_host_runtimeenvs(text.split("\n"), ctx.user)
    except ClientError as exc:
        return _host_page(ctx, O.error(exc.message), text, exc.exit_code)
    return _host_page(ctx, O.success("Saved: the appliance host provides %s."
                                     % (", ".join(ctx.grid.host_runtimeenvs()) or "nothing")))


@backend("testresupport", title="Runtime Envs", header="Runtime Environment",
         state_changing=True,
         fields=dict(NAME, unique_resource_name=Field("resource", required=True,
                                                      help="your resource that provides it")))
def testresupport(ctx, args):
    """(A resource's owners) run a runtime environment's test job on your resource: it
    is submitted as yours, only for that resource, asking for the environment, with the
    expected outputs as VERIFYFILES (kept in runtimeenv_tests/ in your home)."""
    grid, resource = ctx.grid, args["unique_resource_name"]
    record = grid.runtimeenvs.get(args["re_name"])
    name = record["RENAME"]
    if not grid.manages_resource(ctx.user, resource):  # the appliance host: the admins
        raise AccessDenied("only the owners of %s test it" % resource)
    if resource not in grid.registry.providers(name):
        raise ClientError("%s does not provide %s" % (resource, name))
    if not record["TESTPROCEDURE"]:
        raise ClientError("%s has no test job" % name)
    verify = []
    for suffix in ("stdout", "stderr", "status"):
        lines = record["VERIFY"].get("verify" + suffix)
        if lines:
            rel = "runtimeenv_tests/verify_runtime_env_%s.%s" % (name, suffix)
            ctx.home.mkdir("runtimeenv_tests", parents=True)
            write_atomic(ctx.home.resolve(rel), ("\n".join(lines) + "\n").encode("utf-8"))
            verify.append(rel)
    text = "%s\n\n::RESOURCE::\n%s_*\n\n::RUNTIMEENVIRONMENT::\n%s\n" % (
        record["TESTPROCEDURE"], resource, name)
    if verify:
        text += "\n::VERIFYFILES::\n%s\n" % "\n".join(verify)
    job_id = grid.submit_as(ctx.user, text)
    return O.Result([O.success("The test of %s on %s is the job %s." % (name, resource, job_id)),
                     O.link("/cgi-bin/jobstatus.py?job_id=" + job_id, "Its status")])
