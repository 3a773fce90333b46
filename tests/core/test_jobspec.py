"""mig.core.jobspec: MiG's mRSL syntax, the keyword types, errors with line and
keyword, parse-time transformations, JSON jobs, to_mrsl and variable expansion."""

import json
import random

import pytest

from mig.core import jobspec
from mig.core.jobspec import expand_variables, parse_job, parse_json, parse_mrsl, to_mrsl
from mig.core.keywords import KEYWORDS
from mig.errors import MrslError

MINIMAL = "::EXECUTE::\necho hello\n"


def job(*blocks):
    """A document with EXECUTE first and the given 'KEYWORD', 'value\\nvalue' blocks."""
    text = MINIMAL
    for keyword, body in blocks:
        text += "\n::%s::\n%s\n" % (keyword, body)
    return text


def error_of(text, **kwargs):
    with pytest.raises(MrslError) as info:
        parse_job(text, **kwargs)
    return info.value


# --------------------------------------------------------------------------- syntax

def test_minimal_job_has_every_keyword_with_its_default():
    spec = parse_mrsl(MINIMAL, job_retries=3)
    expected = {kw.name: kw.default for kw in KEYWORDS}
    expected["EXECUTE"] = ["echo hello"]
    expected["RETRIES"] = 3
    assert spec == expected
    assert set(spec) == {kw.name for kw in KEYWORDS}


def test_defaults_exact_values():
    spec = parse_mrsl(MINIMAL)
    assert spec["NODECOUNT"] == 1
    assert spec["CPUCOUNT"] == 1
    assert spec["CPUTIME"] == 600
    assert spec["MEMORY"] == 64
    assert spec["DISK"] == 0
    assert spec["JOBTYPE"] == "batch"
    assert spec["SANDBOX"] is False
    assert spec["MAXPRICE"] == "0"
    assert spec["RETRIES"] == 4
    assert spec["VGRID"] == []
    assert spec["ARCHITECTURE"] == ""


def test_default_lists_are_not_shared_between_parses():
    first = parse_mrsl(MINIMAL)
    first["INPUTFILES"].append("x")
    first["ENVIRONMENT"].append(("A", "b"))
    second = parse_mrsl(MINIMAL)
    assert second["INPUTFILES"] == []
    assert second["ENVIRONMENT"] == []
    for kw in KEYWORDS:
        if isinstance(kw.default, list):
            assert kw.default == []


def test_keyword_line_forms_bare_colons_and_case():
    for line in ("::EXECUTE::", "EXECUTE", ":::EXECUTE:::", "::execute::", "  ::Execute::  ",
                 "EXECUTE::", "::EXECUTE"):
        spec = parse_mrsl("%s\necho a\n" % line)
        assert spec["EXECUTE"] == ["echo a"], line


def test_blocks_separated_by_blank_and_whitespace_lines():
    text = "\n\n::EXECUTE::\necho a\necho b\n   \n\t\n::CPUTIME::\n30\n\n\n::JOBNAME::\nn1\n"
    spec = parse_mrsl(text)
    assert spec["EXECUTE"] == ["echo a", "echo b"]
    assert spec["CPUTIME"] == 30
    assert spec["JOBNAME"] == "n1"


def test_crlf_line_endings():
    spec = parse_mrsl("::EXECUTE::\r\necho a\r\n\r\n::CPUTIME::\r\n42\r\n")
    assert spec["EXECUTE"] == ["echo a"]
    assert spec["CPUTIME"] == 42


def test_comments_and_escapes():
    text = ("# a comment before any keyword\n"
            "::EXECUTE::\n"
            "echo a # trailing comment\n"
            "# a whole comment line inside the block is dropped\n"
            "echo \\#not-a-comment\n"
            "echo back\\\\slash\n"
            "echo \\n stays\n"
            "echo \\\\#comment after an escaped backslash\n"
            "   echo padded   \n")
    spec = parse_mrsl(text)
    assert spec["EXECUTE"] == ["echo a", "echo #not-a-comment", "echo back\\slash",
                               "echo \\n stays", "echo \\", "echo padded"]


