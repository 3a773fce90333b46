"""A refused request, said to the one who sent it: scripts get MiG's own
wording and exit code; a browser gets it in words for people (no internal
field names) and a way back to the page it came from."""

import re
import urllib.parse

from mig.render.objects import error as error_object
from mig.web.request import BACKEND_PREFIXES

_MISSING_FIELD = re.compile(r"^missing required field: ([A-Za-z0-9_]+)")
_INVALID_VALUE = re.compile(r"^invalid value for ([A-Za-z0-9_]+): (.*) \(expected (.*)\)$", re.S)
_UNEXPECTED_FIELD = re.compile(r"^input parsing error: ")


def failed_objects(exc, backend, req, fmt):
    """The objects of a refused request.  Scripts get MiG's wording; a browser
    gets it in words for people (no internal field names) and the way back."""
    if fmt != "html":
        return [error_object(exc.message)]
    objects = [error_object(for_people(exc.message, backend))]
    back = local_referer(req)
    if back:
        objects.append({"object_type": "links", "links": [(back, "Back to the page you "
                                                                 "came from")]})
    return objects


def for_people(message, backend):
    """A field check's message with the field's meaning instead of its name."""
    def meaning(name):
        spec = backend.fields.get(name) if backend else None
        if spec is not None and spec.help and not re.search(r"[a-z]_[0-9N]", spec.help):
            return spec.help
        if re.match(r"^[a-z]+(_[a-z]+)?$", name):  # job_id: "the job id"
            return "the " + name.replace("_", " ")
        return "a field this page needs"
    missing = _MISSING_FIELD.match(message)
    if missing:
        spec = backend.fields.get(missing.group(1)) if backend else None
        if spec is not None and spec.multi:  # a list to pick from: nothing was ticked
            return "Nothing was chosen: tick %s, then try again." % meaning(missing.group(1))
        return "Nothing was given for %s: fill it in and try again." % meaning(missing.group(1))
    invalid = _INVALID_VALUE.match(message)
    if invalid:
        return "%s is not accepted for %s: expected %s." % (
            invalid.group(2), meaning(invalid.group(1)), invalid.group(3))
    if _UNEXPECTED_FIELD.match(message):
        return ("The form sent something this page does not take: open the page again "
                "from the menu and try once more.")
    return message


def local_referer(req):
    """The portal page a request came from, if it came from this site."""
    referer = urllib.parse.urlsplit(req.header("Referer"))
    if referer.netloc != req.header("Host") or not referer.path.startswith(BACKEND_PREFIXES):
        return ""
    return referer.path + ("?" + referer.query if referer.query else "")
