"""Output objects: what backends return, before any format is chosen.

Plain dicts with an ``object_type`` (as in MiG), so that the same result is
rendered as MiG txt for scripts, JSON for programs and HTML for browsers.
"""


class Result:
    """A backend's objects with its MiG exit code (0 unless something failed)."""

    def __init__(self, objects, exit_code=0, description=None):
        self.objects = list(objects)
        self.exit_code = exit_code
        self.description = description


def text(value):
    return {"object_type": "text", "text": str(value)}


def error(value):
    return {"object_type": "error_text", "text": str(value)}


def success(value):
    return {"object_type": "success", "text": str(value)}


def warning(value):
    return {"object_type": "warning", "text": str(value)}


def header(value):
    return {"object_type": "header", "text": str(value)}


def file_not_found(name):
    return {"object_type": "file_not_found", "name": name}


def table(kind, columns, rows):
    """A table: kind names it for JSON users (e.g. submitstatuslist)."""
    return {"object_type": "table", "kind": kind, "columns": list(columns),
            "rows": [list(r) for r in rows]}


def file_output(data, path=""):
    return {"object_type": "file_output", "path": path, "text": data}


def dir_listing(path, entries, long=False):
    return {"object_type": "dir_listing", "path": path, "entries": entries, "long": long}


def job_list(jobs, header_text=""):
    return {"object_type": "job_list", "jobs": jobs, "header": header_text}


def link(destination, label):
    return {"object_type": "link", "destination": destination, "text": label}


def verbatim(value):
    return {"object_type": "verbatim", "text": str(value)}