def test_block_of_only_comments_keeps_scalar_default():
    spec = parse_mrsl(job(("JOBNAME", "# nothing here"), ("ARCHITECTURE", "  # none")))
    assert spec["JOBNAME"] == ""
    assert spec["ARCHITECTURE"] == ""


def test_list_keywords_accumulate_and_scalars_last_wins():
    text = job(("INPUTFILES", "a.txt"), ("CPUTIME", "10"), ("JOBNAME", "first"),
               ("INPUTFILES", "b.txt c.txt"), ("CPUTIME", "20"), ("JOBNAME", "second"),
               ("ENVIRONMENT", "A=1"), ("ENVIRONMENT", "B=2=3"),
               ("SANDBOX", "true"), ("SANDBOX", "off"))
    text += "\n::EXECUTE::\necho again\n"
    spec = parse_mrsl(text)
    assert spec["EXECUTE"] == ["echo hello", "echo again"]
    assert spec["INPUTFILES"] == ["a.txt", "b.txt c.txt"]
    assert spec["CPUTIME"] == 20
    assert spec["JOBNAME"] == "second"
    assert spec["ENVIRONMENT"] == [("A", "1"), ("B", "2=3")]
    assert spec["SANDBOX"] is False


@pytest.mark.parametrize("text,expected", [
    ("True", True), ("true", True), ("1", True), ("ON", True), ("yes", True),
    ("False", False), ("0", False), ("off", False), ("No", False), ("", False),
])
def test_boolean_values(text, expected):
    assert parse_mrsl(job(("SANDBOX", text)))["SANDBOX"] is expected


def test_int_values():
    spec = parse_mrsl(job(("CPUTIME", "3600"), ("MEMORY", "2048"), ("DISK", "0"),
                          ("NODECOUNT", "2"), ("CPUCOUNT", " 8 "), ("RETRIES", "0")))
    assert (spec["CPUTIME"], spec["MEMORY"], spec["DISK"]) == (3600, 2048, 0)
    assert (spec["NODECOUNT"], spec["CPUCOUNT"], spec["RETRIES"]) == (2, 8, 0)


# --------------------------------------------------------------------------- errors

def test_error_unknown_keyword():
    err = error_of(MINIMAL + "\n::FROBNICATE::\nx\n")
    assert err.line == 4
    assert err.keyword == "FROBNICATE"
    assert "line 4" in str(err) and "FROBNICATE" in str(err) and "unknown keyword" in str(err)


def test_error_int_with_two_lines():
    err = error_of(job(("CPUTIME", "1\n2")))
    assert (err.line, err.keyword) == (4, "CPUTIME")
    assert str(err).startswith("line 4, keyword CPUTIME:")
    assert "2 lines" in str(err)


def test_error_int_in_empty_block():
    err = error_of(job(("MEMORY", "# nothing")))
    assert (err.line, err.keyword) == (4, "MEMORY")


@pytest.mark.parametrize("value", ["abc", "12x", "-5", "1.5", "0x10"])
def test_error_int_not_a_number(value):
    err = error_of(job(("MEMORY", value)))
    assert (err.line, err.keyword) == (5, "MEMORY")
    assert "line 5" in str(err) and "MEMORY" in str(err) and repr(value) in str(err)


def test_error_int_below_minimum():
    err = error_of(job(("CPUTIME", "0")))
    assert (err.line, err.keyword) == (5, "CPUTIME")
    err = error_of(job(("NODECOUNT", "0")))
    assert (err.line, err.keyword) == (5, "NODECOUNT")


def test_error_bad_boolean():
    err = error_of(job(("CPUTIME", "5"), ("SANDBOX", "maybe")))
    assert (err.line, err.keyword) == (8, "SANDBOX")
    assert "line 8, keyword SANDBOX" in str(err) and "'maybe'" in str(err)


def test_error_boolean_two_lines():
    err = error_of(job(("SANDBOX", "true\nfalse")))
    assert (err.line, err.keyword) == (4, "SANDBOX")


def test_error_string_two_lines():
    err = error_of(job(("JOBNAME", "a\nb")))
    assert (err.line, err.keyword) == (4, "JOBNAME")


