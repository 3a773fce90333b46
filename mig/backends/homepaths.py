"""Paths in a user's home as the file backends spell them, and running an
operation over every path that a list of patterns names."""

import posixpath

from mig.errors import FileNotFound, MigError
from mig.render import objects as O


def norm(rel):
    """A home-relative path in one spelling: no leading '/', '.' for the home itself."""
    rel = (rel or ".").replace("\\", "/")
    if rel == "~" or rel.startswith("~/"):
        rel = rel[1:]
    return posixpath.normpath("/" + rel).lstrip("/") or "."


def join(folder, name):
    return norm(posixpath.join(norm(folder), name))


def parent(rel):
    return norm(posixpath.dirname(norm(rel)))


def each_path(ctx, patterns, on_path, missing_ok=False):
    """Run on_path over every expansion of every pattern; collect MiG-style errors
    (a pattern that matches nothing is one, unless missing_ok, as with -f)."""
    objects, code = [], 0
    for pattern in patterns:
        try:
            paths = ctx.home.expand(pattern)
        except FileNotFound:
            if not missing_ok:
                objects.append(O.file_not_found(pattern))
                code = code or FileNotFound.exit_code
            continue
        except MigError as exc:
            objects.append(O.error(exc.message))
            code = code or exc.exit_code
            continue
        for path in paths:
            try:
                objects.extend(on_path(path))
            except MigError as exc:
                objects.append(O.error(exc.message))
                code = code or exc.exit_code
    return objects, code
