"""Resource configurations in MiG's format, and the resource CLI."""

import json
import subprocess
import sys

import pytest

from conftest import ENTRY, resource_conf
from mig.core.resconf import exe_units, parse_resource
from mig.errors import MrslError

GOOD = resource_conf(
    "10.213.7.2",
    ["name=short", "cputime=600", "partition=debug", "slots=2"],
    ["name=long", "cputime=86400", "partition=long", "vgrid=Generic,physics"],
    port=22, after=[("LRMSTYPE", "slurm"), ("CPUCOUNT", "4"), ("MEMORY", "8192"),
                    ("RUNTIMEENVIRONMENT", "python3")])


def test_a_good_configuration():
    conf = parse_resource(GOOD)
    assert conf["HOSTURL"] == "10.213.7.2" and conf["HOSTIDENTIFIER"] == 0
    assert conf["LRMSTYPE"] == "slurm" and conf["FRONTENDNODE"] == "10.213.7.2"
    assert [u["name"] for u in conf["EXECONFIG"]] == ["short", "long"]
    units = exe_units("10.213.7.2.0", conf, "ssh")
    assert units[0].unit_id == "10.213.7.2.0_short" and units[0].slots == 2
    assert units[1].vgrids == ("Generic", "physics") and units[1].runtimeenvs == ("PYTHON3",)
    assert units[0].cpucount == 4 and units[0].memory == 8192


@pytest.mark.parametrize("change, message", [
    (("gridu", "root; rm -rf /"), "MIGUSER"),
    (("/home/gridu/mig", "/home/gridu/$(reboot)"), "RESOURCEHOME"),
    (("/home/gridu/mig", "/home/../etc"), "RESOURCEHOME"),
    (("10.213.7.2\n", "evil host;\n"), "HOSTURL"),
    (("::SSHPORT::\n22", "::SSHPORT::\nssh"), "SSHPORT"),
    (("slurm", "pbs"), "LRMSTYPE"),
    (("partition=long\n", ""), "partition"),
    (("name=long", "name=short"), "must differ"),
    (("slots=2", "colour=blue"), "unknown exe unit key"),
    (("::CPUCOUNT::", "::CPUS::"), "unknown keyword CPUS"),
])
def test_bad_configurations_name_the_problem(change, message):
    with pytest.raises(MrslError) as err:
        parse_resource(GOOD.replace(*change, 1))
    assert message in str(err.value)


def test_required_keywords():
    with pytest.raises(MrslError, match="MIGUSER is required"):
        parse_resource(GOOD.replace("::MIGUSER::\ngridu\n", ""))


def test_resource_cli(tmp_path):
    state = str(tmp_path / "s")
    conf = tmp_path / "res.conf"
    conf.write_text(GOOD.replace("::RUNTIMEENVIRONMENT::\npython3\n", ""))  # none defined

    def run(*args):
        return subprocess.run([sys.executable, ENTRY] + list(args) + ["--state", state],
                              capture_output=True, text=True, timeout=60)
    assert run("user", "add", "owner1").returncode == 0
    first = json.loads(run("resource", "add", "--conf", str(conf), "--owner", "owner1",
                           "--json").stdout)
    second = json.loads(run("resource", "add", "--conf", str(conf), "--owner", "owner1",
                            "--json").stdout)
    assert first["name"] == "10.213.7.2.0" and second["name"] == "10.213.7.2.1"
    assert first["exe_units"] == ["short", "long"] and first["lrms"] == "slurm"
    listed = json.loads(run("resource", "list", "--json").stdout)
    assert [r["name"] for r in listed] == ["10.213.7.2.0", "10.213.7.2.1"]
    assert run("resource", "show", "10.213.7.2.0").stdout.startswith("::HOSTURL::")
    bad = run("resource", "add", "--conf", str(conf), "--owner", "nobody-here")
    assert bad.returncode == 3 and "no such user" in bad.stderr
    conf.write_text(GOOD)
    bad = run("resource", "add", "--conf", str(conf), "--owner", "owner1")
    assert bad.returncode == 3 and "PYTHON3 is not a runtime environment of this grid" in bad.stderr
    conf.write_text(GOOD.replace("gridu", "Grid User"))
    bad = run("resource", "add", "--conf", str(conf), "--owner", "owner1")
    assert bad.returncode == 3 and "MIGUSER" in bad.stderr and "Traceback" not in bad.stderr
    assert run("resource", "show", "no.such").returncode == 3
