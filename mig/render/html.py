"""A plain HTML page for any backend result; every user string is escaped.

The full portal (menus, forms, charts) builds on this; backends never
produce HTML themselves.
"""

import html

STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
         ".error{color:#a00}.warning{color:#a60}pre{background:#f6f6f6;padding:.6em}")


def _job_html(job):
    rows = "".join("<tr><th>%s</th><td>%s</td></tr>" % (html.escape(k), html.escape(str(v)))
                   for k, v in job.items() if k not in ("schedule", "history"))
    return "<table>%s</table>" % rows


def render_object(obj):
    esc = html.escape
    kind = obj["object_type"]
    if kind == "header":
        return "<h2>%s</h2>" % esc(obj["text"])
    if kind == "error_text":
        return '<p class="error">%s</p>' % esc(obj["text"])
    if kind == "warning":
        return '<p class="warning">%s</p>' % esc(obj["text"])
    if kind == "text":
        return "<p>%s</p>" % esc(obj["text"])
    if kind in ("verbatim", "file_output"):
        return "<pre>%s</pre>" % esc(obj["text"])
    if kind == "file_not_found":
        return '<p class="error">%s: No such file or directory</p>' % esc(obj["name"])
    if kind == "table":
        head = "".join("<th>%s</th>" % esc(c) for c in obj["columns"])
        body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % esc(str(c)) for c in row)
                       for row in obj["rows"])
        return "<table><tr>%s</tr>%s</table>" % (head, body)
    if kind == "dir_listing":
        items = "".join("<li>%s</li>" % esc(e["name"]) for e in obj["entries"])
        return "<h3>%s</h3><ul>%s</ul>" % (esc(obj["path"]), items)
    if kind == "job_list":
        return "".join(_job_html(j) for j in obj["jobs"])
    if kind == "link":
        return '<a href="%s">%s</a>' % (esc(obj["destination"]), esc(obj["text"]))
    return ""


def page(title, body_html):
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>%s</title><style>%s</style></head><body>%s</body></html>"
            % (html.escape(title), STYLE, body_html))


def render(objects, exit_code, description, title, seconds):
    status = "" if exit_code == 0 else '<p class="error">Exit code %s: %s</p>' % (
        exit_code, html.escape(description))
    body = "<h1>%s</h1>%s%s" % (html.escape(title), status,
                                "".join(render_object(o) for o in objects))
    return page(title, body)
