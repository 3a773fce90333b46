"""Resource configurations in MiG's format: parsing and validation.

The same blank-line separated ``::KEYWORD::`` blocks as jobs.  Scalar
keywords describe the resource and how the grid reaches it over ssh; each
``::EXECONFIG::`` block is one execution unit (``key=value`` lines).  Values
that end up in ssh command lines are limited to safe characters and may not
start with '-' (ssh, scp or a remote command would take them for options),
SSHPORT is a port number, and every error names the line and the keyword.
"""

import re

from mig.core import runtimeenvs
from mig.core.jobspec import read_blocks
from mig.core.keywords import ARCHITECTURES
from mig.core.resources import ExeUnit
from mig.errors import InvalidArgument, MrslError

SAFE_PATH = re.compile(r"^[A-Za-z0-9/.,_+=\-]*$")  # MiG's valid_safe_path
HOST = re.compile(r"^[A-Za-z0-9.\-]+$|^\[?[0-9A-Fa-f:.]+\]?$")
USER = re.compile(r"^[a-z_][a-z0-9_\-.]{0,31}$")
LRMS_TYPES = ("native", "slurm")

# keyword: (type, default, required, help)
RESOURCE_KEYWORDS = {
    "HOSTURL": ("host", "", True, "the host name or address the grid reaches over ssh"),
    "HOSTIDENTIFIER": ("int", 0, False, "a number that tells resources on one host apart; "
                                         "0 or AUTO: the grid picks one"),
    "HOSTKEY": ("text", "", False, "the host's ssh public key ('ssh-ed25519 AAAA...'): pinned"),
    "SSHPORT": ("int", 22, False, "the ssh port"),
    "MIGUSER": ("user", "", True, "the account the grid logs in as"),
    "RESOURCEHOME": ("path", "", True, "the folder on the resource the grid works in"),
    "FRONTENDNODE": ("host", "", False, "the front-end node as seen from the exe nodes"),
    "LRMSTYPE": ("choice", "native", False, "native (run on the node) or slurm (sbatch)"),
    "NODECOUNT": ("int", 1, False, "nodes"),
    "CPUCOUNT": ("int", 1, False, "cores per node"),
    "MEMORY": ("int", 1024, False, "MB per node"),
    "DISK": ("int", 0, False, "GB per node"),
    "ARCHITECTURE": ("arch", "AMD64", False, "CPU architecture"),
    "RUNTIMEENVIRONMENT": ("list", [], False, "runtime environments provided: 'name: NAME' "
                           "then a VARIABLE=value line for each of its variables"),
    "PLATFORM": ("word", "", False, "platform name, if any"),
    "PUBLICNAME": ("word", "", False, "a name shown in monitors"),
    "MINPRICE": ("word", "0", False, "minimum price per CPU hour"),
    "SANDBOX": ("bool", False, False, "a volunteer sandbox (runs only SANDBOX jobs)"),
    "JOBTYPE": ("word", "all", False, "batch, bulk or all"),
    "EXECONFIG": ("exe", [], True, "one block per execution unit"),
}
EXE_KEYS = {
    "name": ("word", None, "the unit's name"),
    "nodecount": ("int", 1, "nodes behind this unit"),
    "cputime": ("int", 3600, "the longest job in seconds"),
    "execution_node": ("host", "", "where jobs run (default: the front end)"),
    "execution_dir": ("path", "", "the folder jobs run in (default: RESOURCEHOME/exe)"),
    "slots": ("int", 1, "jobs at once"),
    "vgrid": ("list", ["Generic"], "comma-separated VGrids"),
    "partition": ("word", "", "the Slurm partition (LRMSTYPE slurm)"),
}