def test_error_missing_execute():
    err = error_of("::JOBNAME::\nfoo\n\n::CPUTIME::\n5\n")
    assert err.keyword == "EXECUTE"
    assert "EXECUTE is required" in str(err)
    err = error_of("::EXECUTE::\n# only a comment\n")
    assert err.keyword == "EXECUTE"
    err = error_of("")
    assert err.keyword == "EXECUTE"


def test_error_environment_without_equals():
    err = error_of(job(("ENVIRONMENT", "A=1\nNOEQUALS")))
    assert (err.line, err.keyword) == (6, "ENVIRONMENT")
    assert "line 6, keyword ENVIRONMENT" in str(err) and "'NOEQUALS'" in str(err)


def test_error_environment_bad_name():
    err = error_of(job(("ENVIRONMENT", "1A=x")))
    assert (err.line, err.keyword) == (5, "ENVIRONMENT")


def test_error_keyword_glued_to_previous_block():
    text = "::EXECUTE::\necho a\n::OUTPUTFILES::\nout.txt\n"
    err = error_of(text)
    assert err.line == 3
    assert err.keyword == "EXECUTE"
    assert "::OUTPUTFILES::" in str(err) and "line 3" in str(err)


@pytest.mark.parametrize("command", ["echo \"a", "echo 'a", "echo `date", "echo \"a\\\"",
                                     "echo 'it''s"])
def test_error_unbalanced_quote_in_execute(command):
    err = error_of("::EXECUTE::\necho fine\n%s\n" % command)
    assert (err.line, err.keyword) == (3, "EXECUTE")
    assert "unbalanced" in str(err) and "line 3" in str(err)


@pytest.mark.parametrize("command", ["echo \"a 'b\"", "echo 'a \"b'", "echo \\\"",
                                     "echo \"a\\\"b\"", "echo `date`", "echo 'x\\'"])
def test_balanced_quotes_accepted(command):
    assert parse_mrsl("::EXECUTE::\n%s\n" % command)["EXECUTE"] == [command]


def test_hash_inside_quotes_is_still_a_comment():
    # MiG syntax: '#' starts a comment anywhere, so the quote is left open.
    err = error_of("::EXECUTE::\necho '#'\n")
    assert (err.line, err.keyword) == (2, "EXECUTE")
    assert parse_mrsl("::EXECUTE::\necho '\\#'\n")["EXECUTE"] == ["echo '#'"]


@pytest.mark.parametrize("keyword", ["INPUTFILES", "OUTPUTFILES", "EXECUTABLES", "VERIFYFILES"])
@pytest.mark.parametrize("value", ["..", "../x", "a/../../x", "x ../y", "/../etc/passwd",
                                   "a/b/../../../c d"])
def test_error_dotdot_in_file_lines(keyword, value):
    err = error_of(job((keyword, "ok.txt\n" + value)))
    assert (err.line, err.keyword) == (6, keyword)
    assert "outside" in str(err)


@pytest.mark.parametrize("value", ["a b c", "a  b", " a b c d"])
def test_error_more_than_two_parts_in_file_line(value):
    err = error_of(job(("OUTPUTFILES", value)))
    assert (err.line, err.keyword) == (5, "OUTPUTFILES")


def test_file_lines_normalised():
    spec = parse_mrsl(job(("INPUTFILES", "/abs/in.txt\n./a//b/./c.txt d/e/../f.txt\n"
                           "http://example.org/x.txt x.txt"),
                          ("OUTPUTFILES", "out.txt results/+JOBID+.txt")))
    assert spec["INPUTFILES"] == ["abs/in.txt", "a/b/c.txt d/f.txt",
                                  "http://example.org/x.txt x.txt"]
    assert spec["OUTPUTFILES"] == ["out.txt results/+JOBID+.txt"]


def test_error_architecture_not_in_list():
    err = error_of(job(("CPUTIME", "5"), ("ARCHITECTURE", "vax")))
    assert (err.line, err.keyword) == (8, "ARCHITECTURE")
    assert "'VAX'" in str(err) and "AMD64" in str(err)


def test_architecture_upper_cased():
    assert parse_mrsl(job(("ARCHITECTURE", "amd64")))["ARCHITECTURE"] == "AMD64"


