"""Renderers: output objects -> txt (MiG wire format), json, html."""

from mig.render import html, jsonfmt, txt

FORMATS = {"txt": (txt.render, "text/plain; charset=utf-8"),
           "json": (jsonfmt.render, "application/json"),
           "html": (html.render, "text/html; charset=utf-8")}
