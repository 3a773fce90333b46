"""The docs stay true: generated references are current and complete, and
every example job in docs/*.md still parses."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ENTRY
from mig import docsgen
from mig.backends.catalog import load_all
from mig.core import jobspec, keywords
from mig.core.resconf import parse_resource

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
FENCE = re.compile(r"^```(\S*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def fenced_blocks(tag):
    """(file name, block text) for every ```tag block in docs/*.md."""
    found = []
    for path in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        found += [(os.path.basename(path), body) for kind, body in FENCE.findall(text)
                  if kind == tag]
    return found


def read_doc(name):
    with open(os.path.join(DOCS, name), encoding="utf-8") as handle:
        return handle.read()


def test_generated_docs_are_current():
    assert docsgen.check(DOCS) == [], "run: python -m mig.docsgen docs"


def test_check_reports_missing_and_stale_files(tmp_path):
    assert sorted(docsgen.check(str(tmp_path))) == sorted(docsgen.GENERATED)
    docsgen.write(str(tmp_path))
    assert docsgen.check(str(tmp_path)) == []
    (tmp_path / "backends.md").write_text("old\n", encoding="utf-8")
    assert docsgen.check(str(tmp_path)) == ["backends.md"]


@pytest.mark.parametrize("keyword", [kw.name for kw in keywords.KEYWORDS])
def test_every_keyword_is_documented(keyword):
    text = read_doc("mrsl-reference.md")
    assert "\n### %s\n" % keyword in text
    assert "[%s](#%s)" % (keyword, keyword.lower()) in text


@pytest.mark.parametrize("name", sorted(load_all()))
def test_every_backend_is_documented(name):
    text = read_doc("backends.md")
    assert "\n### %s\n" % name in text
    assert "`/cgi-bin/%s.py`" % name in text
    assert "$URL/cgi-bin/%s.py" % name in text


def test_quickstart_has_example_jobs():
    assert any(name == "quickstart.md" for name, _ in fenced_blocks("mrsl"))


@pytest.mark.parametrize("name,block", fenced_blocks("mrsl"))
def test_mrsl_examples_parse(name, block):
    spec = jobspec.parse_mrsl(block)
    assert spec["EXECUTE"], name


@pytest.mark.parametrize("name,block", fenced_blocks("json"))
def test_json_examples_parse(name, block):
    data = json.loads(block)
    if isinstance(data, dict) and "EXECUTE" in data:  # a JSON job, not a reply
        assert jobspec.parse_json(data)["EXECUTE"], name


@pytest.mark.parametrize("name,block", fenced_blocks("resconf"))
def test_resource_configuration_examples_parse(name, block):
    assert parse_resource(block)["EXECONFIG"], name


def test_admin_guide_resource_commands_run(tmp_path):
    """The resource commands of the admin guide, in order, on a fresh state folder.
    status and clean need a reachable host: tests/test_ssh_resources.py runs them."""
    text = read_doc("admin.md")
    confs = [body for kind, body in FENCE.findall(text) if kind == "resconf"]
    blocks = [body for kind, body in FENCE.findall(text) if kind == "sh" and "resource " in body]
    assert len(confs) == 1 and len(blocks) == 1
    (tmp_path / "cluster.conf").write_text(confs[0])
    env = dict(os.environ, MIG_STATE=str(tmp_path / "mig-state"))

    def run(line):
        line = line.replace("python3 migappliance.py", "%s %s" % (sys.executable, ENTRY))
        result = subprocess.run(["bash", "-c", line], cwd=str(tmp_path), env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (line, result.stderr)
        return result.stdout
    for user in ("alice", "bob"):
        run("python3 migappliance.py user add %s --json" % user)
    ran = []
    for line in blocks[0].splitlines():
        if re.search(r"resource (status|clean) ", line):
            continue
        out = run(line)
        ran.append(line.split()[3])
        if "--json" in line:
            assert json.loads(out)["name"] == "cluster.example.org.0"
        if " owner remove " in line:
            shown = json.loads(run("python3 migappliance.py resource show "
                                   "cluster.example.org.0 --json"))
            assert shown["owners"] == ["bob"] and shown["stopped"] == []
    assert ran == ["add", "list", "show", "edit", "stop", "start", "owner", "owner", "remove"]
    assert run("python3 migappliance.py resource list --json") == "[]\n"


def test_docs_index_links_exist():
    links = re.findall(r"\]\(([^)#:]+\.md)\)", read_doc("README.md"))
    assert "quickstart.md" in links and "mrsl-reference.md" in links
    missing = [link for link in links if not os.path.exists(os.path.join(DOCS, link))
               and link not in ("admin.md", "performance.md")]  # written by others
    assert missing == []


def test_user_guide_screenshots_exist():
    """Every screenshot the user guide shows is in docs/screenshots (made by make docs)."""
    images = re.findall(r"\]\((screenshots/[^)]+\.png)\)", read_doc("user-guide.md"))
    assert len(images) >= 10
    missing = [image for image in images if not os.path.exists(os.path.join(DOCS, image))]
    assert not missing, missing
    # and every screenshot `make docs` makes is shown there (none left stale)
    made = sorted("screenshots/" + n for n in os.listdir(os.path.join(DOCS, "screenshots")))
    assert sorted(set(images)) == made


def test_python_client_examples_run():
    """Every python example in docs/python-client.md runs (they use local mode)."""
    import shutil
    import tempfile
    text = read_doc("python-client.md")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    workdir = tempfile.mkdtemp(prefix="mig-doc-examples-")
    try:
        for block in blocks:
            namespace = {}
            exec(compile(block, "python-client.md", "exec"), namespace)  # noqa: S102
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("doc,at_least", [("architecture.md", 40), ("access.md", 8)])
def test_the_code_pages_name_only_modules_that_exist(doc, at_least):
    """docs/architecture.md walks through the code and docs/access.md says where
    each right is checked; every module and folder they name must be there (a
    renamed or removed one fails here)."""
    import re
    text = read_doc(doc)
    named = set(re.findall(r"`(mig/[\w/]+(?:\.py)?)`", text))
    assert len(named) > at_least
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert sorted(n for n in named if not os.path.exists(os.path.join(root, n))) == []
