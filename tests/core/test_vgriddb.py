"""VGridDB on its own: names, nesting and roles, and the record cache, which
must see every write (also two within one clock tick, or one that keeps the
file's size and time)."""

import os

import pytest

from mig.core.vgrids import VGridDB, check_name, parents
from mig.errors import AccessDenied, ClientError, ConflictError, InvalidArgument
from mig.store.pickledb import PickleStore


class Users:
    """What VGridDB asks of the UserDB: who is an admin."""

    def is_admin(self, name):
        return name == "root"


@pytest.fixture
def db(tmp_path):
    return VGridDB(PickleStore(str(tmp_path / "db")), Users(), str(tmp_path / "files"))


def test_names_and_nesting(db):
    assert parents("A/B/C") == ["A", "A/B", "A/B/C"]
    for bad in ("", "/A", "A/", "A//B", "a b ", ".hidden", "A/../B"):
        with pytest.raises(InvalidArgument):
            check_name(bad)
    with pytest.raises(InvalidArgument, match="reserved"):
        check_name("any")
    db.create("Lab", "alice")
    with pytest.raises(ConflictError):
        db.create("LAB", "bob")
    with pytest.raises(AccessDenied):
        db.create("Lab/Sub", "bob")
    db.create("Lab/Sub", "alice")
    assert os.path.isdir(db.shared_folder("Lab/Sub"))
    db.add("Lab", "MEMBERS", "carol", "alice")
    db.add("Lab/Sub", "MEMBERS", "bob", "alice")
    assert db.entries("Lab/Sub", "MEMBERS") == ["carol", "bob"]
    assert db.is_owner("alice", "Lab/Sub") and not db.is_owner("bob", "Lab/Sub")
    assert db.user_vgrids("carol") == ["Generic", "Lab", "Lab/Sub"]
    assert db.user_vgrids("bob") == ["Generic", "Lab/Sub"]
    with pytest.raises(ClientError, match="through Lab"):
        db.remove("Lab/Sub", "MEMBERS", "carol", "alice")


def test_the_cache_sees_every_write(db):
    db.create("Lab", "alice")
    assert db.entries("Lab", "MEMBERS") == []  # now cached
    path = os.path.join(db.store.root, "vgrids", "Lab.pickle")
    before = os.stat(path)
    db.add("Lab", "MEMBERS", "bobby", "alice")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same time again
    assert db.entries("Lab", "MEMBERS") == ["bobby"]
    db.remove("Lab", "MEMBERS", "bobby", "alice")
    db.add("Lab", "MEMBERS", "carol", "alice")  # same size as before, within a tick
    assert db.entries("Lab", "MEMBERS") == ["carol"]
    os.unlink(path)
    assert db.names() == []