def test_error_jobtype_not_in_list():
    err = error_of(job(("JOBTYPE", "interactive")))
    assert (err.line, err.keyword) == (5, "JOBTYPE")


def test_error_maxfill_bad_value():
    err = error_of(job(("MAXFILL", "NOSUCH")))
    assert (err.line, err.keyword) == (5, "MAXFILL")
    assert "'NOSUCH'" in str(err)
    err = error_of(job(("MAXFILL", "cpu-time")))  # fails the character check
    assert (err.line, err.keyword) == (5, "MAXFILL")


def test_error_maxfill_bad_value_on_its_own_line():
    err = error_of(job(("MAXFILL", "CPUTIME\nMEMORY\nNOSUCH")))
    assert (err.line, err.keyword) == (7, "MAXFILL")


def test_error_nul_byte():
    err = error_of("::EXECUTE::\necho a\x00b\n")
    assert "NUL" in str(err)


def test_error_nul_byte_names_line_and_keyword():
    err = error_of("::EXECUTE::\necho a\n\n::JOBNAME::\nx\x00y\n")
    assert (err.line, err.keyword) == (5, "JOBNAME")


@pytest.mark.parametrize("keyword,value", [
    ("JOBNAME", "has space"), ("JOBNAME", "a;b"), ("PLATFORM", "a_b"), ("VGRID", "a;b"),
    ("RESOURCE", "a;rm"), ("MOUNT", "<x>"), ("NOTIFY", "a>b"), ("PROJECT", "a b"),
    ("MAXPRICE", "__import__('os')"), ("INPUTFILES", "a|b"),
])
def test_error_invalid_characters_name_line_and_keyword(keyword, value):
    err = error_of(job((keyword, value)))
    assert (err.line, err.keyword) == (5, keyword)
    assert "invalid value" in str(err)


# ------------------------------------------------------------- parse-time transforms

def test_maxfill_all_expands_and_names_upper_cased():
    assert parse_mrsl(job(("MAXFILL", "ALL")))["MAXFILL"] == [
        "CPUTIME", "NODECOUNT", "CPUCOUNT", "MEMORY", "DISK"]
    assert parse_mrsl(job(("MAXFILL", "all\nmemory")))["MAXFILL"] == [
        "CPUTIME", "NODECOUNT", "CPUCOUNT", "MEMORY", "DISK"]
    assert parse_mrsl(job(("MAXFILL", "memory\nCpuTime")))["MAXFILL"] == ["MEMORY", "CPUTIME"]


def test_runtimeenvironment_upper_cased():
    spec = parse_mrsl(job(("RUNTIMEENVIRONMENT", "python3\nGcc-4.1")))
    assert spec["RUNTIMEENVIRONMENT"] == ["PYTHON3", "GCC-4.1"]


def test_mount_adds_sshfs_runtime_environment_once():
    spec = parse_mrsl(job(("MOUNT", "data /mnt/data"), ("RUNTIMEENVIRONMENT", "python3")))
    assert spec["MOUNT"] == ["data /mnt/data"]
    assert spec["RUNTIMEENVIRONMENT"] == ["PYTHON3", "SSHFS-2.X-1"]
    spec = parse_mrsl(job(("MOUNT", "a b\nc d"), ("RUNTIMEENVIRONMENT", "sshfs-2.x-1")))
    assert spec["RUNTIMEENVIRONMENT"] == ["SSHFS-2.X-1"]
    assert parse_mrsl(MINIMAL)["RUNTIMEENVIRONMENT"] == []


def test_vgrid_comma_lists_split():
    spec = parse_mrsl(job(("VGRID", "A, B/sub ,C\nD\n,E,")))
    assert spec["VGRID"] == ["A", "B/sub", "C", "D", "E"]


# --------------------------------------------------------------------------- JSON

EQUIVALENT_MRSL = """::EXECUTE::
echo one
echo "two three"

::INPUTFILES::
in.txt
/data/x.txt x.txt

::OUTPUTFILES::
out.txt results/out.txt

::CPUTIME::
120

::MEMORY::
256

::ENVIRONMENT::
GREETING=hello world
EMPTY=

::RUNTIMEENVIRONMENT::
python3

::MOUNT::
data /mnt

::VGRID::
A,B

::MAXFILL::
ALL

::SANDBOX::
True

::JOBNAME::
name-1

::ARCHITECTURE::
amd64

::RETRIES::
7

::MAXPRICE::
10
"""

