"""Request parsing as MiG's clients need it.

Form bodies and query strings are split on ';' as well as '&' (MiG's
scripts start their bodies with ``_=certauth;output_format=txt``), values
are URL-decoded with '+' as space, repeated keys keep their order, and
blank values count as absent (as upstream's FieldStorage did).
"""

import json
import re
import urllib.parse

from mig.errors import InvalidArgument

_SPLIT = re.compile(r"[&;]")


def parse_form(text):
    """'a=1;b=2&b=3&c=' -> {'a': ['1'], 'b': ['2', '3']}"""
    fields = {}
    for piece in _SPLIT.split(text or ""):
        if "=" not in piece:
            continue
        key, value = piece.split("=", 1)
        key = urllib.parse.unquote_plus(key).strip()
        value = urllib.parse.unquote_plus(value)
        if key.startswith("amp;"):
            key = key[4:]
        if key and value != "":
            fields.setdefault(key, []).append(value)
    return fields


def parse_json_fields(body):
    """A JSON object body -> the same {name: [values]} shape as a form."""
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise InvalidArgument("invalid JSON body: %s" % exc) from None
    if not isinstance(data, dict):
        raise InvalidArgument("a JSON body must be an object of field: value")
    fields = {}
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        cleaned = [json.dumps(v) if isinstance(v, (dict, list)) else str(v)
                   for v in values if v is not None and str(v) != ""]
        if cleaned:
            fields[str(key)] = cleaned
    return fields


def merge(*dicts):
    merged = {}
    for fields in dicts:
        for key, values in fields.items():
            merged.setdefault(key, []).extend(values)
    return merged


def parse_multipart(body, content_type):
    """multipart/form-data -> ({name: [values]}, [(name, filename, bytes)])."""
    from email.parser import BytesParser
    from email.policy import HTTP
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise InvalidArgument("invalid multipart body")
    fields, files = {}, []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        filename = part.get_param("filename", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if filename is not None:
            if filename:
                files.append((name, filename, data))
        else:
            value = data.decode("utf-8", "replace")
            if value != "":
                fields.setdefault(name, []).append(value)
    return fields, files
