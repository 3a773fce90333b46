"""How the ssh executor pins a resource's host key (no sshd needed for this)."""

import os

from conftest import BOGUS_HOSTKEY, resource_conf
from mig.core.resconf import parse_resource
from mig.execute.sshremote import Remote

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther"


def test_the_pinned_host_key_is_replaced_whole_when_the_owner_edits_it(tmp_path):
    conf = parse_resource(resource_conf("node.example.org", ["name=exe"], port=2222))
    first = Remote("node.example.org.0", conf, str(tmp_path))
    path = first.known_hosts
    assert open(path).read() == "[node.example.org]:2222 %s\n" % BOGUS_HOSTKEY
    assert os.stat(path).st_mode & 0o777 == 0o600
    reader = open(path)  # an ssh of a running job that has the old file open
    edited = parse_resource(resource_conf("node.example.org", ["name=exe"], port=2222,
                                          key=OTHER_KEY))
    Remote("node.example.org.0", edited, str(tmp_path))
    assert reader.read() == "[node.example.org]:2222 %s\n" % BOGUS_HOSTKEY  # still whole
    reader.close()
    assert open(path).read() == "[node.example.org]:2222 %s\n" % OTHER_KEY
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]  # no temporary left


def test_the_remote_commands_are_plain_posix_sh(tmp_path):
    """Every command the executor sends parses in /bin/sh (dash on Debian), for
    both kinds of resource, also with job ids that hold dots."""
    import subprocess
    for lrms, unit in (("native", ["name=exe"]), ("slurm", ["name=exe", "partition=debug"])):
        conf = parse_resource(resource_conf("node.example.org", unit, port=2222,
                                            after=[("LRMSTYPE", lrms)]))
        remote = Remote("node.example.org.0", conf, str(tmp_path))
        job_id = "7_12_3_2026__10_0_0_grid.example.org"
        for command in (remote.job_command(job_id, "exe", {"CPUTIME": 60, "NODECOUNT": 1},
                                           "0123456789abcdef"),
                        remote.cancel_command(job_id), remote.sweep_command(),
                        remote.sweep_command([job_id, "8_1_1_2026__0_0_0_x"])):
            checked = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
            assert checked.returncode == 0, (lrms, checked.stderr, command)