EQUIVALENT_JSON = {
    "EXECUTE": ["echo one", "echo \"two three\""],
    "INPUTFILES": ["in.txt", "/data/x.txt x.txt"],
    "::OUTPUTFILES::": "out.txt results/out.txt",
    "cputime": 120,
    "MEMORY": "256",
    "ENVIRONMENT": {"GREETING": "hello world", "EMPTY": ""},
    "RUNTIMEENVIRONMENT": ["python3"],
    "MOUNT": ["data /mnt"],
    "VGRID": ["A,B"],
    "MAXFILL": ["ALL"],
    "SANDBOX": True,
    "JOBNAME": "name-1",
    "ARCHITECTURE": "amd64",
    "RETRIES": 7,
    "MAXPRICE": 10,
}


def test_json_gives_same_spec_as_mrsl():
    from_mrsl = parse_mrsl(EQUIVALENT_MRSL)
    from_json = parse_json(EQUIVALENT_JSON)
    assert from_json == from_mrsl
    assert from_mrsl["ENVIRONMENT"] == [("GREETING", "hello world"), ("EMPTY", "")]
    assert from_mrsl["VGRID"] == ["A", "B"]
    assert from_mrsl["RUNTIMEENVIRONMENT"] == ["PYTHON3", "SSHFS-2.X-1"]
    assert from_mrsl["INPUTFILES"] == ["in.txt", "data/x.txt x.txt"]
    assert from_mrsl["SANDBOX"] is True
    assert from_mrsl["RETRIES"] == 7
    assert from_mrsl["MAXPRICE"] == "10"


def test_parse_job_dispatches_on_brace():
    text = "\n   " + json.dumps(EQUIVALENT_JSON)
    assert parse_job(text) == parse_mrsl(EQUIVALENT_MRSL)
    assert parse_job(EQUIVALENT_MRSL) == parse_mrsl(EQUIVALENT_MRSL)
    assert parse_job('{"EXECUTE": "echo a\\necho b"}')["EXECUTE"] == ["echo a", "echo b"]


@pytest.mark.parametrize("text,keyword", [
    ('{"EXECUTE": ["a"], "NOPE": 1}', "NOPE"),
    ('{"EXECUTE": ["a"], "CPUTIME": "x"}', "CPUTIME"),
    ('{"EXECUTE": ["a"], "CPUTIME": [1, 2]}', "CPUTIME"),
    ('{"EXECUTE": [["a"]]}', "EXECUTE"),
    ('{"EXECUTE": {"a": 1}}', "EXECUTE"),
    ('{"EXECUTE": []}', "EXECUTE"),
    ('{"EXECUTE": ["a"], "INPUTFILES": ["../x"]}', "INPUTFILES"),
    ('{"EXECUTE": ["a"], "ENVIRONMENT": ["NOEQ"]}', "ENVIRONMENT"),
    ('{"EXECUTE": ["echo \\"a"]}', "EXECUTE"),
])
def test_json_errors_name_keyword(text, keyword):
    err = error_of(text)
    assert err.keyword == keyword


@pytest.mark.parametrize("text", ['{', '{"EXECUTE": ', '{} trailing', '{"a": 1,}'])
def test_json_syntax_errors(text):
    err = error_of(text)
    assert "invalid JSON" in str(err)


def test_json_must_be_object():
    with pytest.raises(MrslError):
        parse_json("[1, 2]")
    with pytest.raises(MrslError):
        parse_json(b'"text"')


# --------------------------------------------------------------------------- to_mrsl

