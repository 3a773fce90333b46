"""The mRSL keyword table: every keyword's name, type, default, help and
validator, after MiG's own.  One table drives parsing and checking
(jobspec.py), the Submit Job forms, the scheduler's requirement list and the
generated reference docs."""

import re
from dataclasses import dataclass, field

# Character classes, after MiG's safeinput validators.
_PATH_EXTRA = "/.,_-+=\u00b1\u00d7\u00f7\u00bd\u00be '\":;@\u00a7%\u2030()~!&\u00b6$\u00a3\u20ac\u00a5"
_FQDN = re.compile(r"^[A-Za-z0-9.\-]*$")
_DIGITS = re.compile(r"^[0-9]+$")
_ALNUM = re.compile(r"^[A-Za-z0-9]*$")
_VGRID = re.compile(r"^[A-Za-z0-9.\-_ /,]*$")
_RESOURCE_PATTERN = re.compile(r"^[A-Za-z0-9.\-_*?\[\]]*$")
_JOBNAME = re.compile(r"^[A-Za-z0-9.\-_+@%]*$")
_PROJECT = re.compile(r"^[A-Za-z0-9.\-_+@%]*$")
_PRICE = re.compile(r"^[A-Za-z0-9.+\-*/() _]*$")


def _valid_free_text(value):
    return "\x00" not in value


def _valid_plain_text(value):
    return not any(c in value for c in "<>\x00")


def _valid_path_line(value):
    return all(c.isalnum() or c in _PATH_EXTRA for c in value)


def _regex(pattern):
    return lambda value: bool(pattern.match(value))


VALIDATORS = {
    "free_text": (_valid_free_text, "any text"),
    "plain_text": (_valid_plain_text, "text without < or >"),
    "path_lines": (_valid_path_line, "letters, digits, space and /.,_-+=:;@%()~!&'\" "
                   "\u00b1\u00d7\u00f7\u00bd\u00be\u00a7\u2030\u00b6$\u00a3\u20ac\u00a5"),
    "numeric": (_regex(_DIGITS), "digits only"),
    "fqdn": (_regex(_FQDN), "letters, digits, '.' and '-'"),
    "alnum": (_regex(_ALNUM), "letters and digits only"),
    "vgrid": (_regex(_VGRID), "letters, digits, space and ._-/,"),
    "resource_pattern": (_regex(_RESOURCE_PATTERN), "letters, digits, ._- and the wildcards * ? []"),
    "job_name": (_regex(_JOBNAME), "letters, digits and .-_+@%"),
    "project": (_regex(_PROJECT), "letters, digits and .-_+@%"),
    "price": (_regex(_PRICE), "a number or a price expression"),
}

ARCHITECTURES = ("X86", "AMD64", "IA64", "SPARC", "SPARC64", "ITANIUM", "SUN4U",
                 "SPARC-T1", "SPARC-T2", "PS3", "CELL", "ARM64", "RISCV64")
JOBTYPES = ("batch", "bulk")
MAXFILL_NAMES = ("CPUTIME", "NODECOUNT", "CPUCOUNT", "MEMORY", "DISK")
DEFAULT_VGRID = "Generic"
DEFAULT_MOUNT_RE = "SSHFS-2.X-1"


@dataclass(frozen=True)
class Keyword:
    """One mRSL keyword: its type, default, validator and documentation."""

    name: str
    type: str  # int | string | boolean | multiplestrings | multiplekeyvalues
    default: object
    validator: str
    title: str
    help: str
    example: str = ""
    required: bool = False
    choices: tuple = field(default=())
    requirement: bool = False  # matched by the scheduler against resources


