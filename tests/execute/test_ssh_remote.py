"""How the ssh executor pins a resource's host key (no sshd needed for this)."""

import os

from conftest import BOGUS_HOSTKEY, resource_conf
from mig.core.resconf import parse_resource
from mig.execute.ssh import Remote

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
