"""The mRSL job description: one keyword table drives parsing, validation,
forms, the scheduler's requirement list and the generated reference docs.

MiG's syntax is kept exactly (blank-line separated ``::KEYWORD::`` blocks,
``#`` comments with ``\\#`` and ``\\\\`` escapes); its known flaws are fixed:
every error names the line and the keyword, ``..`` in file lines is refused,
a keyword line glued to the previous block is reported instead of silently
becoming a value, and ``+JOBID+``/``+JOBNAME+`` are expanded in list values.
"""

import json
import os
import re

from mig.core.keywords import (VALIDATORS, MAXFILL_NAMES, DEFAULT_MOUNT_RE, KEYWORDS, KEYWORD_BY_NAME, FILE_KEYWORDS, _DIGITS)
from mig.errors import MrslError

_KEYWORD_LINE = re.compile(r"^\s*::+\s*([A-Za-z_]+)\s*::+\s*$")


def default_spec(job_retries=4):
    """Every keyword with its default value (lists are fresh copies)."""
    spec = {}
    for kw in KEYWORDS:
        value = kw.default
        spec[kw.name] = list(value) if isinstance(value, list) else value
    spec["RETRIES"] = job_retries
    return spec


def _strip_comment(raw):
    """Apply MiG's value-line rules: '#' starts a comment, '\\#' and '\\\\' escape."""
    out = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw) and raw[i + 1] in "#\\":
            out.append(raw[i + 1])
            i += 2
            continue
        if c == "#":
            break
        out.append(c)
        i += 1
    return "".join(out).strip()


def read_blocks(text):
    """Split mRSL text into [(keyword, line_no, [(value, line_no), ...])]."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        keyword_line = i + 1
        if "\x00" in lines[i]:
            raise MrslError("the keyword line contains a NUL character", line=keyword_line)
        name = lines[i].strip().strip(":").strip().upper()
        values = []
        i += 1
        while i < len(lines) and lines[i].strip():
            raw = lines[i]
            if "\x00" in raw:
                raise MrslError("the value contains a NUL character", line=i + 1, keyword=name)
            if _KEYWORD_LINE.match(raw):
                raise MrslError(
                    "%s looks like a keyword but follows a value without a blank "
                    "line in between; add an empty line before it" % raw.strip(),
                    line=i + 1, keyword=name)
            value = _strip_comment(raw.rstrip("\r\n"))
            if value:
                values.append((value, i + 1))
            i += 1
        blocks.append((name, keyword_line, values))
    return blocks


def _check_chars(kw, value, line):
    check, allowed = VALIDATORS[kw.validator]
    if not check(value):
        raise MrslError("invalid value %r (allowed: %s)" % (value, allowed),
                        line=line, keyword=kw.name)


def _convert(kw, values, line, spec):
    """Type-check one block's value lines and store them in spec."""
    for value, vline in values:
        if _KEYWORD_LINE.match(value):
            raise MrslError("%r looks like a keyword, not a value" % value,
                            line=vline, keyword=kw.name)
        _check_chars(kw, value, vline)
    if kw.type == "int":
        if len(values) != 1:
            raise MrslError("expects exactly one whole number, got %d lines" % len(values),
                            line=line, keyword=kw.name)
        value, vline = values[0]
        if not _DIGITS.match(value):
            raise MrslError("%r is not a whole number" % value, line=vline, keyword=kw.name)
        if len(value) > 15:
            raise MrslError("%s... is too large" % value[:15], line=vline, keyword=kw.name)
        spec[kw.name] = int(value)
    elif kw.type == "string":
        if len(values) > 1:
            raise MrslError("expects one line, got %d" % len(values),
                            line=line, keyword=kw.name)
        if values:
            spec[kw.name] = values[0][0]
    elif kw.type == "boolean":
        if len(values) > 1:
            raise MrslError("expects one of True/False", line=line, keyword=kw.name)
        text = values[0][0].lower() if values else "false"
        if text in ("true", "1", "on", "yes"):
            spec[kw.name] = True
        elif text in ("false", "0", "off", "no"):
            spec[kw.name] = False
        else:
            raise MrslError("%r is not True or False" % values[0][0],
                            line=values[0][1], keyword=kw.name)
    elif kw.type == "multiplestrings":
        spec[kw.name].extend(v for v, _ in values)
    elif kw.type == "multiplekeyvalues":
        for value, vline in values:
            if "=" not in value:
                raise MrslError("%r is not of the form NAME=value" % value,
                                line=vline, keyword=kw.name)
            key, val = value.split("=", 1)
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key.strip()):
                raise MrslError("%r is not a valid variable name" % key,
                                line=vline, keyword=kw.name)
            spec[kw.name].append((key.strip(), val))


