"""The layer rules of docs/architecture.md, checked by reading every module's
imports (top-level and inside functions) with ``ast``."""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mig")

# What each layer may import besides itself, the package root (mig.__version__)
# and the standard library.  A layer is a folder of mig/ or a top-level module.
ALLOWED = {
    "errors.py": set(),
    "config.py": {"errors"},
    "store": {"errors"},
    "core": {"store", "errors"},
    "render": {"errors"},
    "scriptgen": {"errors"},
    "backends": {"core", "render.objects", "errors", "scriptgen"},
    "execute": {"core", "store", "errors"},
    "daemon": {"core", "store", "errors"},
    "web": {"backends", "render", "core.auth", "errors"},
    "miginterface.py": {"client"},
}
# The modules that put the appliance together may import any layer.
WIRING = {"cli.py", "appliance.py", os.path.join("web", "server.py"), "docsgen.py",
          "client.py"}
# Named exceptions, each with its reason (docs/architecture.md lists them).
EXCEPTIONS = {
    # the web shell shows other backends' results as a terminal would
    (os.path.join("backends", "shell.py"), "render.txt"),
}
# What a backend must not reach through ctx.grid: the running machinery.
MACHINERY = {"daemon", "executors", "resource_sync", "keepalive", "checkpointer"}


def modules():
    """(path relative to mig/, dotted name) of every module."""
    for folder, _dirs, files in os.walk(ROOT):
        for name in sorted(files):
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), ROOT)
                dotted = "mig." + rel[:-3].replace(os.sep, ".")
                yield rel, dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted


def imported(rel):
    """Every mig module a module imports, as dotted names (mig.core.jobs)."""
    tree = ast.parse(open(os.path.join(ROOT, rel), encoding="utf-8").read())
    known = {dotted for _rel, dotted in modules()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [name if name in known else node.module
                     for name in ("%s.%s" % (node.module, a.name) for a in node.names)]
        else:
            continue
        for name in names:
            if name.startswith("mig.") or name == "mig":
                yield name


def layer_of(rel):
    return rel if os.sep not in rel else rel.split(os.sep)[0]


def allowed(rel, target):
    """May the module rel import the module target (dotted)?"""
    layer = layer_of(rel)
    parts = target.split(".")[1:]
    if not parts or parts == ["__init__"] or rel in WIRING:
        return True
    if parts[0] == layer or (len(parts) == 1 and parts[0] + ".py" == layer):
        return True
    rules = ALLOWED[layer]
    return any(".".join(parts[:n]) in rules for n in (1, 2)) or \
        (rel, ".".join(parts[:2])) in EXCEPTIONS


def test_every_module_has_a_layer_rule():
    """Also the top-level modules: a new one needs its rule (or to be wiring)."""
    missing = sorted({layer_of(rel) for rel, _ in modules()} - set(ALLOWED) - WIRING
                     - {"__init__.py"})
    assert missing == []


def test_layers():
    problems = ["%s imports %s" % (rel, target) for rel, _ in modules()
                for target in imported(rel) if not allowed(rel, target)]
    assert problems == []


def import_graph():
    return {dotted: {t for t in imported(rel) if t != dotted} for rel, dotted in modules()}


def cycles(graph):
    """The groups of modules that import each other, directly or around a loop."""
    index, low, stack, found, counter = {}, {}, [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_a_loop():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def machinery_used(rel):
    """Lines where a module reaches into the grid's daemon or executors."""
    tree = ast.parse(open(os.path.join(ROOT, rel), encoding="utf-8").read())
    return ["%s:%d .%s" % (rel, node.lineno, node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in MACHINERY
            and isinstance(node.value, ast.Attribute) and node.value.attr == "grid"
            or isinstance(node, ast.Attribute) and node.attr in MACHINERY
            and isinstance(node.value, ast.Name) and node.value.id == "grid"]


@pytest.mark.parametrize("layer", ["backends", "web", "render"])
def test_backends_use_the_grid_services_not_its_machinery(layer):
    """ctx.grid offers services (mig/appliance.py, "what backends may ask");
    the daemon, executors and resource sync are the grid's own business."""
    assert [line for rel, _ in modules() if layer_of(rel) == layer
            for line in machinery_used(rel)] == []


def test_the_machinery_check_sees_a_reach(tmp_path, monkeypatch):
    (tmp_path / "backends").mkdir()
    (tmp_path / "backends" / "bad.py").write_text(
        "def f(ctx, grid):\n    ctx.grid.daemon.poke()\n    grid.executors.get('local')\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", str(tmp_path))
    assert machinery_used(os.path.join("backends", "bad.py")) == [
        "backends/bad.py:2 .daemon", "backends/bad.py:3 .executors"]


def test_a_wrong_import_is_seen(tmp_path, monkeypatch):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "bad.py").write_text("from mig.web import dispatch\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", str(tmp_path))
    bad = os.path.join("core", "bad.py")
    assert [t for t in imported(bad) if not allowed(bad, t)] == ["mig.web"]


def test_only_the_store_touches_pickle():
    offenders = []
    for folder, _dirs, files in os.walk(ROOT):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and "import pickle" in open(path, encoding="utf-8").read():
                offenders.append(os.path.relpath(path, ROOT))
    assert sorted(offenders) == [os.path.join("store", "records.py")]
