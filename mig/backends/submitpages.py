"""The Submit Job page: fields (essentials first, the rest folded away,
choices from what the grid has), mRSL text, uploads and sweeps; a refused
form comes back with what was typed and every problem at its field."""

from mig.backends import Field, backend, truthy
from mig.backends.jobs import submit_text
from mig.backends.portal import page_url
from mig.core import jobspec, keywords, submission
from mig.errors import InvalidArgument, MigError, MrslError
from mig.render import objects as O


ESSENTIALS = ("EXECUTE", "INPUTFILES", "OUTPUTFILES", "CPUTIME", "MEMORY", "JOBNAME")
# The essentials in few words, two and three to a line: the form fits a screen.
ESSENTIAL_LAYOUT = {
    "EXECUTE": (None, "Shell command lines, run in order in one bash session."),
    "INPUTFILES": ("files", "Copied from your home before the job runs: 'src' or 'src dst' "
                            "per line."),
    "OUTPUTFILES": ("files", "Copied back to your home after it ran: 'src' or 'src dst' "
                             "per line."),
    "CPUTIME": ("limits", "Empty: 600."), "MEMORY": ("limits", "Empty: 64."),
    "JOBNAME": ("limits", "Optional, no spaces.")}
CHOICE_KEYWORDS = ("VGRID", "RUNTIMEENVIRONMENT", "MAXFILL")


def refused(objects, error, messages):
    """A refused form: for people the form again with its problems marked (see
    mig.render.html); for scripts MiG's exit code and error lines as before."""
    return O.Result([dict(O.error(m), wire_only=True) for m in messages] + list(objects),
                    error.exit_code, error.description)


def grid_choices(ctx):
    """What the grid has, offered as choices: the user's VGrids, the runtime
    environments and the architectures of the resources."""
    vgrids = ctx.grid.vgrids.user_vgrids(ctx.user)
    architectures = {u.architecture.upper() for u in ctx.grid.registry.all() if u.architecture}
    return {"VGRID": [(v, v) for v in vgrids] + ([("ANY", "ANY: every VGrid you are in")]
                                                 if len(vgrids) > 1 else []),
            "RUNTIMEENVIRONMENT": [(n, n) for n in
                                   sorted(ctx.grid.runtimeenvs_for(ctx.user))],
            "MAXFILL": [(c, c) for c in keywords.KEYWORD_BY_NAME["MAXFILL"].choices],
            "ARCHITECTURE": [("", "any")] + [(a, a) for a in sorted(architectures)
                                             if a in keywords.ARCHITECTURES]}


def _with_kept(options, kept):
    """options plus the kept values that are not among them: nothing typed is lost."""
    known = {str(v) for v, _text in options}
    return list(options) + [(v, v) for v in kept if v not in known]


def _keyword_field(kw, value, choices, problem):
    """One keyword of the fields form; an empty field means the default it shows."""
    field = {"name": kw.name, "label": "%s (%s)" % (kw.title, kw.name), "value": value,
             "help": kw.help.split(". ")[0].rstrip(".") + ".", "error": problem,
             "help_href": page_url("docs", topic="mrsl") + "#" + kw.name,
             "advanced": kw.name not in ESSENTIALS}
    if kw.name in CHOICE_KEYWORDS:
        kept = [v.strip() for line in jobspec.field_lines(value) for v in line.split(",")
                if v.strip()]
        field.update(type="choices", value=kept, options=_with_kept(choices, kept),
                     none="none offered by this grid's resources yet")
    elif kw.type.startswith("multiple"):
        field.update(type="textarea", rows=4 if kw.name == "EXECUTE" else 2, compact=True,
                     placeholder=kw.example)
    elif kw.type == "boolean":
        field.update(type="select", options=[("", "default (%s)" % kw.default),
                                             ("True", "True"), ("False", "False")])
    elif choices is not None or kw.choices:
        options = choices or [("", "default (%s)" % (kw.default or "any"))] + [
            (c, c) for c in kw.choices]
        field.update(type="select", options=_with_kept(options, [value] if value else []))
    elif kw.default not in (None, ""):
        field.update(placeholder=str(kw.default),
                     help="%s Empty: %s." % (field["help"], kw.default))
    if kw.name in ESSENTIAL_LAYOUT:
        field["row"], field["help"] = ESSENTIAL_LAYOUT[kw.name]
    return field


