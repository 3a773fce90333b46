"""ResourceDB on a real state folder (store, users with certificates): owners and
rights, edits that keep the name and the pinned key, stopped exe units."""

import pytest

import mig.config
from mig.appliance import init_state
from mig.core.resconf import conf_text, form_edit_text, parse_resource
from mig.core.resourcedb import ALL_UNITS, ResourceDB, may_manage, stopped_units
from mig.core.users import UserDB
from mig.errors import AccessDenied, ClientError, MrslError
from mig.store.pickledb import PickleStore
from conftest import BOGUS_HOSTKEY, resource_conf

KEY = BOGUS_HOSTKEY
SCANNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIScannedScannedScannedScannedScannedScan"
CONF = resource_conf("node.example.org", ["name=exe0", "slots=2"], ["name=exe1"], key=KEY,
                     after=[("CPUCOUNT", "2")])
NAME = "node.example.org.0"


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    config = mig.config.load(str(tmp_path_factory.mktemp("resdb") / "state"))
    init_state(config)
    store = PickleStore(config.path("db"))
    users = UserDB(store, config)
    for name in ("alice", "bob", "carol"):
        users.add(name)
    return store, users


@pytest.fixture
def db(state):
    store, users = state
    for name in ResourceDB(store).names():
        store.delete("resources/%s" % name)
    scanned = []

    def scan(host, port):  # what ssh-keyscan would print for the host
        scanned.append((host, port))
        return SCANNED
    resources = ResourceDB(store, users, scan)
    resources.scanned = scanned
    resources.add(CONF, "alice", by_user="admin")
    return resources


def test_rights_are_decided_in_one_place():
    record = {"OWNERS": ["alice"]}
    assert may_manage("alice", record, False) and may_manage("bob", record, True)
    assert not may_manage("bob", record, False)
    assert may_manage(None, record, False)  # the operator on the host (the CLI)


def test_registration_by_users_needs_the_setting(db, state):
    with pytest.raises(AccessDenied, match="only admins register"):
        db.add(CONF, "bob", by_user="bob")
    open_db = ResourceDB(state[0], state[1], users_register=True)
    assert open_db.add(CONF, "bob", by_user="bob")["NAME"] == "node.example.org.1"
    with pytest.raises(AccessDenied, match="that you own"):
        open_db.add(CONF, "alice", by_user="bob")
    with pytest.raises(ClientError, match="no such user: nobody"):
        db.add(CONF, "nobody")


def test_owner_edits_and_the_name_stays(db):
    record = db.update(NAME, CONF.replace("::CPUCOUNT::\n2", "::CPUCOUNT::\n8"), "alice")
    assert record["NAME"] == NAME and record["CONF"]["CPUCOUNT"] == 8
    assert record["CONF"]["HOSTIDENTIFIER"] == 0  # AUTO in the text: the name's number
    assert db.get(NAME)["CONF"]["CPUCOUNT"] == 8
    assert record["MODIFIED_BY"] == "alice"
    # an admin may edit too; the explicit number of the name is fine
    db.update(NAME, CONF.replace("AUTO", "0"), "admin")


@pytest.mark.parametrize("change, message", [
    (("node.example.org", "other.example.org"), "HOSTURL cannot change"),
    (("AUTO", "7"), "HOSTIDENTIFIER cannot change"),
    (("::HOSTKEY::\n%s\n\n" % KEY, ""), "removes HOSTKEY"),
    (("::CPUCOUNT::\n2", "::CPUCOUNT::\ntwo"), "line 17, keyword CPUCOUNT"),
])
def test_bad_edits_are_refused_and_nothing_changes(db, change, message):
    before = db.get(NAME)
    with pytest.raises(ClientError, match=message):
        db.update(NAME, CONF.replace(*change), "alice")
    assert db.get(NAME) == before


def test_non_owners_are_refused(db):
    for attempt in (lambda: db.update(NAME, CONF, "bob"),
                    lambda: db.set_stopped(NAME, None, True, "bob"),
                    lambda: db.add_owner(NAME, "bob", "bob"),
                    lambda: db.remove(NAME, "bob")):
        with pytest.raises(AccessDenied, match="only the owners of %s" % NAME):
            attempt()
    assert db.get(NAME)["OWNERS"] == ["alice"] and stopped_units(db.get(NAME)) == set()


