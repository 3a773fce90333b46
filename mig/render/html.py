"""HTML for browsers: the portal layout around any backend's output objects.

Every user string goes through ``html.escape``; forms carry the CSRF token;
charts are inline SVG drawn here; no external assets.  Backends never make
HTML: they return objects, and this module decides how they look.
"""

import html
import secrets
import urllib.parse

from mig.render import charts, markup

MENU = (("dashboard", "Dashboard"), ("submitjob", "Submit Job"), ("fileman", "Files"),
        ("jobman", "Jobs"), ("vgrids", "VGrids"), ("resources", "Resources"),
        ("downloads", "Downloads"), ("runtimeenvs", "Runtime Envs"), ("people", "People"),
        ("inbox", "Inbox"), ("accounting", "Accounting"), ("settings", "Settings"), ("shell", "Shell"), ("docs", "Docs"))

# Pages reached from a menu entry (and their form posts' result pages) keep
# that entry highlighted: backend name -> menu entry.  Others are their own.
MENU_PARENTS = {
    "jobman": ("jobview", "jobtail", "jobstatus", "jobaction", "jobmanaction", "canceljob",
               "resubmit", "mrslview", "jobfeasible", "jobchanges", "liveio", "sweepstatus",
               "sweepaction", "mqueue"),
    "submitjob": ("submitfields", "submitmrsltext", "textarea", "submit", "sweep"),
    "fileman": ("viewfile", "editor", "editfile", "fileaction", "filemove", "cp", "mv", "upload",
                "uploadchunked", "mkdir", "rm", "rmdir", "ls", "cat", "head", "tail", "wc",
                "grep", "touch", "truncate", "expand", "statpath", "chksum", "sharelink",
                "rangefileaccess", "pack", "unpack", "zip", "unzip", "sharedfolders"),
    "resources": ("monitor", "resman", "resadmin", "reseditaction", "resformedit", "startexe",
                  "stopexe", "addresowner", "rmresowner", "delres", "resstatus", "resclean"),
    "settings": ("changepassword", "newtoken", "revoketoken", "savesettings"),
    "shell": ("shellcmd",),
    "downloads": ("download", "scripts", "scriptsdownload", "renewcert"),
    "people": ("saveprofile", "acceptaccount", "rejectaccount", "disableuser", "enableuser",
               "removeuser"),
    "dashboard": ("samplejob", "setvisibility"),
    "inbox": ("sendmsg", "delmsg"),
    "runtimeenvs": ("redb", "showre", "createre", "deletere", "hostruntimeenvs",
                    "sethostruntimeenvs", "testresupport"),
    "vgrids": ("vgridman", "adminvgrid", "createvgrid", "rmvgrid", "addvgridowner",
               "addvgridmember", "addvgridres", "rmvgridowner", "rmvgridmember", "rmvgridres",
               "lsvgridowners", "lsvgridmembers", "lsvgridres", "sendrequestaction",
               "rejectvgridreq", "vgridsettings", "lsvgridtriggers", "addvgridtrigger",
               "rmvgridtrigger", "vgridpage", "showvgridprivatefile", "editvgridpage",
               "vgridwiki", "editvgridwiki", "vgridforum", "vgridforumaction",
               "invitevgridmember", "acceptvgridinvite", "declinevgridinvite"),
}
MENU_ENTRY = {page: entry for entry, pages in MENU_PARENTS.items() for page in pages}


def menu_entry(backend):
    """The menu entry to highlight on a backend's page."""
    return MENU_ENTRY.get(backend, backend)


esc = html.escape


class Page:
    """Who is looking and how to sign forms; None parts mean a public page."""

    def __init__(self, user=None, csrf="", active=""):
        self.user, self.csrf, self.active = user, csrf, active


def url(backend, /, **query):
    target = "/cgi-bin/%s.py" % backend
    return target + ("?" + urllib.parse.urlencode(query) if query else "")


def csrf_field(page):
    """The CSRF token, and a one-time token that makes a replayed post run
    nothing twice (see mig.web.results)."""
    if not page:
        return ""
    return ('<input type="hidden" name="_csrf" value="%s"><input type="hidden" name="_once" '
            'value="%s">' % (esc(page.csrf), secrets.token_urlsafe(12)))


