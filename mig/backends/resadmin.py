"""Resource management for their owners: register, edit (as text or as a
form), start and stop exe units, check the login, clean, owners, remove.

Every change goes to the resource records (the source of truth, with the
rights checked there: owners and admins) and then the running grid is
poked to follow at once.  Names follow MiG's backends (resadmin,
reseditaction, startexe, stopexe, addresowner, rmresowner ...), with its
``unique_resource_name`` and ``exe_name`` fields.
"""

import time

from mig.backends import Field, backend, truthy
from mig.backends.jobs import asctime
from mig.backends.visibility import visibility_form
from mig.core.resconf import (ARCHITECTURES, EXE_KEYS, FORM_KEYWORDS, LRMS_TYPES,
                              RESOURCE_KEYWORDS, form_edit_text)
from mig.core.resourcedb import stopped_units
from mig.errors import ClientError, MigError
from mig.render import objects as O

NAME = {"unique_resource_name": Field("resource", required=True, help="the resource (HOSTURL.N)")}
TOFU = Field("bool", help="when there is no HOSTKEY: fetch the host's key now and pin it "
                          "(trust on first use)")
TOFU_LABEL = "Trust on first use"
TOFU_HELP = ("only when HOSTKEY is empty: fetch the key the host shows now and pin it. "
             "Otherwise an edit that drops HOSTKEY is refused")
CHOICES = {"LRMSTYPE": LRMS_TYPES, "ARCHITECTURE": ARCHITECTURES,
           "JOBTYPE": ("all", "batch", "bulk"), "SANDBOX": ("False", "True")}


def _changed(ctx, text):
    """After a change: the running grid follows at once, not a tick later."""
    ctx.grid.resources_changed()
    return O.success(text)


# -- pages ---------------------------------------------------------------------------------
def _unit_rows(ctx, record):
    name, stopped = record["NAME"], stopped_units(record)
    rows = []
    for exe in record["CONF"]["EXECONFIG"]:
        unit = ctx.grid.registry.get("%s_%s" % (name, exe["name"]))
        if unit is None:
            state = "stopped" if exe["name"] in stopped else "not known to the grid yet"
        else:
            state = "online" if unit.online else "offline: %s" % unit.down_reason
        action = "startexe" if exe["name"] in stopped else "stopexe"
        rows.append((exe["name"], state, (asctime(unit.last_seen) if unit else "") or "-",
                     (asctime(unit.last_request) if unit else "") or "-",
                     "%d of %d" % (len(unit.running), unit.slots) if unit else "-",
                     {"post": action, "text": "Start" if action == "startexe" else "Stop",
                      "fields": {"unique_resource_name": name, "exe_name": exe["name"]}}))
    return rows


def _edit_form_fields(record, values=None, units=None):
    """The form view: the main keywords, then each exe unit's keys, then a new unit."""
    conf, values, units = record["CONF"], values or {}, units or {}
    fields = [{"name": "unique_resource_name", "type": "hidden", "value": record["NAME"]}]
    for keyword in FORM_KEYWORDS:
        kind, _default, _required, help_text = RESOURCE_KEYWORDS[keyword]
        value = values.get(keyword, conf[keyword])
        field = {"name": keyword, "label": keyword, "help": help_text,
                 "value": "\n".join(value) if isinstance(value, list) else str(value)}
        if keyword == "HOSTURL":
            field.update(readonly=True, help="part of the name: cannot change")
        elif keyword in CHOICES:
            field.update(type="select", options=[(c, c) for c in CHOICES[keyword]])
        elif kind == "list":
            field.update(type="textarea", rows=3)
        fields.append(field)
    for index, unit in enumerate(conf["EXECONFIG"] + [{}]):
        given = units.get(index, {})
        for key, (_kind, _default, help_text) in EXE_KEYS.items():
            value = given.get(key, unit.get(key, ""))
            label = "exe unit %s: %s" % (unit.get("name") or "(new)", key)
            field = {"name": "exe_%s_%d" % (key, index), "label": label, "help": help_text,
                     "value": ",".join(value) if isinstance(value, list) else str(value)}
            if key == "name" and unit:
                field.update(readonly=True, help="rename or remove units in the text")
            fields.append(field)
    fields.append({"name": "trust_on_first_use", "id": "form-tofu", "label": TOFU_LABEL,
                   "type": "checkbox", "help": "an empty HOSTKEY keeps the pinned key; empty "
                                               "it and tick this to pin the key the host "
                                               "shows now"})
    return fields