def test_trust_on_first_use_pins_the_key_the_host_shows(db):
    without = CONF.replace("::HOSTKEY::\n%s\n\n" % KEY, "")
    record = db.update(NAME, without, "alice", trust_on_first_use=True)
    assert record["CONF"]["HOSTKEY"] == SCANNED and db.scanned == [("node.example.org", 22)]
    assert "::HOSTKEY::\n%s\n" % SCANNED in record["TEXT"]
    assert db.update(NAME, CONF, "alice", trust_on_first_use=True)["CONF"]["HOSTKEY"] == KEY
    assert len(db.scanned) == 1  # a given key is pinned as it is, nothing is fetched
    with pytest.raises(ClientError, match="trust on first use is not available"):
        ResourceDB(db.store, db.users).update(NAME, without, None, trust_on_first_use=True)


def test_owners_add_owners_who_may_then_edit(db):
    with pytest.raises(ClientError, match="no such user: nobody"):
        db.add_owner(NAME, "nobody", "alice")
    assert db.add_owner(NAME, "bob", "alice")["OWNERS"] == ["alice", "bob"]
    assert db.add_owner(NAME, "bob", "alice")["OWNERS"] == ["alice", "bob"]  # once
    db.update(NAME, CONF.replace("slots=2", "slots=3"), "bob")
    assert db.remove_owner(NAME, "alice", "bob")["OWNERS"] == ["bob"]
    with pytest.raises(AccessDenied):
        db.update(NAME, CONF, "alice")
    with pytest.raises(ClientError, match="bob is the last owner"):
        db.remove_owner(NAME, "bob", "bob")
    with pytest.raises(ClientError, match="carol is not an owner"):
        db.remove_owner(NAME, "carol", "bob")
    assert [r["NAME"] for r in db.managed_by("bob")] == [NAME]
    assert db.managed_by("carol") == [] and len(db.managed_by("admin")) == 1


def test_stop_and_start_units_or_all(db):
    assert db.set_stopped(NAME, "exe0", True, "alice")["STOPPED"] == ["exe0"]
    assert db.set_stopped(NAME, "exe1", True, "alice")["STOPPED"] == [ALL_UNITS]
    record = db.set_stopped(NAME, "exe0", False, "alice")
    assert record["STOPPED"] == ["exe1"] and stopped_units(record) == {"exe1"}
    assert db.set_stopped(NAME, "", True, "alice")["STOPPED"] == [ALL_UNITS]
    # '*' covers units added later, and survives edits
    record = db.update(NAME, CONF + "\n::EXECONFIG::\nname=exe2\n", "alice")
    assert stopped_units(record) == {"exe0", "exe1", "exe2"}
    assert db.set_stopped(NAME, None, False, "alice")["STOPPED"] == []
    with pytest.raises(ClientError, match="no exe unit exe9 on %s" % NAME):
        db.set_stopped(NAME, "exe9", True, "alice")
    db.set_stopped(NAME, "exe1", True, "alice")
    record = db.update(NAME, CONF.replace("\n::EXECONFIG::\nname=exe1\n", ""), "alice")
    assert record["STOPPED"] == []  # a removed unit is not remembered as stopped


def test_remove_and_the_signature_follows_every_write(db):
    first = db.signature()
    db.set_stopped(NAME, "exe0", True, "alice")
    second = db.signature()
    db.set_stopped(NAME, "exe0", False, "alice")
    assert len({first, second, db.signature()}) == 3
    db.remove(NAME, "alice")
    assert db.signature() == () and db.names() == []
    with pytest.raises(ClientError, match="no such resource"):
        db.get(NAME)


def test_text_and_form_editing_round_trip():
    conf = parse_resource(CONF)
    assert parse_resource(conf_text(conf)) == conf
    text = form_edit_text(conf, {"MEMORY": "4096", "RUNTIMEENVIRONMENT": "python3\nr\n",
                                 "CPUCOUNT": ""},
                          {0: {"cputime": "600"}, 2: {"name": "exe2", "slots": "4"}})
    edited = parse_resource(text)
    assert edited["MEMORY"] == 4096 and edited["CPUCOUNT"] == 2  # empty keeps the value
    assert edited["RUNTIMEENVIRONMENT"] == ["python3", "r"]
    assert [(u["name"], u["cputime"], u["slots"]) for u in edited["EXECONFIG"]] == [
        ("exe0", 600, 2), ("exe1", 3600, 1), ("exe2", 3600, 4)]
    with pytest.raises(MrslError, match="one line"):  # no keyword smuggled in a value
        form_edit_text(conf, {"MEMORY": "1\n\n::HOSTURL::\nevil.org"}, {})
    with pytest.raises(MrslError, match="one line"):
        form_edit_text(conf, {}, {0: {"cputime": "1\nslots=99"}})