def _convert(kind, value, line, keyword):
    def fail(why):
        raise MrslError("%r %s" % (value, why), line=line, keyword=keyword)
    if kind == "int":
        if keyword == "HOSTIDENTIFIER" and value.upper() == "AUTO":
            return 0
        if not re.fullmatch(r"[0-9]+", value):  # str.isdigit() takes '²' too
            fail("is not a whole number")
        if keyword == "SSHPORT" and not 1 <= int(value) <= 65535:
            fail("is not a port number (1 to 65535)")
        return int(value)
    if value.startswith("-") and kind in ("host", "user", "path"):
        fail("may not start with '-' (ssh or a command on the resource would take it for "
             "an option)")
    if kind == "host":
        if not HOST.match(value):
            fail("is not a host name or address")
        return value
    if kind == "user":
        if not USER.match(value):
            fail("is not a user name (lower-case letters, digits, _ - .)")
        return value
    if kind == "path":
        if not SAFE_PATH.match(value) or ".." in value.split("/"):
            fail("may only use letters, digits and /.,_+=- (it goes into ssh commands)")
        return value
    if kind == "bool":
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            fail("is not True or False")
        return value.lower() in ("true", "1", "yes")
    if kind == "arch":
        if value.upper() not in ARCHITECTURES:
            fail("is not one of %s" % ", ".join(ARCHITECTURES))
        return value.upper()
    if kind == "choice":
        if value.lower() not in LRMS_TYPES:
            fail("is not one of %s" % ", ".join(LRMS_TYPES))
        return value.lower()
    if kind == "word":
        if not re.match(r"^[A-Za-z0-9._\-]*$", value):
            fail("may only use letters, digits and ._-")
        return value
    if kind == "text":
        if any(c in value for c in "\n\x00'\"`$;|&<>"):
            fail("has characters that are not allowed here")
        return value
    if kind == "list":
        names = [v.strip() for v in value.split(",") if v.strip()]
        for name in names:
            if not re.match(r"^[A-Za-z0-9._\-/ ]+$", name):
                fail("has an invalid name %r" % name)
        return names
    raise AssertionError(kind)


def _exe_block(values, line):
    unit = {key: (list(default) if isinstance(default, list) else default)
            for key, (_kind, default, _help) in EXE_KEYS.items()}
    for value, vline in values:
        if "=" not in value:
            raise MrslError("%r is not key=value" % value, line=vline, keyword="EXECONFIG")
        key, raw = (part.strip() for part in value.split("=", 1))
        if key not in EXE_KEYS:
            raise MrslError("unknown exe unit key %r (known: %s)" % (key, ", ".join(EXE_KEYS)),
                            line=vline, keyword="EXECONFIG")
        unit[key] = _convert(EXE_KEYS[key][0], raw, vline, "EXECONFIG")
    if not unit["name"]:
        raise MrslError("every exe unit needs name=...", line=line, keyword="EXECONFIG")
    return unit


def parse_resource(text):
    """Resource configuration text -> a checked dict, or MrslError naming the line."""
    conf = {key: (list(default) if isinstance(default, list) else default)
            for key, (_kind, default, _req, _help) in RESOURCE_KEYWORDS.items()}
    seen = set()
    for name, line, values in read_blocks(text):
        spec = RESOURCE_KEYWORDS.get(name)
        if spec is None:
            raise MrslError("unknown keyword %s" % name, line=line, keyword=name)
        kind = spec[0]
        if kind == "exe":
            conf["EXECONFIG"].append(_exe_block(values, line))
        elif kind == "list":
            conf[name] = [v for v, _l in values]
        else:
            if len(values) != 1:
                raise MrslError("expects exactly one value line", line=line, keyword=name)
            conf[name] = _convert(kind, values[0][0], values[0][1], name)
        seen.add(name)
    for name, (_kind, _default, required, _help) in RESOURCE_KEYWORDS.items():
        if required and name not in seen:
            raise MrslError("%s is required" % name, keyword=name)
    names = [u["name"] for u in conf["EXECONFIG"]]
    if len(set(names)) != len(names):
        raise MrslError("exe unit names must differ", keyword="EXECONFIG")
    if conf["LRMSTYPE"] == "slurm" and not all(u["partition"] for u in conf["EXECONFIG"]):
        raise MrslError("with LRMSTYPE slurm every exe unit needs partition=...",
                        keyword="EXECONFIG")
    try:
        runtimeenvs.provided(conf["RUNTIMEENVIRONMENT"])
    except InvalidArgument as exc:
        raise MrslError(exc.message.split(": ", 1)[-1], keyword="RUNTIMEENVIRONMENT") from None
    conf["FRONTENDNODE"] = conf["FRONTENDNODE"] or conf["HOSTURL"]
    return conf