def _normalise_file_line(kw_name, value, line):
    parts = value.split(" ")
    if len(parts) not in (1, 2) or not all(parts):
        raise MrslError("%r: expected 'source' or 'source destination' separated by "
                        "one space (file names cannot contain spaces)" % value,
                        line=line, keyword=kw_name)
    cleaned = []
    for part in parts:
        if "://" in part:
            cleaned.append(part)
            continue
        norm = os.path.normpath(part.lstrip("/"))
        if norm in (".", "") or norm == ".." or norm.startswith("../"):
            raise MrslError("%r points outside the home or job folder" % part,
                            line=line, keyword=kw_name)
        cleaned.append(norm)
    return " ".join(cleaned)


def _check_quotes(command, line):
    """Refuse a command with unbalanced quotes: bash would swallow later lines."""
    quote = None
    i = 0
    while i < len(command):
        c = command[i]
        if quote is None:
            if c == "\\":
                i += 1
            elif c in "'\"`":
                quote = c
        elif quote == "'":
            if c == "'":
                quote = None
        else:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        i += 1
    if quote:
        raise MrslError("unbalanced %s quote in command %r" % (quote, command),
                        line=line, keyword="EXECUTE")


def _collect(problems, check, *args):
    """Run one check.  With problems (a dict) a refusal is kept under its
    keyword and the next check runs: a form shows every problem at once."""
    try:
        check(*args)
    except MrslError as exc:
        if problems is None:
            raise
        problems.setdefault(exc.keyword or "", exc)


def _check_execute(spec, lines_of):
    if not spec["EXECUTE"]:
        raise MrslError("EXECUTE is required: give at least one command line",
                        keyword="EXECUTE")
    for command, line in lines_of.get("EXECUTE", []):
        _check_quotes(command, line)


def _normalise_files(spec, lines_of, name):
    given = lines_of.get(name) or [(v, None) for v in spec[name]]
    spec[name] = [_normalise_file_line(name, value, line) for value, line in given]


def _check_choice(spec, lines_of, name):
    kw = KEYWORD_BY_NAME[name]
    value = spec[name]
    if name == "ARCHITECTURE":
        value = value.upper()
        spec[name] = value
    if value and value not in kw.choices:
        raise MrslError("%r is not one of %s" % (value, ", ".join(kw.choices)),
                        line=_first_line(lines_of, name), keyword=name)


def _check_maxfill(spec, lines_of):
    fills = [v.upper() for v in spec["MAXFILL"]]
    fill_lines = [line for _v, line in lines_of.get("MAXFILL", [])]
    for number, value in enumerate(fills):
        if value not in KEYWORD_BY_NAME["MAXFILL"].choices:
            line = fill_lines[number] if number < len(fill_lines) else None
            raise MrslError("%r is not ALL or one of %s" % (value, " ".join(MAXFILL_NAMES)),
                            line=line, keyword="MAXFILL")
    spec["MAXFILL"] = list(MAXFILL_NAMES) if "ALL" in fills else fills


def _check_at_least_one(spec, lines_of, name):
    if spec[name] < 1:
        raise MrslError("must be at least 1 second" if name == "CPUTIME" else
                        "must be at least 1", line=_first_line(lines_of, name), keyword=name)


def _finish(spec, lines_of, problems=None):
    """Checks that need the whole description; lines_of maps keyword -> value lines.
    problems: see _collect (None: the first problem is raised)."""
    _collect(problems, _check_execute, spec, lines_of)
    for name in FILE_KEYWORDS:
        _collect(problems, _normalise_files, spec, lines_of, name)
    for name in ("ARCHITECTURE", "JOBTYPE"):
        _collect(problems, _check_choice, spec, lines_of, name)
    _collect(problems, _check_maxfill, spec, lines_of)
    spec["RUNTIMEENVIRONMENT"] = [v.upper() for v in spec["RUNTIMEENVIRONMENT"]]
    if spec["MOUNT"] and DEFAULT_MOUNT_RE not in spec["RUNTIMEENVIRONMENT"]:
        spec["RUNTIMEENVIRONMENT"].append(DEFAULT_MOUNT_RE)
    for name in ("NODECOUNT", "CPUCOUNT", "CPUTIME"):
        _collect(problems, _check_at_least_one, spec, lines_of, name)
    vgrids = []
    for entry in spec["VGRID"]:
        vgrids.extend(v.strip() for v in entry.split(",") if v.strip())
    spec["VGRID"] = vgrids
    return spec


def _first_line(lines_of, name):
    values = lines_of.get(name)
    return values[0][1] if values else None


def parse_mrsl(text, job_retries=4):
    """Parse mRSL text into a complete job spec, or raise MrslError naming the line."""
    spec = default_spec(job_retries)
    lines_of = {}
    for name, line, values in read_blocks(text):
        kw = KEYWORD_BY_NAME.get(name)
        if kw is None:
            raise MrslError("unknown keyword %s (see the mRSL reference for the list)"
                            % name, line=line, keyword=name)
        if kw.type in ("int", "string", "boolean"):
            lines_of[name] = values
        else:
            lines_of.setdefault(name, []).extend(values)
        _convert(kw, values, line, spec)
    return _finish(spec, lines_of)