def _cell(cell, page):
    if isinstance(cell, dict):
        if "checkbox" in cell:
            return '<input type="checkbox" name="%s" value="%s" aria-label="select %s"%s>' % (
                esc(cell["checkbox"]), esc(cell["value"]), esc(cell["value"]),
                ' form="%s"' % esc(cell["form"]) if cell.get("form") else "")
        if "group" in cell:  # several cells in one (a row's actions)
            return '<span class="group">%s</span>' % " ".join(
                _cell(c, page) for c in cell["group"])
        text = esc(str(cell.get("text", "")))
        if cell.get("state"):
            text = '<span class="state %s">%s</span>' % (esc(cell["state"]), text)
        if cell.get("badge"):  # a mark next to the text, e.g. a non-zero exit code
            text += ' <span class="badge %s" title="%s">%s</span>' % (
                esc(cell["badge"]["class"]), esc(cell["badge"].get("title", "")),
                esc(cell["badge"]["text"]))
        if cell.get("pre"):  # several lines, kept as they are (a message)
            text = '<pre class="cell-text">%s</pre>' % text
        if cell.get("href"):
            download = ' download="%s"' % esc(cell["download"]) if cell.get("download") else ""
            text = '<a href="%s"%s>%s</a>' % (esc(cell["href"]), download, text)
        if cell.get("id"):  # a target of #id links
            text = '<span id="%s">%s</span>' % (esc(cell["id"]), text)
        if cell.get("post"):
            text = _post_button(cell["post"], cell.get("fields", {}), cell.get("text", ""),
                                page, cell.get("confirm"), cell.get("style", "secondary"))
        return text
    if cell is True or cell is False:
        return "yes" if cell else "no"
    return esc(str(cell))


def _post_button(backend, fields, label, page, confirm=None, style="secondary"):
    hidden = "".join('<input type="hidden" name="%s" value="%s">' % (esc(k), esc(str(v)))
                     for k, v in fields.items())
    confirm_attr = ' data-confirm="%s"' % esc(confirm) if confirm else ""
    return ('<form method="post" action="%s" class="inline">%s%s<button class="%s"%s>%s'
            '</button></form>' % (esc(url(backend)), csrf_field(page), hidden, esc(style),
                                  confirm_attr, esc(label)))


def _table(obj, page):
    head = "".join("<th>%s</th>" % esc(c) for c in obj["columns"])
    rows = []
    select = obj.get("select")
    # The selection form holds only its buttons; the checkboxes join it with
    # form=, so that rows may carry forms of their own (no nested forms).
    form_id = "select-%s" % obj.get("kind", "") if select else ""
    for row in obj["rows"]:
        row = [dict(c, form=form_id) if isinstance(c, dict) and "checkbox" in c else c
               for c in row] if select else row
        cells = "".join('<td%s>%s</td>' % (' class="num"' if isinstance(c, (int, float))
                                             and not isinstance(c, bool) else "", _cell(c, page))
                        for c in row)
        rows.append("<tr>%s</tr>" % cells)
    # Wide tables scroll in their own box, never the page.
    table = ('<div class="table-wrap"><table data-kind="%s"><thead><tr>%s</tr></thead>'
             '<tbody>%s</tbody></table></div>' % (esc(obj.get("kind", "")), head, "".join(rows)))
    if not obj["rows"] and obj.get("empty"):
        table += '<p class="muted">%s</p>' % esc(obj["empty"])
    if not select:
        return table
    buttons = []
    for action in select["actions"]:
        value, label = action[0], action[1]
        confirm = action[2] if len(action) > 2 else (
            "Really %s the selected items?" % label.lower() if value in ("cancel", "delete")
            else None)
        buttons.append('<button name="action" value="%s" class="%s"%s>%s</button>' % (
            esc(value), "danger" if value in ("cancel", "delete") else "secondary",
            ' data-confirm="%s"' % esc(confirm) if confirm else "", esc(label)))
    buttons = "".join(buttons)
    return ('<form id="%s" method="post" action="%s">%s<div class="actions"><label><input '
            'type="checkbox" data-select-all="%s"> all</label>%s</div></form>%s'
            % (esc(form_id), esc(url(select["backend"])), csrf_field(page), esc(select["name"]),
               buttons, table))


FAILED_HEADINGS = {101: "No job was named", 102: "Something in the request needs fixing",
                   103: "No file or folder was named", 104: "You may not do this",
                   105: "Not found", 200: "Something went wrong on the grid's side: try again "
                                          "later, or ask the administrator"}


def _control_attrs(field, problem_id):
    """The attributes every control shares: read-only, placeholder (the default
    an empty field means), and the link to its problem for screen readers."""
    attrs = " readonly" if field.get("readonly") else ""
    if field.get("placeholder"):
        attrs += ' placeholder="%s"' % esc(str(field["placeholder"]))
    if problem_id:
        attrs += ' aria-invalid="true" aria-describedby="%s"' % problem_id
    return attrs


