"""The layer rules of ARCHITECTURE.md, checked by reading imports."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mig")

ALLOWED = {
    "core": {"core", "store", "errors"},
    "store": {"store", "errors"},
    "backends": {"backends", "core", "render", "errors", "scriptgen"},
    "scriptgen": {"scriptgen", "errors"},
    "render": {"render", "errors"},
    "web": {"web", "backends", "render", "core", "errors"},
    "execute": {"execute", "core", "store", "errors"},
    "daemon": {"daemon", "core", "store", "errors"},
}
WIRING = {"cli.py", "appliance.py", os.path.join("web", "server.py"), "docsgen.py"}


def mig_imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ["%s.%s" % (node.module, a.name) for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "mig" and len(parts) > 1:
                yield parts[1]


def test_layers():
    problems = []
    for folder, _dirs, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT)
            layer = rel.split(os.sep)[0]
            if rel in WIRING or layer not in ALLOWED:
                continue
            for target in mig_imports(path):
                if target.endswith(".py") or target.startswith("__"):  # mig.__version__ etc.
                    continue
                if target not in ALLOWED[layer]:
                    problems.append("%s imports mig.%s" % (rel, target))
    assert not problems, problems


def test_only_the_store_touches_pickle():
    offenders = []
    for folder, _dirs, files in os.walk(ROOT):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and "import pickle" in open(path, encoding="utf-8").read():
                offenders.append(os.path.relpath(path, ROOT))
    assert sorted(offenders) == [os.path.join("store", "records.py")]