KEYWORDS = (
    Keyword("EXECUTE", "multiplestrings", [], "free_text", "Commands",
            "Shell command lines run in order in one bash session on the resource; "
            "cd and variables persist from line to line. The exit code of every "
            "line is recorded in JOBID.status.",
            "echo hello\nuname -a", required=True),
    Keyword("INPUTFILES", "multiplestrings", [], "path_lines", "Input files",
            "Files copied from your home into the job folder before it runs: "
            "'src' or 'src dst', one per line.", "data/input.txt input.txt"),
    Keyword("OUTPUTFILES", "multiplestrings", [], "path_lines", "Output files",
            "Files copied from the job folder back to your home after it ran: "
            "'src' or 'src dst'. Missing files are skipped and counted in JOBID.io-status.",
            "result.txt results/+JOBID+.txt"),
    Keyword("EXECUTABLES", "multiplestrings", [], "path_lines", "Executables",
            "Like INPUTFILES, and then made executable.", "bin/simulate simulate"),
    Keyword("MOUNT", "multiplestrings", [], "plain_text", "Mount home",
            "'home_path mount_point' lines asking for your home to be mounted with sshfs "
            "during the job. Adds the runtime environment SSHFS-2.X-1 to the job, so only "
            "resources that offer it can run it; the embedded local resource does not "
            "mount anything.", "data /mnt/data"),
    Keyword("RESOURCE", "multiplestrings", [], "resource_pattern", "Resources",
            "Allowed resources: shell-style patterns matched against the public "
            "resource id RESOURCE_EXE. Empty means any resource.", "localhost.0_*",
            requirement=True),
    Keyword("VGRID", "multiplestrings", [], "vgrid", "VGrids",
            "VGrids to run in, in order of preference. ANY means every VGrid you "
            "are a member of; empty means Generic.", "Generic", requirement=True),
    Keyword("NODECOUNT", "int", 1, "numeric", "Nodes", "Number of nodes.", "1",
            requirement=True),
    Keyword("CPUCOUNT", "int", 1, "numeric", "CPU cores", "CPU cores per node.", "1",
            requirement=True),
    Keyword("CPUTIME", "int", 600, "numeric", "Wall time (s)",
            "Maximum run time in seconds; the job is stopped when it is spent.", "600",
            requirement=True),
    Keyword("MEMORY", "int", 64, "numeric", "Memory (MB)",
            "Memory in MB per node; on the local resource every process of the job has "
            "this as its address-space limit, and all of them together this much memory "
            "where the host has a memory cgroup.", "256",
            requirement=True),
    Keyword("DISK", "int", 0, "numeric", "Disk (GB)",
            "Disk space in GB per node, matched against the resource's offer; on the local "
            "resource the job folder may hold no more (0: the resource's default limit), "
            "and the job is stopped when it grows beyond it.", "1",
            requirement=True),
    Keyword("ARCHITECTURE", "string", "", "fqdn", "Architecture",
            "CPU architecture the job needs; empty means any.", "AMD64",
            choices=ARCHITECTURES, requirement=True),
    Keyword("MAXFILL", "multiplestrings", [], "alnum", "Max fill",
            "ALL or names among CPUTIME NODECOUNT CPUCOUNT MEMORY DISK: the job is "
            "matched with the values it asks for, and given the resource's full "
            "values when it runs.", "CPUTIME", choices=("ALL",) + MAXFILL_NAMES),
    Keyword("ENVIRONMENT", "multiplekeyvalues", [], "plain_text", "Environment",
            "NAME=value lines exported before EXECUTE.", "GREETING=hello"),
    Keyword("RUNTIMEENVIRONMENT", "multiplestrings", [], "plain_text",
            "Runtime environments",
            "Runtime environments (software) the resource must offer; names are "
            "upper-cased.", "PYTHON3", requirement=True),
    Keyword("NOTIFY", "multiplestrings", [], "plain_text", "Notify",
            "Where to tell when the job ends FINISHED, FAILED or EXPIRED: 'email: ADDRESS' "
            "(or just the address), or 'SETTINGS' for the address on your Settings page. "
            "Without a mail server (smtp_server), the message goes to your inbox.",
            "email: you@example.org"),
    Keyword("VERIFYFILES", "multiplestrings", [], "path_lines", "Verify files",
            "Home files ending in .status, .stdout or .stderr whose lines are "
            "regular expressions matched against the job's output.", "expect.stdout"),
    Keyword("RETRIES", "int", None, "numeric", "Retries",
            "How many times a job that failed on a resource is queued again; "
            "default from the server configuration.", "2"),
    Keyword("JOBTYPE", "string", "batch", "alnum", "Job type",
            "batch or bulk.", "batch", choices=JOBTYPES, requirement=True),
    Keyword("JOBNAME", "string", "", "job_name", "Job name",
            "A name for the job (no spaces).", "my-sweep-1"),
    Keyword("PROJECT", "string", "", "project", "Project",
            "A tag for grouping jobs; job status can select by it.", "thesis"),
    Keyword("SANDBOX", "boolean", False, "alnum", "Sandbox",
            "Allow the job to run on volunteer sandbox resources.", "False",
            requirement=True),
    Keyword("PLATFORM", "string", "", "fqdn", "Platform",
            "Platform the resource must have (case-insensitive); empty means any.",
            "", requirement=True),
    Keyword("MAXPRICE", "string", "0", "price", "Max price",
            "The price you will pay: a number or an expression with + - * / and hour, "
            "wday, yday, month, year, date. The scheduler compares it with the resource's "
            "MINPRICE per CPU hour; no money changes hands.", "0", requirement=True),
)

KEYWORD_BY_NAME = {kw.name: kw for kw in KEYWORDS}
FILE_KEYWORDS = ("INPUTFILES", "OUTPUTFILES", "EXECUTABLES", "VERIFYFILES")
