"""JSON replies: the exit status first, then the backend's output objects."""

import json


def render(objects, exit_code, description, title, seconds):
    status = {"object_type": "script_status", "exit_code": exit_code,
              "description": description, "title": title, "seconds": round(seconds, 4)}
    return json.dumps([status] + list(objects), default=_plain)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
