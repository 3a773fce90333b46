"""A VGrid's public page at /vgrid/NAME/ (also /public/vgrid/NAME/, as MiG):
readable by anyone, no login, unless its owners withdraw it
(``public_page = MEMBERS``: then it answers 404 as for no VGrid).  The
owners' text goes through the small markup (render/markup.py), and the page
is sent with a policy that allows no script at all."""

import html

from mig.errors import MigError
from mig.render import markup
from mig.web.response import Response

PREFIXES = ("/vgrid/", "/public/vgrid/")
POLICY = "default-src 'none'; style-src 'self'; img-src 'self' https:; base-uri 'none'; " \
         "form-action 'none'; frame-ancestors 'none'"


def match(path):
    """NAME of /vgrid/NAME/ or /public/vgrid/NAME/ (index.html allowed), else None."""
    for prefix in PREFIXES:
        if path.startswith(prefix) and len(path) > len(prefix):
            rest = path[len(prefix):]
            for suffix in ("/index.html", "/"):
                if rest.endswith(suffix):
                    return rest[:-len(suffix)]
            return rest
    return None


def serve(dispatcher, req, name):
    if req.method not in ("GET", "HEAD"):
        return Response(405, "the public page is read only\n", headers={"Allow": "GET, HEAD"})
    try:
        page = dispatcher.grid.vgrid_content.page(name, "public")
        withdrawn = dispatcher.grid.vgrids.settings(name)["public_page"] != "EVERYONE"
    except MigError:
        return Response(404, "no such VGrid\n")
    if withdrawn:  # its owners keep it for the members (vgridpage)
        return Response(404, "no such VGrid\n")
    body = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>%s</title><link rel=\"stylesheet\" href=\"/static/portal.css\"></head>"
            "<body><main id=\"main\"><h1>%s</h1><div class=\"markup\" id=\"public-page\">%s"
            "</div></main></body></html>"
            % (html.escape(name), html.escape(name),
               markup.to_html(page["text"]) or "<p>This VGrid has no public page yet.</p>"))
    return Response(200, body, "text/html; charset=utf-8",
                    {"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"})