SWEEP_EXAMPLE = {"mrsltextarea_0": "::EXECUTE::\necho +x+ +y+\n\n::JOBNAME::\nsweep-+INDEX+\n",
                 "params": "x=1:11\ny=a,b,c", "mode": "product"}


def _grid_problems(ctx, values, errors):
    """The VGrid and runtime environment checks a submission makes, run on
    their own when other fields failed: every problem is shown at once."""
    probe = {name: values[name] for name in ("VGRID", "RUNTIMEENVIRONMENT", "MOUNT")
             if name not in errors}
    try:
        submission.prepare(ctx.grid.vgrids.user_vgrids(ctx.user), jobspec.fields_to_mrsl(dict(probe, EXECUTE="true")),
                           ctx.grid.runtimeenvs_for(ctx.user), ctx.grid.config.job_retries)
    except MrslError as exc:
        return {exc.keyword or "": exc}
    return {}


def _text_problem(exc):
    """Where in the typed text, in words: 'Line 8, CPUTIME: ...'."""
    where = ["Line %d" % exc.line] if exc.line is not None else []
    where += [exc.keyword] if exc.keyword else []
    return "%s: %s" % (", ".join(where), jobspec.reason(exc)) if where else exc.message


def fields_form(ctx, values=None, problems=None):
    """The Submit Job form: the essentials first, the other keywords folded
    away, choices from what the grid has; problems ({keyword: message}) are
    marked next to their fields, all at once."""
    values, problems = values or {}, problems or {}
    choices = grid_choices(ctx)
    fields = {kw.name: _keyword_field(kw, values.get(kw.name, ""), choices.get(kw.name),
                                      problems.get(kw.name)) for kw in keywords.KEYWORDS}
    order = list(ESSENTIALS) + [kw.name for kw in keywords.KEYWORDS if kw.name not in ESSENTIALS]
    other = [message for name, message in problems.items() if name not in fields]
    return {"object_type": "form", "action": "submitfields", "submit": "Submit job",
            "fields": [fields[name] for name in order], "error": "; ".join(other),
            "advanced": "More options: files, resources, VGrids, environment, ... (%d)"
                        % (len(order) - len(ESSENTIALS)),
            "problems_title": "The job was not submitted"}


def submit_tabs(active):
    return {"object_type": "tabs", "tabs": [
        (page_url("submitjob", style=style), label, style == active)
        for style, label in (("fields", "Fields"), ("textarea", "mRSL text"),
                             ("files", "Upload files"), ("sweep", "Parameter sweep"))]}


def sweep_form(values=None, problems=None):
    """The sweep form (an example filled in); a refused sweep keeps what was
    typed, with its problems next to their fields."""
    values, problems = values or SWEEP_EXAMPLE, problems or {}
    return {"object_type": "form", "action": "sweep", "submit": "Submit sweep",
            "problems_title": "The sweep was not submitted", "fields": [
                {"name": "mrsltextarea_0", "label": "Job description", "type": "textarea",
                 "rows": 10, "value": values.get("mrsltextarea_0", ""),
                 "error": problems.get("mrsltextarea_0"),
                 "help": "+name+ is replaced by a parameter's value, +INDEX+ by the job's "
                         "number"},
                {"name": "params", "label": "Parameters", "type": "textarea", "rows": 4,
                 "compact": True, "value": values.get("params", ""),
                 "error": problems.get("params"),
                 "help": "one per line: name=v1,v2,... or name=start:stop[:step]"},
                {"name": "mode", "label": "Combine", "type": "select",
                 "value": values.get("mode") or "product", "error": problems.get("mode"),
                 "options": _with_kept([("product", "every combination"),
                                        ("zip", "n-th values together")],
                                       [values.get("mode") or "product"])}]}


def textarea_form(ctx, text=None, error=None, save=False):
    """The mRSL text form: the user's default job, or the text just refused
    with its problem next to it."""
    if text is None:
        try:
            with open(ctx.home.resolve(".default.mrsl"), encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, MigError):
            text = "::EXECUTE::\necho hello grid\n"
    return {"object_type": "form", "action": "submitmrsltext", "submit": "Submit job",
            "problems_title": "The job was not submitted",
            "fields": [{"name": "mrsltextarea_0", "label": "Job description", "type": "textarea",
                        "value": text, "rows": 16, "error": error,
                        "help": "mRSL or JSON", "help_href": page_url("docs", topic="mrsl")},
                       {"name": "save_as_default", "label": "Save as my default job",
                        "type": "checkbox", "value": save}]}