def exe_units(name, conf, executor):
    """The scheduler's view of a resource's exe units."""
    units = []
    offered = runtimeenvs.provided(conf["RUNTIMEENVIRONMENT"])
    for unit in conf["EXECONFIG"]:
        units.append(ExeUnit(resource=name, name=unit["name"], executor=executor,
                             architecture=conf["ARCHITECTURE"], nodecount=unit["nodecount"],
                             cpucount=conf["CPUCOUNT"], memory=conf["MEMORY"],
                             disk=conf["DISK"], cputime=unit["cputime"],
                             runtimeenvs=tuple(offered), re_values=offered,
                             vgrids=tuple(unit["vgrid"]), platform=conf["PLATFORM"],
                             sandbox=conf["SANDBOX"], jobtype=conf["JOBTYPE"],
                             minprice=conf["MINPRICE"], slots=unit["slots"]))
    return units


def conf_text(conf):
    """A configuration as text that parse_resource reads back to the same dict
    (the form editor writes this; comments of the original text are not kept)."""
    blocks = []
    for name, (kind, default, required, _help) in RESOURCE_KEYWORDS.items():
        value = conf.get(name, default)
        if kind == "exe":
            for unit in value:
                lines = ["%s=%s" % (key, ",".join(unit[key]) if isinstance(unit[key], list)
                                    else unit[key])
                         for key, (_kind, unit_default, _h) in EXE_KEYS.items()
                         if key in unit and (key == "name" or unit[key] != unit_default)]
                blocks.append("::EXECONFIG::\n" + "\n".join(lines))
            continue
        if value == default and not required:
            continue
        if kind == "list":
            text = "\n".join(value)
        elif kind == "bool" and isinstance(value, bool):
            text = "True" if value else "False"
        elif name == "HOSTIDENTIFIER" and value in (0, "0"):
            text = "AUTO"
        else:
            text = str(value)
        if text:
            blocks.append("::%s::\n%s" % (name, text))
    return "\n\n".join(blocks) + "\n"


def with_host_key(text, key):
    """The configuration text with HOSTKEY key added (it had none): trust on first use."""
    if any(name == "HOSTKEY" for name, _line, _values in read_blocks(text)):
        raise MrslError("the configuration has a HOSTKEY already", keyword="HOSTKEY")
    return "%s\n\n::HOSTKEY::\n%s\n" % (text.rstrip("\n"), key)


FORM_KEYWORDS = tuple(name for name in RESOURCE_KEYWORDS
                      if name not in ("HOSTIDENTIFIER", "EXECONFIG"))


def form_edit_text(conf, values, units):
    """The text of conf with the form's changes: values {KEYWORD: text} and
    units {index: {key: text}} (index len(EXECONFIG) adds a unit).  An empty
    value keeps what was there; parse_resource checks the result."""
    edited = dict(conf, EXECONFIG=[dict(u) for u in conf["EXECONFIG"]])
    for name, value in values.items():
        if name not in FORM_KEYWORDS or not value.strip():
            continue
        if RESOURCE_KEYWORDS[name][0] == "list":
            edited[name] = [line.strip() for line in value.splitlines() if line.strip()]
        else:
            edited[name] = _one_line(value, name)
    for index in sorted(units):
        changes = {k: _one_line(v, "EXECONFIG") for k, v in units[index].items()
                   if k in EXE_KEYS and v.strip()}
        if index < len(edited["EXECONFIG"]):
            edited["EXECONFIG"][index].update(changes)
        elif changes.get("name"):
            edited["EXECONFIG"].append(changes)
    for name in RESOURCE_KEYWORDS:
        if RESOURCE_KEYWORDS[name][0] == "list":
            for line in edited[name]:
                if line.startswith("::") or "\x00" in line:
                    raise MrslError("%r is not a value" % line, keyword=name)
    return conf_text(edited)


def _one_line(value, keyword):
    value = value.strip()
    if any(c in value for c in "\r\n\x00"):
        raise MrslError("give one line only", keyword=keyword)
    return value
