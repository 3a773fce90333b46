"""HTML for browsers: the portal layout around any backend's output objects.

Every user string goes through ``html.escape``; forms carry the CSRF token;
charts are inline SVG drawn here; no external assets.  Backends never make
HTML: they return objects, and this module decides how they look.
"""

import html
import secrets
import urllib.parse

from mig.render import charts

MENU = (("dashboard", "Dashboard"), ("submitjob", "Submit Job"), ("fileman", "Files"),
        ("jobman", "Jobs"), ("vgrids", "VGrids"), ("resources", "Resources"),
        ("downloads", "Downloads"), ("runtimeenvs", "Runtime Envs"), ("people", "People"),
        ("settings", "Settings"), ("shell", "Shell"), ("docs", "Docs"))

esc = html.escape


class Page:
    """Who is looking and how to sign forms; None parts mean a public page."""

    def __init__(self, user=None, csrf="", active="", refresh=0):
        self.user, self.csrf, self.active, self.refresh = user, csrf, active, refresh


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
            return '<input type="checkbox" name="%s" value="%s" aria-label="select %s">' % (
                esc(cell["checkbox"]), esc(cell["value"]), esc(cell["value"]))
        text = esc(str(cell.get("text", "")))
        if cell.get("state"):
            text = '<span class="state %s">%s</span>' % (esc(cell["state"]), text)
        if cell.get("href"):
            text = '<a href="%s">%s</a>' % (esc(cell["href"]), text)
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
    for row in obj["rows"]:
        cells = "".join('<td%s>%s</td>' % (' class="num"' if isinstance(c, (int, float))
                                             and not isinstance(c, bool) else "", _cell(c, page))
                        for c in row)
        rows.append("<tr>%s</tr>" % cells)
    table = '<table data-kind="%s"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (
        esc(obj.get("kind", "")), head, "".join(rows))
    if not obj["rows"] and obj.get("empty"):
        table += '<p class="muted">%s</p>' % esc(obj["empty"])
    select = obj.get("select")
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
    return ('<form method="post" action="%s">%s<div class="actions"><label><input '
            'type="checkbox" data-select-all="%s"> all</label>%s</div>%s</form>'
            % (esc(url(select["backend"])), csrf_field(page), esc(select["name"]), buttons, table))


def _field(field, page):
    name, kind = field["name"], field.get("type", "text")
    label = esc(field.get("label", name))
    help_text = field.get("help", "")
    if field.get("help_href"):
        help_text = '%s <a href="%s">help</a>' % (esc(help_text), esc(field["help_href"]))
    else:
        help_text = esc(help_text)
    error = ('<div class="field-error" role="alert">%s</div>' % esc(field["error"])
             if field.get("error") else "")
    value = field.get("value", "")
    ident = "f-%s" % esc(field.get("id", name))  # two forms on a page may share a name
    if kind == "hidden":
        return '<input type="hidden" name="%s" value="%s">' % (esc(name), esc(str(value)))
    readonly = " readonly" if field.get("readonly") else ""
    if kind == "textarea":
        control = '<textarea id="%s" name="%s" rows="%d"%s>%s</textarea>' % (
            ident, esc(name), field.get("rows", 12), readonly, esc(str(value)))
    elif kind == "select":
        options = "".join('<option value="%s"%s>%s</option>' % (
            esc(str(v)), " selected" if str(v) == str(value) else "", esc(str(text)))
            for v, text in field["options"])
        control = '<select id="%s" name="%s">%s</select>' % (ident, esc(name), options)
    elif kind == "checkbox":
        control = '<input id="%s" type="checkbox" name="%s" value="true"%s>' % (
            ident, esc(name), " checked" if value else "")
    elif kind == "file":
        control = '<input id="%s" type="file" name="%s"%s>' % (
            ident, esc(name), " multiple" if field.get("multiple") else "")
    else:
        control = '<input id="%s" type="%s" name="%s" value="%s"%s%s>' % (
            ident, esc(kind), esc(name), esc(str(value)),
            ' autocomplete="%s"' % esc(field["autocomplete"]) if field.get("autocomplete") else "",
            readonly)
    return '<label for="%s">%s <span class="help">%s</span></label>%s%s' % (
        ident, label, help_text, control, error)


def _form(obj, page):
    enctype = ' enctype="multipart/form-data"' if obj.get("multipart") else ""
    upload = " data-upload" if obj.get("progress") else ""
    progress = '<progress class="progress" value="0" max="1"></progress>' if obj.get("progress") else ""
    action = obj.get("href") or url(obj["action"])
    fields = "".join(_field(f, page) for f in obj["fields"])
    return ('<form class="stacked panel" method="%s" action="%s"%s%s>%s%s'
            '<div class="actions"><button type="submit">%s</button>%s</div></form>'
            % (esc(obj.get("method", "post")), esc(action), enctype, upload,
               csrf_field(page) if obj.get("method", "post") == "post" else "",
               fields, esc(obj.get("submit", "Submit")), progress))


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
        return "<pre>%s</pre>" % esc(obj["text"])
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
    if kind == "links":
        return '<div class="actions">%s</div>' % "".join(
            '<a href="%s">%s</a>' % (esc(href), esc(text)) for href, text in obj["links"])
    if kind == "tabs":
        return '<div class="tabs">%s</div>' % "".join(
            '<a href="%s"%s>%s</a>' % (esc(href), ' class="active"' if active else "", esc(text))
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
        return '<p><img src="%s" alt="%s" style="max-width:100%%"></p>' % (
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
            links.append("<strong>%d</strong>" % number)
        else:
            links.append('<a href="%s">%d</a>' % (esc(obj["href"].replace("{page}", str(number))),
                                                  number))
    return '<div class="pager">Page %s</div>' % " ".join(links)


def layout(title, body_html, page=None):
    """The whole document: menu on the left for signed-in users."""
    head = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>%s - MiG</title><link rel="stylesheet" href="/static/portal.css">'
            '<script src="/static/portal.js"></script>%s</head>'
            % (esc(title), '<meta name="mig-refresh" content="%d">' % page.refresh
               if page and page.refresh else ""))
    if not page or not page.user:
        return head + "<body><main>%s</main></body></html>" % body_html
    menu = "".join('<a href="%s"%s>%s</a>' % (esc(url(name)), ' class="active"'
                                              if name == page.active else "", esc(label))
                   for name, label in MENU)
    top = ('<header class="top"><span>Signed in as <strong>%s</strong></span><form method="post" '
           'action="/logout">%s<button class="secondary">Log out</button></form></header>'
           % (esc(page.user), csrf_field(page)))
    return (head + '<body><div class="layout"><nav class="menu" aria-label="main menu">'
            '<a class="brand" href="%s">MiG appliance</a>%s</nav><main>%s%s</main></div>'
            '</body></html>' % (esc(url("dashboard")), menu, top, body_html))


def public_page(title, body_html):
    """A public page (login, landing)."""
    return layout(title, body_html, None)


def render(objects, exit_code, description, title, seconds, page=None):
    status = "" if exit_code == 0 else '<p class="msg error" role="alert">%s (exit code %s)</p>' % (
        esc(description), exit_code)
    body = "<h1>%s</h1>%s%s" % (esc(title), status,
                                "".join(render_object(o, page) for o in objects))
    return layout(title, body, page)