def _resource_page(ctx, name, message=None, text=None, code=0, form=None):
    """One resource: its units with start/stop, actions, owners, configuration, editors."""
    ctx.grid.follow_resources()
    record = ctx.grid.resources.get_managed(name, ctx.user)
    conf = record["CONF"]
    objects = [O.header("Resource %s" % name)] + ([message] if message else [])
    objects.append(O.text("%s@%s port %d, LRMS %s, home %s; owners: %s" % (
        conf["MIGUSER"], conf["HOSTURL"], conf["SSHPORT"], conf["LRMSTYPE"],
        conf["RESOURCEHOME"], ", ".join(record["OWNERS"]))))
    objects.append(O.table("resourceunits", ("Exe unit", "State", "Last seen (UTC)",
                                             "Last job request (UTC)", "Busy", "Action"),
                           _unit_rows(ctx, record)))
    fields = {"unique_resource_name": name}
    for action, label, confirm in (
            ("startexe", "Start all units", None), ("stopexe", "Stop all units", None),
            ("resstatus", "Check the login", None),
            ("resclean", "Clean leftover job folders", "Remove the job folders left on %s?"
             % name),
            ("delres", "Remove the resource", "Remove %s from the grid?" % name)):
        objects.append({"object_type": "post_button", "backend": action, "fields": fields,
                        "text": label, "confirm": confirm,
                        "style": "danger" if action == "delres" else "secondary"})
    objects.append(O.header("Owners"))
    objects.append(O.table("resourceowners", ("Owner", "Action"), [
        (owner, {"post": "rmresowner", "text": "Remove",
                 "fields": {"unique_resource_name": name, "cert_id": owner},
                 "confirm": "Remove %s as an owner of %s?" % (owner, name)})
        for owner in record["OWNERS"]]))
    objects.append({"object_type": "form", "action": "addresowner", "submit": "Add owner",
                    "fields": [{"name": "unique_resource_name", "type": "hidden", "value": name},
                               {"name": "cert_id", "label": "User",
                                "help": "a user of this grid (name or certificate DN)"}]})
    objects.append(O.header("Who sees it"))
    objects += visibility_form(ctx, "resource", name)
    objects.append(O.header("Configuration"))
    objects.append(O.verbatim(record["TEXT"]))
    objects.append(O.header("Edit as text"))
    objects.append({"object_type": "form", "action": "reseditaction", "submit": "Save",
                    "fields": [{"name": "unique_resource_name", "type": "hidden", "value": name},
                               {"name": "resconfig", "label": "Configuration",
                                "type": "textarea", "rows": 24,
                                "value": record["TEXT"] if text is None else text,
                                "help": "MiG's ::KEYWORD:: format; see the admin guide"},
                               {"name": "trust_on_first_use", "label": TOFU_LABEL,
                                "type": "checkbox", "help": TOFU_HELP}]})
    objects.append(O.header("Edit as form"))
    objects.append({"object_type": "form", "action": "resformedit", "submit": "Save",
                    "fields": _edit_form_fields(record, *(form or ()))})
    return O.Result(objects, code)


def _manage_page(ctx, message=None, text="", code=0):
    """The resources the user manages (admins: all), and the register form."""
    ctx.grid.follow_resources()
    resources = ctx.grid.resources
    rows = []
    for record in resources.managed_by(ctx.user):
        name = record["NAME"]
        running = sum(len(u.running) for u in ctx.grid.registry.all() if u.resource == name)
        rows.append(({"text": name, "href": "/cgi-bin/resadmin.py?unique_resource_name=%s"
                      % name}, record["CONF"]["HOSTURL"], record["CONF"]["LRMSTYPE"],
                     ", ".join(u["name"] for u in record["CONF"]["EXECONFIG"]),
                     ", ".join(sorted(stopped_units(record))) or "-", running,
                     ", ".join(record["OWNERS"])))
    table = O.table("resources", ("Resource", "Host", "LRMS", "Exe units", "Stopped",
                                  "Running jobs", "Owners"), rows)
    table["empty"] = "You manage no resources."
    objects = ([message] if message else []) + [table]
    if resources.may_register(ctx.user):
        fields = [{"name": "resconfig", "label": "Configuration", "type": "textarea",
                   "rows": 16, "value": text,
                   "help": "paste the resource's configuration (see the admin guide)"},
                  {"name": "trust_on_first_use", "label": TOFU_LABEL, "type": "checkbox",
                   "help": TOFU_HELP}]
        if resources.is_admin(ctx.user):
            fields.append({"name": "owner", "label": "Owner", "value": ctx.user,
                           "help": "the user who owns it"})
        objects += [O.header("Register a resource"),
                    O.text("The machine's owner creates the MIGUSER account and authorizes "
                           "the grid's ssh key for it: %s" % ctx.grid.ssh_public_key()),
                    {"object_type": "form", "action": "reseditaction", "submit": "Register",
                     "fields": fields}]
    return O.Result(objects, code)


