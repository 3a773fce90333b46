"""The backend contract: one backend per user-visible operation.

A backend declares its fields (with validators and defaults), whether it
changes state (then POST only, CSRF-checked for browsers) and its title;
``run(ctx, args)`` returns output objects or raises a MigError.  All common
work (auth, CSRF, validation, timing, errors, output format) happens once
in the web dispatcher; the same table generates the API docs and forms.
"""

import re
from dataclasses import dataclass, field

from mig.errors import FieldError

ALWAYS_ALLOWED = {"output_format", "_csrf", "_once", "_", "modauthopenid.nonce"}
_NUMBERED = re.compile(r"^([A-Za-z][A-Za-z_]*?)_([0-9]{1,4})$")

CHECKS = {
    "path": (lambda v: "\x00" not in v and len(v) <= 4096, "a path"),
    "job_id": (lambda v: re.match(r"^[A-Za-z0-9.\-_*?\[\]]+$", v) is not None,
               "a job id or pattern (letters, digits, . - _ and * ?)"),
    "flags": (lambda v: re.match(r"^[a-zA-Z]*$", v) is not None, "letters"),
    "number": (lambda v: re.match(r"^[0-9]+$", v) is not None, "a whole number"),
    "word": (lambda v: re.match(r"^[A-Za-z0-9_.\-]*$", v) is not None,
             "letters, digits, '.', '_' or '-'"),
    "text": (lambda v: "\x00" not in v, "text"),
    "bool": (lambda v: v.lower() in ("true", "false", "1", "0", "on", "off", "yes", "no"),
             "true or false"),
    "vgrid": (lambda v: re.match(r"^[A-Za-z0-9][A-Za-z0-9._ /-]{0,300}$", v) is not None,
              "a VGrid name (letters, digits, '.', '_', '-', spaces; A/B for a sub-VGrid)"),
    "resource": (lambda v: re.match(r"^[A-Za-z0-9_.\-:\[\]]*$", v) is not None,
                 "a resource name (HOSTURL.N)"),
}


@dataclass(frozen=True)
class Field:
    """One input field: validator name, default list, whether repeated/required."""

    check: str = "word"
    default: tuple = ()
    required: bool = False
    multi: bool = False
    help: str = ""


@dataclass(frozen=True)
class Backend:
    name: str
    run: object
    title: str
    fields: dict = field(default_factory=dict)
    state_changing: bool = False
    header: str = ""
    help: str = ""
    public: bool = False
    raw_body: bool = False

    def _family(self, name):
        """A numbered field such as mrsltextarea_7 belongs to the family mrsltextarea_N."""
        match = _NUMBERED.match(name)
        if match and match.group(1) + "_N" in self.fields:
            return match.group(1) + "_N", int(match.group(2))
        return None, None

    def validate(self, raw):
        """raw: {name: [values]} with blanks dropped -> {name: value or [values]}.

        A family field NAME_N collects NAME_0, NAME_1, ... as [(number, value)].
        """
        args = {}
        families = {}
        for name, values in raw.items():
            if name in ALWAYS_ALLOWED:
                continue
            spec = self.fields.get(name)
            family, number = self._family(name) if spec is None else (None, None)
            if family is not None:
                spec = self.fields[family]
                families.setdefault(family, []).extend((number, v) for v in values)
            if spec is None:
                raise FieldError("input parsing error: %s: unexpected field: %s" % (name, name),
                                 field=name, problem="unexpected")
            check, what = CHECKS[spec.check]
            for value in values:
                if not check(value):
                    raise FieldError("invalid value for %s: %r (expected %s)"
                                     % (name, value[:80], what), field=name, problem="invalid",
                                     value=value[:80], expected=what)
        for name, spec in self.fields.items():
            if name.endswith("_N"):
                args[name] = sorted(families.get(name, []))
                if spec.required and not args[name]:
                    raise FieldError("missing required field: %s (e.g. %s)"
                                     % (name, name[:-1] + "0"), field=name, problem="missing")
                continue
            values = list(raw.get(name) or spec.default)
            if spec.required and not values:
                raise FieldError("missing required field: %s" % name, field=name,
                                 problem="missing")
            args[name] = values if spec.multi else (values[-1] if values else "")
        return args


def truthy(value):
    """A checkbox's or flag's value as MiG's forms send it: true, 1, on or yes."""
    return str(value).strip().lower() in ("true", "1", "on", "yes")


REGISTRY = {}


def backend(name, title=None, fields=None, state_changing=False, header="", help="",
            public=False, raw_body=False):
    """Register a backend function under its MiG name.  raw_body: a PUT body
    is left unread for the backend to stream (ctx.body), not parsed as a form."""
    def register(run):
        REGISTRY[name] = Backend(name=name, run=run, title=title or name,
                                 fields=dict(fields or {}), state_changing=state_changing,
                                 header=header or title or name,
                                 help=help or (run.__doc__ or "").strip(), public=public,
                                 raw_body=raw_body)
        return run
    return register


class Context:
    """What a backend may use: the caller, its home and the grid services."""

    def __init__(self, user, grid, home, method="POST"):
        self.user = user
        self.grid = grid
        self.home = home
        self.method = method
        self.files = []  # uploaded files: (field, filename, bytes)
        self.session = ""  # the portal session's id ("" for certificates and tokens)
        self.base_url = ""  # https://HOST:PORT as the client reached us
        self.headers = {}  # the request's headers (Content-Range for chunked uploads)
        self.body = None  # a raw body left unread, for backends declared raw_body
        self.body_length = 0
        self.end_other_sessions = lambda: None  # set by the web layer (password change)

    def call(self, name, fields):
        """Run another backend for the same caller (pages and the shell reuse them)."""
        backend = REGISTRY[name]
        return backend.run(self, backend.validate(fields))
