"""A refused request, said to the one who sent it: scripts get MiG's own
wording and exit code; a browser gets it in words for people (no internal
field names) and a way back to the page it came from."""

import re
import urllib.parse

from mig.errors import FieldError
from mig.render.objects import error as error_object
from mig.web.request import BACKEND_PREFIXES

def failed_objects(exc, backend, req, fmt):
    """The objects of a refused request.  Scripts get MiG's wording; a browser
    gets it in words for people (no internal field names) and the way back."""
    if fmt != "html":
        return [error_object(exc.message)]
    objects = [error_object(for_people(exc, backend))]
    back = local_referer(req)
    if back:
        objects.append({"object_type": "links", "links": [(back, "Back to the page you "
                                                                 "came from")]})
    return objects


def for_people(exc, backend):
    """A refusal's message, with a field's meaning instead of its name when
    a field check refused the request."""
    def meaning(name):
        spec = backend.fields.get(name) if backend else None
        if spec is not None and spec.help and not re.search(r"[a-z]_[0-9N]", spec.help):
            return spec.help
        if re.match(r"^[a-z]+(_[a-z]+)?$", name):  # job_id: "the job id"
            return "the " + name.replace("_", " ")
        return "a field this page needs"
    if not isinstance(exc, FieldError):
        return exc.message
    if exc.problem == "missing":
        spec = backend.fields.get(exc.field) if backend else None
        if spec is not None and spec.multi:  # a list to pick from: nothing was ticked
            return "Nothing was chosen: tick %s, then try again." % meaning(exc.field)
        return "Nothing was given for %s: fill it in and try again." % meaning(exc.field)
    if exc.problem == "invalid":
        return "%r is not accepted for %s: expected %s." % (
            exc.value, meaning(exc.field), exc.expected)
    return ("The form sent something this page does not take: open the page again "
            "from the menu and try once more.")


def local_referer(req):
    """The portal page a request came from, if it came from this site."""
    referer = urllib.parse.urlsplit(req.header("Referer"))
    if referer.netloc != req.header("Host") or not referer.path.startswith(BACKEND_PREFIXES):
        return ""
    return referer.path + ("?" + referer.query if referer.query else "")