def files_form():
    return {"object_type": "form", "action": "upload", "submit": "Upload", "multipart": True,
            "progress": True, "scripts": ["files.js"], "fields": [
                {"name": "files", "label": "Files", "type": "file", "multiple": True,
                 "help": ".mRSL files are submitted; archives can be unpacked"},
                {"name": "dir", "label": "Folder in your home", "value": "."},
                {"name": "submit", "label": "Submit uploaded .mRSL files", "type": "checkbox",
                 "value": True},
                {"name": "extract", "label": "Unpack .zip, .tar.gz and .tar.bz2 archives",
                 "type": "checkbox"}]}


@backend("submitjob", title="Submit Job", header="Submit Job",
         fields={"style": Field("word", default=("fields",))})
def submitjob(ctx, args):
    """Submit a job by fields, as mRSL text, or by uploading files."""
    style = args["style"]
    if style == "textarea":
        form = textarea_form(ctx)
    elif style == "files":
        form = files_form()
    elif style == "sweep":
        form = sweep_form()
    else:
        style, form = "fields", fields_form(ctx)
    return O.Result([submit_tabs(style), form])


def _submitted(record):
    return [O.success("Job %s submitted." % record["JOB_ID"]),
            {"object_type": "links", "links": [
                (page_url("jobview", job_id=record["JOB_ID"]), "Open the job"),
                (page_url("jobman"), "All jobs"), (page_url("submitjob"), "Submit another")]}]


@backend("submitfields", title="Submit Job", header="Submit Job", state_changing=True,
         fields={kw.name: Field("text", multi=True) for kw in keywords.KEYWORDS})
def submitfields(ctx, args):
    """Submit a job from one form field per keyword.
    A choice field may repeat; every problem is reported at once, each next to its field."""
    values = {kw.name: "\n".join(args[kw.name]) for kw in keywords.KEYWORDS}
    errors = jobspec.check_fields(values, ctx.grid.config.job_retries)
    if errors:
        errors.update(_grid_problems(ctx, values, errors))
    else:
        try:
            return O.Result(_submitted(submit_text(ctx, jobspec.fields_to_mrsl(values))))
        except MrslError as exc:
            errors = {exc.keyword or "": exc}
    problems = {name: jobspec.reason(exc) for name, exc in errors.items()}
    return refused([submit_tabs("fields"), fields_form(ctx, values, problems)],
                   next(iter(errors.values())), [exc.message for exc in errors.values()])


@backend("submitmrsltext", title="Submit Job", header="Submit Job", state_changing=True,
         fields={"mrsltextarea_0": Field("text", help="the job as mRSL or JSON (required)"),
                 "save_as_default": Field("bool")})
def submitmrsltext(ctx, args):
    """Submit one job typed as mRSL (the Submit Job page's text style)."""
    text = args["mrsltextarea_0"].replace("\r\n", "\n")
    save = truthy(args["save_as_default"])
    if not text:
        return refused([submit_tabs("textarea"), textarea_form(
            ctx, text, "The job description is empty: write the commands to run under "
                       "::EXECUTE::, for example ::EXECUTE:: and then echo hello on the "
                       "next line.", save)],
            InvalidArgument(""), ["missing required field: mrsltextarea_0"])
    if save:
        with open(ctx.home.resolve(".default.mrsl"), "w", encoding="utf-8") as handle:
            handle.write(text)
    try:
        return O.Result(_submitted(submit_text(ctx, text)))
    except MrslError as exc:
        return refused([submit_tabs("textarea"), textarea_form(ctx, text, _text_problem(exc), save)],
                       exc, [exc.message])


SAMPLE_JOB = """::JOBNAME::
sample

::EXECUTE::
echo Hello from the sample job +JOBID+
uname -s -m > sample.txt
date -u >> sample.txt

::OUTPUTFILES::
sample.txt sample-+JOBID+.txt

::CPUTIME::
60
"""


@backend("samplejob", title="Sample job", header="Sample job", state_changing=True)
def samplejob(ctx, args):
    """Submit the ready sample job of the Dashboard (a first job in one click)."""
    record = submit_text(ctx, SAMPLE_JOB)
    return O.Result(_submitted(record))