def field_lines(text):
    """The value lines of one form field: blank lines dropped (in mRSL they
    would end the block), CRLF made LF."""
    return [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def fields_to_mrsl(values):
    """{keyword: text} from a form -> the mRSL text stored with the job."""
    blocks = []
    for kw in KEYWORDS:
        lines = field_lines(values.get(kw.name, ""))
        if lines:
            blocks.append("::%s::\n%s\n" % (kw.name, "\n".join(lines)))
    return "\n".join(blocks)


def check_fields(values, job_retries=4):
    """{keyword: text}, one form field per keyword -> {keyword: MrslError}.

    Each field is checked on its own and every problem is kept, so the form
    can mark all of them at once next to their fields; the messages name no
    line (the user wrote fields, not mRSL).  Empty: the job parses."""
    spec = default_spec(job_retries)
    lines_of, problems = {}, {}
    for kw in KEYWORDS:
        lines = [(_strip_comment(raw), None) for raw in field_lines(values.get(kw.name, ""))]
        lines = [(value, line) for value, line in lines if value]
        if not lines:
            continue
        lines_of[kw.name] = lines
        _collect(problems, _convert, kw, lines, None, spec)
    _finish(spec, lines_of, problems)
    return problems


def reason(exc):
    """An MrslError's message without its 'line N, keyword K: ' prefix, for
    showing next to the field that already says where."""
    where = []
    if exc.line is not None:
        where.append("line %d" % exc.line)
    if exc.keyword:
        where.append("keyword %s" % exc.keyword)
    prefix = "%s: " % ", ".join(where) if where else ""
    return exc.message[len(prefix):] if prefix and exc.message.startswith(prefix) \
        else exc.message


def _json_lines(kw, value):
    """Turn one JSON value into mRSL value lines."""
    if value is None:
        return []
    if kw.type == "multiplekeyvalues" and isinstance(value, dict):
        return ["%s=%s" % (k, v) for k, v in value.items()]
    if isinstance(value, bool):
        return ["True" if value else "False"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(int(value))] if float(value).is_integer() else [str(value)]
    if isinstance(value, str):
        return value.splitlines() if kw.type.startswith("multiple") else [value]
    if isinstance(value, list):
        lines = []
        for item in value:
            if not isinstance(item, (str, int, float)):
                raise MrslError("list items must be strings", keyword=kw.name)
            lines.append(str(item))
        return lines
    raise MrslError("unsupported JSON value of type %s" % type(value).__name__,
                    keyword=kw.name)


def parse_json(data, job_retries=4):
    """Parse a JSON job ({"EXECUTE": [...], ...}) through the same checks as mRSL."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except RecursionError:
            raise MrslError("invalid JSON: nested too deeply") from None
        except ValueError as exc:
            raise MrslError("invalid JSON: %s" % exc) from None
    if not isinstance(data, dict):
        raise MrslError("a JSON job must be an object of keyword: value")
    spec = default_spec(job_retries)
    lines_of = {}
    for key, value in data.items():
        name = str(key).strip(":").upper()
        kw = KEYWORD_BY_NAME.get(name)
        if kw is None:
            raise MrslError("unknown keyword %s" % name, keyword=name)
        values = [(line.strip(), None) for line in _json_lines(kw, value) if line.strip()]
        lines_of[name] = values
        _convert(kw, values, None, spec)
    return _finish(spec, lines_of)


def parse_job(text, job_retries=4):
    """mRSL or JSON, recognised by the first non-blank character."""
    if text.lstrip().startswith("{"):
        return parse_json(text, job_retries)
    return parse_mrsl(text, job_retries)


def to_mrsl(spec):
    """Render a spec back to mRSL text (resubmit, saved defaults, the fields form)."""
    out = []
    for kw in KEYWORDS:
        value = spec.get(kw.name, kw.default)
        if value is None:
            continue
        if kw.type == "multiplekeyvalues":
            lines = ["%s=%s" % pair for pair in value]
        elif kw.type == "multiplestrings":
            lines = list(value)
        elif kw.type == "boolean":
            lines = ["True" if value else "False"]
        else:
            lines = [str(value)] if str(value) != "" else []
        if not lines:
            continue
        escaped = [line.replace("\\", "\\\\").replace("#", "\\#") for line in lines]
        out.append("::%s::\n%s\n" % (kw.name, "\n".join(escaped)))
    return "\n".join(out)


def expand_variables(value, job_id, job_name):
    """Expand +JOBID+ and +JOBNAME+ everywhere, lists and pairs included."""
    if isinstance(value, str):
        if "+JOB" not in value:
            return value
        return value.replace("+JOBID+", job_id).replace("+JOBNAME+", job_name)
    if isinstance(value, list):
        return [expand_variables(v, job_id, job_name) for v in value]
    if isinstance(value, tuple):
        return tuple(expand_variables(v, job_id, job_name) for v in value)
    if isinstance(value, dict):
        return {k: expand_variables(v, job_id, job_name) for k, v in value.items()}
    return value


def split_file_line(line):
    """'src dst' or 'src' -> (src, dst)."""
    parts = line.split(" ", 1)
    return parts[0], parts[1] if len(parts) > 1 else parts[0]