ROUND_TRIP_DOCS = [
    MINIMAL,
    EQUIVALENT_MRSL,
    "::EXECUTE::\necho \\# hash\necho back\\\\slash\\\\\\\\\necho 'a\\#b' # comment\n"
    "\n::ENVIRONMENT::\nX=a\\#b\nY=c\\\\d\nZ==\n",
    job(("MAXFILL", "cputime\nmemory"), ("JOBNAME", "j+@%"), ("SANDBOX", "on"),
        ("NOTIFY", "jabber: me@example.org\nSETTINGS"), ("PROJECT", "p"),
        ("PLATFORM", "ONE-CLICK"), ("DISK", "3"), ("RESOURCE", "localhost.0_*\nx?y"),
        ("VERIFYFILES", "a.stdout"), ("EXECUTABLES", "bin/run run"),
        ("MAXPRICE", "2*hour+1")),
]


@pytest.mark.parametrize("text", ROUND_TRIP_DOCS)
def test_to_mrsl_round_trips(text):
    spec = parse_mrsl(text)
    rendered = to_mrsl(spec)
    assert parse_mrsl(rendered) == spec
    assert to_mrsl(parse_mrsl(rendered)) == rendered


def test_to_mrsl_escapes_hash_and_backslash_in_commands():
    spec = parse_mrsl(MINIMAL)
    spec["EXECUTE"] = ["echo '#' \\# \\\\ # x", "printf 'a\\nb'"]
    spec["ENVIRONMENT"] = [("HASH", "#1"), ("SLASH", "\\")]
    rendered = to_mrsl(spec)
    assert "echo '\\#' \\\\\\# \\\\\\\\ \\# x" in rendered
    back = parse_mrsl(rendered)
    assert back["EXECUTE"] == spec["EXECUTE"]
    assert back["ENVIRONMENT"] == [("HASH", "#1"), ("SLASH", "\\")]
    assert back == spec


def test_to_mrsl_exact_text():
    spec = parse_mrsl(job(("CPUTIME", "30"), ("SANDBOX", "yes")))
    assert to_mrsl(spec) == (
        "::EXECUTE::\necho hello\n\n::NODECOUNT::\n1\n\n::CPUCOUNT::\n1\n\n"
        "::CPUTIME::\n30\n\n::MEMORY::\n64\n\n::DISK::\n0\n\n::RETRIES::\n4\n\n"
        "::JOBTYPE::\nbatch\n\n::SANDBOX::\nTrue\n\n::MAXPRICE::\n0\n")


def test_to_mrsl_round_trips_json_job():
    spec = parse_json(EQUIVALENT_JSON)
    assert parse_job(to_mrsl(spec)) == spec


def test_keyword_like_value_is_refused_in_json_as_in_mrsl():
    """Both forms refuse it, so every accepted JSON job round-trips through to_mrsl."""
    with pytest.raises(MrslError) as err:
        parse_json({"EXECUTE": ["echo a", "::FOO::"]})
    assert err.value.keyword == "EXECUTE" and "looks like a keyword" in str(err.value)


# ------------------------------------------------------------------ expand_variables

def test_expand_variables_everywhere():
    spec = parse_mrsl(job(("JOBNAME", "sweep"),
                          ("OUTPUTFILES", "out.txt res/+JOBID+.txt"),
                          ("ENVIRONMENT", "ID=+JOBID+\nNAME=+JOBNAME+-+JOBID+")))
    spec["EXECUTE"] = ["echo +JOBID+ +JOBNAME+", "echo plain"]
    expanded = expand_variables(spec, "7_1_2_2025__3_4_5_host.0", "sweep")
    assert expanded["EXECUTE"] == ["echo 7_1_2_2025__3_4_5_host.0 sweep", "echo plain"]
    assert expanded["OUTPUTFILES"] == ["out.txt res/7_1_2_2025__3_4_5_host.0.txt"]
    assert expanded["ENVIRONMENT"] == [("ID", "7_1_2_2025__3_4_5_host.0"),
                                       ("NAME", "sweep-7_1_2_2025__3_4_5_host.0")]
    assert isinstance(expanded["ENVIRONMENT"][0], tuple)
    assert expanded["CPUTIME"] == 600 and expanded["SANDBOX"] is False
    # the input is not changed (resubmits must get their new id)
    assert spec["EXECUTE"] == ["echo +JOBID+ +JOBNAME+", "echo plain"]
    assert spec["ENVIRONMENT"][0] == ("ID", "+JOBID+")