def _choices(field, ident, label, help_text, attrs):
    """Several of a few values (VGrids, runtime environments): one checkbox each."""
    value = field.get("value") or []
    chosen = {str(v) for v in (value if isinstance(value, (list, tuple)) else [value])}
    boxes = "".join('<label><input type="checkbox" name="%s" value="%s"%s> %s</label>' % (
        esc(field["name"]), esc(str(v)), " checked" if str(v) in chosen else "", esc(str(text)))
        for v, text in field["options"])
    if not field["options"]:
        boxes = '<span class="muted">%s</span>' % esc(field.get("none", "none to choose from"))
    return '<fieldset id="%s" class="choices"%s><legend>%s <span class="help">%s</span>' \
           '</legend>%s</fieldset>' % (ident, attrs, label, help_text, boxes)


def _problem_summary(obj):
    """Every problem of a refused form on top, each a link to its field: all
    of them are seen at once, without scrolling."""
    marked = [f for f in obj["fields"] if f.get("error")]
    if not marked and not obj.get("error"):
        return ""
    items = ['<li>%s</li>' % esc(obj["error"])] if obj.get("error") else []
    items += ['<li><a href="#f-%s">%s</a>: %s</li>' % (
        esc(f.get("id", f["name"])), esc(f.get("label", f["name"])), esc(f["error"]))
        for f in marked]
    title = obj.get("problems_title") or "Something in the form needs fixing"
    intro = "" if title == "Something in the form needs fixing" else \
        "<p>Something in the form needs fixing:</p>"
    return ('<div class="error-summary" id="error-summary" role="alert" tabindex="-1">'
            '<h2>%s</h2>%s<ul>%s</ul></div>' % (esc(title), intro, "".join(items)))


def _marks_its_problems(obj):
    return obj["object_type"] == "form" and bool(
        obj.get("error") or any(f.get("error") for f in obj["fields"]))


def _field(field, page):
    """One labelled control; its problem, if any, is shown right after it."""
    name, kind = field["name"], field.get("type", "text")
    label = esc(field.get("label", name))
    help_text = field.get("help", "")
    if field.get("help_href"):
        help_text = '%s <a href="%s">help</a>' % (esc(help_text), esc(field["help_href"]))
    else:
        help_text = esc(help_text)
    value = field.get("value", "")
    ident = "f-%s" % esc(field.get("id", name))  # two forms on a page may share a name
    if kind == "hidden":
        return '<input type="hidden" name="%s" value="%s">' % (esc(name), esc(str(value)))
    problem_id = "e-%s" % ident[2:] if field.get("error") else ""
    error = ('<div class="field-error" id="%s">%s</div>' % (  # the summary is the alert
        problem_id, esc(field["error"])) if problem_id else "")
    attrs = _control_attrs(field, problem_id)
    if kind == "choices":
        return _choices(field, ident, label, help_text, attrs) + error
    if kind == "textarea":
        control = '<textarea id="%s" name="%s" rows="%d"%s%s>%s</textarea>' % (
            ident, esc(name), field.get("rows", 12),
            ' class="compact"' if field.get("compact") else "", attrs, esc(str(value)))
    elif kind == "select":
        options = "".join('<option value="%s"%s>%s</option>' % (
            esc(str(v)), " selected" if str(v) == str(value) else "", esc(str(text)))
            for v, text in field["options"])
        control = '<select id="%s" name="%s"%s>%s</select>' % (ident, esc(name), attrs, options)
    elif kind == "checkbox":
        control = '<input id="%s" type="checkbox" name="%s" value="true"%s%s>' % (
            ident, esc(name), " checked" if value else "", attrs)
    elif kind == "file":
        control = '<input id="%s" type="file" name="%s"%s%s>' % (
            ident, esc(name), " multiple" if field.get("multiple") else "", attrs)
    else:
        control = '<input id="%s" type="%s" name="%s" value="%s"%s%s>' % (
            ident, esc(kind), esc(name), esc(str(value)),
            ' autocomplete="%s"' % esc(field["autocomplete"]) if field.get("autocomplete") else "",
            attrs)
    return '<label for="%s">%s <span class="help">%s</span></label>%s%s' % (
        ident, label, help_text, control, error)