@backend("resman", title="Resources", header="Manage Resources")
def resman(ctx, args):
    """The resources you own (admins: all), with their state; register a new one."""
    return _manage_page(ctx)


@backend("resadmin", title="Resources", header="Resource", fields=NAME)
def resadmin(ctx, args):
    """One resource you own: units with start/stop, owners, configuration and editors.

    Its exe units (state, last seen, last job request, busy slots), owners, and its
    configuration to edit as text or as a form."""
    return _resource_page(ctx, args["unique_resource_name"])


# -- changes --------------------------------------------------------------------------------
@backend("reseditaction", title="Resources", header="Resource", state_changing=True,
         fields={"unique_resource_name": Field("resource", help="empty: register a new one"),
                 "resconfig": Field("text", required=True, help="the configuration text"),
                 "trust_on_first_use": TOFU,
                 "owner": Field("word", help="who owns a new resource (admins; default: you)")})
def reseditaction(ctx, args):
    """Register a resource, or replace one's configuration (the name stays).

    An invalid configuration is refused with its line and keyword, and nothing is
    stored."""
    name, text = args["unique_resource_name"], args["resconfig"].replace("\r\n", "\n")
    resources, tofu = ctx.grid.resources, truthy(args["trust_on_first_use"])
    try:
        if not name:
            record = resources.add(text, args["owner"] or ctx.user, ctx.user, tofu)
            conf = record["CONF"]
            return _resource_page(ctx, record["NAME"], _changed(ctx, (
                "Registered %s. Authorize the grid's ssh key for %s on %s: %s" % (
                    record["NAME"], conf["MIGUSER"], conf["HOSTURL"],
                    ctx.grid.ssh_public_key()))))
        resources.update(name, text, ctx.user, tofu)
    except ClientError as exc:  # show the text again with the error, to fix it
        if not name:
            return _manage_page(ctx, O.error(exc.message), text, exc.exit_code)
        return _resource_page(ctx, name, O.error(exc.message), text, exc.exit_code)
    return _resource_page(ctx, name, _changed(ctx, "%s was changed." % name))


FORM_FIELDS = dict(NAME, trust_on_first_use=TOFU,
                   **{keyword: Field("text", help=RESOURCE_KEYWORDS[keyword][3])
                      for keyword in FORM_KEYWORDS},
                   **{"exe_%s_N" % key: Field("text", help="exe unit N: " + spec[2])
                      for key, spec in EXE_KEYS.items()})


@backend("resformedit", title="Resources", header="Resource", state_changing=True,
         fields=FORM_FIELDS)
def resformedit(ctx, args):
    """Change some of a resource's keywords and exe unit keys (the form view).

    An empty value keeps what was there; exe_name_N with N one past the last unit adds
    a unit."""
    name = args["unique_resource_name"]
    record = ctx.grid.resources.get_managed(name, ctx.user)
    values = {k: args[k] for k in FORM_KEYWORDS if args[k]}
    units = {}
    for key in EXE_KEYS:
        for index, value in args["exe_%s_N" % key]:
            units.setdefault(index, {})[key] = value
    tofu = truthy(args["trust_on_first_use"])
    conf = dict(record["CONF"], HOSTKEY="") if tofu and not values.get("HOSTKEY") \
        else record["CONF"]  # trust on first use: the key the host shows now
    try:
        text = form_edit_text(conf, values, units)
        ctx.grid.resources.update(name, text, ctx.user, tofu)
    except ClientError as exc:
        # the line is of the text made from the form: the keyword says more
        message = exc.message.split(", ", 1)[-1] if getattr(exc, "line", None) else exc.message
        return _resource_page(ctx, name, O.error(message), code=exc.exit_code,
                              form=(values, units))
    return _resource_page(ctx, name, _changed(ctx, "%s was changed." % name))