def test_expand_variables_scalars():
    assert expand_variables("+JOBID++JOBID+/+JOBNAME+", "1", "n") == "11/n"
    assert expand_variables("+jobid+", "1", "n") == "+jobid+"
    assert expand_variables(5, "1", "n") == 5
    assert expand_variables(None, "1", "n") is None


# ----------------------------------------------------------------- robustness

def test_split_file_line():
    assert jobspec.split_file_line("a b") == ("a", "b")
    assert jobspec.split_file_line("a") == ("a", "a")


def test_huge_integer_is_an_mrsl_error():
    with pytest.raises(MrslError):
        parse_mrsl(job(("CPUTIME", "9" * 5000)))


def test_deeply_nested_json_is_an_mrsl_error():
    with pytest.raises(MrslError):
        parse_job('{"EXECUTE": ' + "[" * 100000 + "]" * 100000 + "}")


_FUZZ_NAMES = [kw.name for kw in KEYWORDS] + ["FOO", "", "EXECUTE ", "execute", "::", "#X",
                                               "RUNTIME ENVIRONMENT", "\u00e6\u00f8\u00e5"]
_FUZZ_ATOMS = ["echo hi", "1", "0", "-1", "600", "True", "false", "maybe", "ALL", "CPUTIME",
               "A=b", "=", "a b", "a b c", "..", "../x", "/etc/passwd", "x/../../y",
               "http://h/x", "'", '"', "`", "\\", "\\#", "#", "::EXECUTE::", "::FOO::",
               "amd64", "vax", "bulk", "Generic", "A,B", "*", "[", "<>", "+JOBID+",
               "\u00e6", "\u2028", "\x0c", "\r", "\t", " ", "9" * 30, "1e5", "{", "}",
               "__import__('os')", "A" * 300]


def _random_value(rnd):
    return "".join(rnd.choice(_FUZZ_ATOMS) if rnd.random() < 0.8 else
                   chr(rnd.randrange(1, 0x2FF)) for _ in range(rnd.randrange(1, 4)))


def _random_mrsl(rnd):
    lines = []
    for _ in range(rnd.randrange(0, 7)):
        name = rnd.choice(_FUZZ_NAMES)
        style = rnd.randrange(3)
        lines.append(("::%s::" % name) if style == 0 else name if style == 1 else
                     (":" * rnd.randrange(1, 4) + name))
        for _ in range(rnd.randrange(0, 4)):
            lines.append(_random_value(rnd))
        lines.append("" if rnd.random() < 0.85 else _random_value(rnd))
    return rnd.choice(["\n", "\r\n"]).join(lines)


def _random_json(rnd):
    doc = {}
    for _ in range(rnd.randrange(0, 6)):
        kind = rnd.randrange(7)
        value = (_random_value(rnd) if kind == 0 else rnd.randrange(-5, 10 ** 6) if kind == 1
                 else [_random_value(rnd) for _ in range(rnd.randrange(4))] if kind == 2
                 else rnd.random() < 0.5 if kind == 3 else None if kind == 4
                 else {_random_value(rnd): _random_value(rnd)} if kind == 5
                 else [[1], {"a": 2}, 1.5][rnd.randrange(3)])
        doc[rnd.choice(_FUZZ_NAMES)] = value
    text = json.dumps(doc)
    if rnd.random() < 0.1:
        text = text[:rnd.randrange(len(text) + 1)]
    return text


def test_fuzz_parse_job_returns_dict_or_raises_mrsl_error():
    rnd = random.Random(20250702)
    parsed = refused = 0
    for i in range(2000):
        text = _random_json(rnd) if i % 4 == 0 else _random_mrsl(rnd)
        if rnd.random() < 0.3:
            text = "::EXECUTE::\necho ok\n\n" + text
        try:
            result = parse_job(text)
        except MrslError:
            refused += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure we look for
            pytest.fail("parse_job(%r) raised %r" % (text, exc))
        parsed += 1
        assert isinstance(result, dict)
        assert set(result) == {kw.name for kw in KEYWORDS}
        assert result["EXECUTE"]
    assert parsed > 50 and refused > 50