def _fields(fields, page):
    """Fields in order; consecutive fields with the same "row" share a line."""
    out, index = [], 0
    while index < len(fields):
        row = fields[index].get("row")
        if not row:
            out.append(_field(fields[index], page))
            index += 1
            continue
        group = []
        while index < len(fields) and fields[index].get("row") == row:
            group.append('<div class="field">%s</div>' % _field(fields[index], page))
            index += 1
        out.append('<div class="field-row">%s</div>' % "".join(group))
    return "".join(out)


def _form(obj, page):
    """A form.  Fields marked advanced are folded into a <details>, opened when
    one of them holds a value or a problem; problems are summed up on top."""
    enctype = ' enctype="multipart/form-data"' if obj.get("multipart") else ""
    upload = " data-upload" if obj.get("progress") else ""
    progress = ('<progress class="progress" value="0" max="1" aria-label="Upload progress">'
                '</progress><span class="progress-text" role="status" aria-live="polite"></span>'
                if obj.get("progress") else "")  # the text is what screen readers hear
    action = obj.get("href") or url(obj["action"])
    fields = _fields([f for f in obj["fields"] if not f.get("advanced")], page)
    folded = [f for f in obj["fields"] if f.get("advanced")]
    if folded:
        opened = any(f.get("error") or f.get("value") for f in folded)
        fields += '<details class="advanced"%s><summary>%s</summary>%s</details>' % (
            " open" if opened else "", esc(obj.get("advanced", "More options")),
            _fields(folded, page))
    return ('<form class="stacked panel" method="%s" action="%s"%s%s>%s%s%s'
            '<div class="actions"><button type="submit">%s</button>%s</div></form>'
            % (esc(obj.get("method", "post")), esc(action), enctype, upload,
               csrf_field(page) if obj.get("method", "post") == "post" else "",
               _problem_summary(obj), fields, esc(obj.get("submit", "Submit")), progress))


def _job_list(obj, page):
    rows = []
    for job in obj["jobs"]:
        rows.append([{"href": url("jobview", job_id=job["job_id"]), "text": job["job_id"]},
                     {"text": job["status"], "state": job["status"]}, job.get("name", ""),
                     job.get("received_timestamp", "")])
    return _table({"columns": ("Job ID", "Status", "Name", "Received"), "rows": rows}, page)


def _dir_listing(obj, page):
    items = "".join("<li>%s</li>" % esc(e["name"]) for e in obj["entries"])
    return "<h3>%s</h3><ul>%s</ul>" % (esc(obj["path"]), items)


def render_object(obj, page=None):
    kind = obj["object_type"]
    if kind == "header":
        return "<h2>%s</h2>" % esc(obj["text"])
    if kind == "sectionheader":
        return "<h2>%s</h2>" % esc(obj["text"])
    if kind == "error_text":
        return '<p class="msg error" role="alert">%s</p>' % esc(obj["text"])
    if kind == "warning":
        return '<p class="msg warning">%s</p>' % esc(obj["text"])
    if kind == "success":
        return '<p class="msg ok">%s</p>' % esc(obj["text"])
    if kind == "text":
        return "<p>%s</p>" % esc(obj["text"])
    if kind in ("verbatim", "file_output", "shell_output"):
        return "<pre%s>%s</pre>" % (' id="%s"' % esc(obj["id"]) if obj.get("id") else "",
                                    esc(obj["text"]))
    if kind == "file_not_found":
        return '<p class="msg error">%s: No such file or directory</p>' % esc(obj["name"])
    if kind == "table":
        return _table(obj, page)
    if kind == "form":
        return _form(obj, page)
    if kind == "dir_listing":
        return _dir_listing(obj, page)
    if kind == "job_list":
        return _job_list(obj, page)
    if kind == "link":
        return '<p><a href="%s">%s</a></p>' % (esc(obj["destination"]), esc(obj["text"]))
    if kind == "markup":  # VGrid pages, wiki pages, forum posts: escaped, then a few marks
        wiki = obj.get("wiki")
        link = (lambda title: url("vgridwiki", vgrid_name=wiki, page=title)) if wiki else None
        return '<div class="markup">%s</div>' % markup.to_html(obj["text"], link)
    if kind == "links":
        return '<div class="actions">%s</div>' % "".join(
            '<a href="%s">%s</a>' % (esc(href), esc(text)) for href, text in obj["links"])
    if kind == "tabs":
        return '<nav class="tabs" aria-label="views">%s</nav>' % "".join(
            '<a href="%s"%s>%s</a>' % (esc(href), ' class="active" aria-current="page"'
                                       if active else "", esc(text))
            for href, text, active in obj["tabs"])
    if kind == "cards":
        return '<div class="cards">%s</div>' % "".join(
            '<div class="card"><div class="value">%s</div><div class="label">%s</div></div>'
            % (esc(str(item["value"])), esc(item["label"])) for item in obj["items"])
    if kind == "chart":
        return charts.svg(obj)
    if kind == "post_button":
        return _post_button(obj["backend"], obj.get("fields", {}), obj["text"], page,
                            obj.get("confirm"), obj.get("style", "secondary"))
    if kind == "live":
        return ('<p class="live" role="status" data-live="%s" data-since="%.6f" '
                'data-job="%s" data-every="%d">Updated %s UTC%s</p>'
                % ("1" if obj["active"] else "0", obj["since"], esc(obj.get("job_id", "")),
                   obj.get("every", 0),
                   esc(obj["updated"]), "; following changes live" if obj["active"]
                   else "; nothing here changes any more"))
    if kind == "tail":
        return '<pre class="tail" data-tail="%s" aria-live="polite">%s</pre>' % (
            esc(obj["href"]), esc(obj.get("text", "")))
    if kind == "pager":
        return _pager(obj)
    if kind == "image":
        return '<p><img src="%s" alt="%s" class="shown"></p>' % (
            esc(obj["src"]), esc(obj.get("alt", "")))
    if kind == "shell":
        return ('<pre id="shell-output" class="shell-out">%s</pre><form id="shell-form" '
                'method="post" action="%s">%s<input type="hidden" name="output_format" '
                'value="json"><input type="hidden" name="cwd" value="%s"><input type="text" '
                'name="command" autocomplete="off" aria-label="command" autofocus></form>'
                % (esc(obj.get("text", "")), esc(url("shellcmd")), csrf_field(page),
                   esc(obj.get("cwd", "."))))
    return ""