EXE = dict(NAME, exe_name=Field("word", help="the exe unit; empty: all of them"))


def _start_stop(ctx, args, stop):
    name, exe = args["unique_resource_name"], args["exe_name"]
    ctx.grid.resources.set_stopped(name, exe, stop, ctx.user)
    what = "%s_%s" % (name, exe) if exe else "every exe unit of %s" % name
    return _resource_page(ctx, name, _changed(ctx, (
        "Stopped %s: it gets no new jobs; jobs running there run to their end." % what)
        if stop else "Started %s: it gets jobs again." % what))


@backend("startexe", title="Resources", header="Resource", state_changing=True, fields=EXE)
def startexe(ctx, args):
    """Start an exe unit of your resource (or all of them): it gets jobs again."""
    return _start_stop(ctx, args, False)


@backend("stopexe", title="Resources", header="Resource", state_changing=True, fields=EXE)
def stopexe(ctx, args):
    """Stop an exe unit of your resource (or all of them): no new jobs go there.

    Jobs running there run to their end."""
    return _start_stop(ctx, args, True)


OWNER = dict(NAME, cert_id=Field("text", required=True, help="a user name or certificate DN"))


@backend("addresowner", title="Resources", header="Resource", state_changing=True,
         fields=OWNER)
def addresowner(ctx, args):
    """Make another user an owner of your resource: they may then manage it as you do."""
    name, user = args["unique_resource_name"], ctx.grid.users.named(args["cert_id"])
    ctx.grid.resources.add_owner(name, user, ctx.user)
    return _resource_page(ctx, name, _changed(ctx, "%s is an owner of %s." % (user, name)))


@backend("rmresowner", title="Resources", header="Resource", state_changing=True,
         fields=OWNER)
def rmresowner(ctx, args):
    """Remove an owner of your resource (never the last one)."""
    name, user = args["unique_resource_name"], ctx.grid.users.named(args["cert_id"])
    ctx.grid.resources.remove_owner(name, user, ctx.user)
    message = _changed(ctx, "%s no longer owns %s." % (user, name))
    if user == ctx.user and not ctx.grid.resources.is_admin(ctx.user):
        return _manage_page(ctx, message)  # the resource's page is no longer yours
    return _resource_page(ctx, name, message)


@backend("delres", title="Resources", header="Manage Resources", state_changing=True,
         fields=NAME)
def delres(ctx, args):
    """Remove your resource from the grid; refused while jobs run there."""
    name = args["unique_resource_name"]
    ctx.grid.resources.get_managed(name, ctx.user)
    running = sum(len(u.running) for u in ctx.grid.registry.all() if u.resource == name)
    if running:
        raise ClientError("%d job(s) run on %s now: stop it, and remove it when they have "
                          "ended" % (running, name))
    ctx.grid.resources.remove(name, ctx.user)
    return _manage_page(ctx, _changed(ctx, "%s was removed." % name))


@backend("resstatus", title="Resources", header="Resource", fields=NAME)
def resstatus(ctx, args):
    """Check that the grid can log in to your resource now (over ssh, as for jobs)."""
    name = args["unique_resource_name"]
    ctx.grid.resources.get_managed(name, ctx.user)
    try:
        ctx.grid.check_resource(name)
    except MigError as exc:
        return _resource_page(ctx, name, O.error(exc.message), code=exc.exit_code)
    return _resource_page(ctx, name, O.success("%s: reachable (%s)" % (
        name, time.strftime("%H:%M:%S UTC", time.gmtime()))))


@backend("resclean", title="Resources", header="Resource", state_changing=True, fields=NAME)
def resclean(ctx, args):
    """Stop and remove the job folders left on your resource (running jobs' stay)."""
    name = args["unique_resource_name"]
    ctx.grid.resources.get_managed(name, ctx.user)
    try:
        kept = ctx.grid.clean_resource(name)
    except MigError as exc:
        return _resource_page(ctx, name, O.error(exc.message), code=exc.exit_code)
    return _resource_page(ctx, name, O.success(
        "%s: job folders removed%s" % (name, " (kept those of %d running job(s))" % len(kept)
                                       if kept else "")))
