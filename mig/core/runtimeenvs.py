"""Runtime environments: the contract between users and resource owners
about software (MiG's RE definitions).

A runtime environment has a name (upper-cased, e.g. ``PYTHON-3.11``), a
description, software entries, and the environment variables every
resource that provides it must set (each with an example), and optionally a
test job.  It never changes after creation: a new version is a new name.
Only its creator deletes it, and only while no resource provides it.

Resources declare what they provide in their configuration, MiG's way::

    ::RUNTIMEENVIRONMENT::
    name: PYTHON-3.11
    PYTHON=/usr/bin/python3.11

``provided(lines)`` reads that; ``check_provided`` holds it against the
definitions (every declared variable set, no others); the job script of a
job that asks for an environment exports its variables with the
resource's values.
"""

import re
import time

from mig.core import jobspec
from mig.errors import AccessDenied, ClientError, ConflictError, InvalidArgument, MrslError

NAME_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_.+\-]{0,63}$")
VARIABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SOFTWARE_KEYS = ("name", "version", "url", "description", "icon")
VARIABLE_KEYS = ("name", "example", "description")
MAX_ENTRIES = 100


def check_name(name):
    name = (name or "").strip().upper()
    if not NAME_PATTERN.match(name):
        raise InvalidArgument("invalid runtime environment name %r: use letters, digits, "
                              "'_', '.', '+' and '-', at most 64" % name)
    return name


def _entry(text, keys, what):
    """'key=value' lines (or one line of them split by ';') -> {key: value}."""
    found = {}
    for part in re.split(r"[\n;]", text):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in keys:
            raise InvalidArgument("%s: %r is not one of %s as key=value"
                                  % (what, part.strip(), ", ".join(keys)))
        found[key] = value.strip()
    if not found.get("name"):
        raise InvalidArgument("%s: name= is required" % what)
    return {key: found.get(key, "") for key in keys}


def definition(name, description="", software=(), variables=(), testprocedure="",
               verify=None):
    """A checked definition from backend fields (software and variables as
    key=value texts, one entry each)."""
    name = check_name(name)
    software = [_entry(text, SOFTWARE_KEYS, "software") for text in software if text.strip()]
    variables = [_entry(text, VARIABLE_KEYS, "environment") for text in variables
                 if text.strip()]
    if len(software) > MAX_ENTRIES or len(variables) > MAX_ENTRIES:
        raise InvalidArgument("at most %d software entries and variables" % MAX_ENTRIES)
    names = [v["name"] for v in variables]
    for variable in names:
        if not VARIABLE_PATTERN.match(variable) or variable.startswith("MIG_"):
            raise InvalidArgument("environment: %r is not a variable name (letters, digits, "
                                  "'_'; not starting with MIG_)" % variable)
    if len(set(names)) != len(names):
        raise InvalidArgument("environment: each variable is declared once")
    if testprocedure.strip():
        try:
            test = jobspec.parse_mrsl(testprocedure)
        except MrslError as exc:
            raise InvalidArgument("testprocedure: %s" % exc.message) from None
        if test.get("VERIFYFILES"):
            raise InvalidArgument("testprocedure: may not use VERIFYFILES (the test adds its own)")
    return {"RENAME": name, "DESCRIPTION": (description or "").strip()[:2000] or
            "Not available", "SOFTWARE": software, "ENVIRONMENTVARIABLE": variables,
            "TESTPROCEDURE": testprocedure.strip(), "VERIFY": dict(verify or {})}


def provided(lines):
    """A resource's RUNTIMEENVIRONMENT lines -> {NAME: {VARIABLE: value}}, in
    MiG's format (``name: NAME`` then ``VAR=value`` lines); a bare name
    provides an environment without variables."""
    found, current = {}, None
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.lower().startswith("name:"):
            current = line[5:].strip().upper()
            if current in found:
                raise InvalidArgument("RUNTIMEENVIRONMENT: %s is listed twice" % current)
            found[current] = {}
        elif "=" in line and current is not None:
            variable, _sep, value = line.partition("=")
            variable = variable.strip()
            if variable in found[current]:
                raise InvalidArgument("RUNTIMEENVIRONMENT: %s sets %s twice" % (current, variable))
            found[current][variable] = value.strip()
        elif "=" not in line and ":" not in line:
            current = line.upper()
            found.setdefault(current, {})
        else:
            raise InvalidArgument("RUNTIMEENVIRONMENT: %r: expected 'name: NAME' or a "
                                  "VARIABLE=value line after one" % line)
    return found


def provided_lines(values):
    """{NAME: {VAR: value}} -> RUNTIMEENVIRONMENT lines (what provided() reads)."""
    lines = []
    for name, variables in values.items():
        lines.append("name: %s" % name)
        lines += ["%s=%s" % item for item in variables.items()]
    return lines


class RuntimeEnvDB:
    """The definitions in the store (``runtimeenvs/<NAME>``)."""

    def __init__(self, store):
        self.store = store

    def names(self):
        return sorted(name for name, _path in self.store.records("runtimeenvs"))

    def exists(self, name):
        return self.store.exists("runtimeenvs/%s" % name) if NAME_PATTERN.match(name) else False

    def get(self, name):
        name = (name or "").upper()
        record = self.store.read("runtimeenvs/%s" % name, None) \
            if NAME_PATTERN.match(name) else None
        if record is None:
            raise ClientError("no such runtime environment: %s" % name)
        return record

    def create(self, record, by_user):
        record = dict(record, CREATOR=by_user, CREATED_TIMESTAMP=time.time())
        with self.store.lock("runtimeenvs-create"):
            if self.exists(record["RENAME"]):
                raise ConflictError("the runtime environment %s exists already and never "
                                    "changes: a new version is a new name (for example "
                                    "%s-2)" % (record["RENAME"], record["RENAME"]))
            self.store.write("runtimeenvs/%s" % record["RENAME"], record)
        return record

    def delete(self, name, by_user, providers, is_admin=False):
        """Only its creator (or an admin), and only while nobody provides it."""
        record = self.get(name)
        if record["CREATOR"] != by_user and not is_admin:
            raise AccessDenied("only %s, who created %s, may delete it"
                               % (record["CREATOR"], record["RENAME"]))
        if providers:
            raise ClientError("%s is provided by %s: it can be deleted when no resource "
                              "provides it" % (record["RENAME"], ", ".join(providers)))
        self.store.delete("runtimeenvs/%s" % record["RENAME"])

    def check_provided(self, values):
        """Problems of a resource's declaration: unknown environments, variables
        missing or not declared by the definition."""
        problems = []
        for name, variables in values.items():
            try:
                declared = [v["name"] for v in self.get(name)["ENVIRONMENTVARIABLE"]]
            except ClientError:
                problems.append("%s is not a runtime environment of this grid (create it "
                                "first with createre)" % name)
                continue
            missing = [v for v in declared if v not in variables]
            extra = [v for v in variables if v not in declared]
            if missing:
                problems.append("%s needs a value for %s" % (name, ", ".join(missing)))
            if extra:
                problems.append("%s declares no variable %s" % (name, ", ".join(extra)))
            for variable, value in variables.items():
                if any(c in value for c in "\n\r\x00"):
                    problems.append("%s: the value of %s is one line" % (name, variable))
        return problems