def _pager(obj):
    links = []
    for number in obj["pages"]:
        if number == obj["page"]:
            links.append('<strong aria-current="page">%d</strong>' % number)
        else:
            links.append('<a href="%s">%d</a>' % (esc(obj["href"].replace("{page}", str(number))),
                                                  number))
    return '<nav class="pager" aria-label="pages">Page %s</nav>' % " ".join(links)


def layout(title, body_html, page=None, scripts=()):
    """The whole document: menu on the left for signed-in users; scripts: more
    files of /static/ the page needs (e.g. files.js)."""
    head = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>%s - MiG</title><link rel="stylesheet" href="/static/portal.css">'
            '<script src="/static/portal.js"></script>%s</head>'
            % (esc(title), "".join('<script src="/static/%s" defer></script>' % esc(name)
                                   for name in scripts)))
    skip = '<a class="skip-link" href="#content">Skip to content</a>'
    if not page or not page.user:
        return head + '<body>%s<main id="content">%s</main></body></html>' % (skip, body_html)
    active = menu_entry(page.active)
    menu = "".join('<a href="%s"%s>%s</a>' % (esc(url(name)), ' class="active" aria-current="page"'
                                              if name == active else "", esc(label))
                   for name, label in MENU)
    top = ('<header class="top"><span>Signed in as <strong>%s</strong></span><form method="post" '
           'action="/logout">%s<button class="secondary">Log out</button></form></header>'
           % (esc(page.user), csrf_field(page)))
    return (head + '<body>%s<div class="layout"><nav class="menu" aria-label="main menu">'
            '<a class="brand" href="%s">MiG appliance</a>%s</nav><main id="content">%s%s</main>'
            '</div></body></html>' % (skip, esc(url("dashboard")), menu, top, body_html))


def public_page(title, body_html):
    """A public page (login, landing)."""
    return layout(title, body_html, None)


def render(objects, exit_code, description, title, seconds, page=None):
    """The page of a reply.  A failure is said in words for people: MiG's exit
    code and description stay in txt and json, objects marked wire_only are
    for those formats only, and a form that marks its own problems says it all."""
    shown = [o for o in objects if not o.get("wire_only")]
    status = ""
    if exit_code != 0 and not any(_marks_its_problems(o) for o in shown):
        status = '<p class="msg error failed" role="alert">%s</p>' % esc(
            FAILED_HEADINGS.get(exit_code, "This could not be done"))
    body = "<h1>%s</h1>%s%s" % (esc(title), status,
                                "".join(render_object(o, page) for o in shown))
    scripts = dict.fromkeys(name for o in shown for name in o.get("scripts", ()))
    return layout(title, body, page, scripts)
