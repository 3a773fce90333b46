"""A real appliance whose state folder is on a small tmpfs that runs out of
blocks, then of inodes: each refusal is a clear error for the request that
hit it, nothing refused comes back, nothing acknowledged is lost, no byte
goes to a stranger's connection, the appliance recovers by itself once there
is room, and it starts (after a kill -9) on the still-full disk."""

import errno
import os
import re
import socket
import subprocess
import time
import urllib.parse
from urllib.parse import urlsplit

import pytest

from conftest import IN_CI, exit_code, https_connection, post

SUBMIT = "::EXECUTE::\necho kept\n\n::ARCHITECTURE::\nSPARC\n"  # stays QUEUED


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 40 MB and 2,000 inodes, unmounted at the end."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the full-disk tests mount a tmpfs: run them as root")
        pytest.skip("the full-disk tests mount a tmpfs: run them as root (sudo make test)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,nr_inodes=2000,mode=0755",
                    "tmpfs", str(mount)], check=True)
    yield str(mount)
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_blocks(folder):
    """Write a filler until the disk has no block left (again); returns its path."""
    path = os.path.join(folder, "filler")
    chunk = b"\0" * (1 << 20)
    with open(path, "ab", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with open(path, "ab", buffering=0) as handle:  # and the last partial megabyte
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return path


def fill_inodes(folder):
    """Create empty files until no inode is left (again); returns their folder."""
    spare = os.path.join(folder, "inodes")
    os.makedirs(spare, exist_ok=True)
    n = len(os.listdir(spare))
    try:
        while True:
            open(os.path.join(spare, str(n)), "w").close()
            n += 1
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    return spare


def submit(app, token):
    conn = https_connection(app)
    try:
        status, reply = post(conn, "/cgi-bin/textarea.py", "output_format=txt&mrsltextarea_0="
                             + urllib.parse.quote(SUBMIT), token)
    finally:
        conn.close()
    assert status == 200, reply
    found = re.search(r"^textarea\s+1\s+(\S+)", reply, re.M)
    return (found.group(1) if found else None), reply


def job_ids(app, token):
    conn = https_connection(app)
    try:
        status, reply = post(conn, "/cgi-bin/jobstatus.py", "output_format=txt", token)
    finally:
        conn.close()
    assert status == 200 and exit_code(reply) == 0, reply
    return set(re.findall(r"^Job Id: (\S+)$", reply, re.M))


def raw_clients(app, n=4):
    """TCP connections that never start TLS: a stranger's sockets whose
    descriptor numbers the server may reuse."""
    parts = urlsplit(app.url)
    clients = []
    for _ in range(n):
        sock = socket.create_connection((parts.hostname, parts.port))
        sock.settimeout(0.2)
        clients.append(sock)
    return clients


def received(clients):
    data = b""
    for sock in clients:
        try:
            data += sock.recv(65536)
        except (socket.timeout, OSError):
            pass
        sock.close()
    return data


def refused_until_full(app, token, acknowledged, disk):
    """Submit until the appliance refuses (a few may still fit, and the store
    gives back its reserve once), keeping the disk full; returns the reply."""
    for _ in range(200):
        job, reply = submit(app, token)
        if job is None:
            return reply
        acknowledged.add(job)
        fill_blocks(disk)
    raise AssertionError("the appliance never refused a submission on a full disk")


def start_on(appliance_factory, disk):
    app = appliance_factory(state=os.path.join(disk, "state"))
    alice = app.add_user("alice")
    app.start()
    return app, alice


def test_out_of_blocks_refuses_clearly_recovers_and_restarts_full(appliance_factory,
                                                                  small_disk):
    app, alice = start_on(appliance_factory, small_disk)
    token = alice["token"]
    acknowledged = {submit(app, token)[0]}
    filler = fill_blocks(small_disk)
    clients = raw_clients(app)
    reply = refused_until_full(app, token, acknowledged, small_disk)
    assert exit_code(reply) == 200
    assert "not submitted" in reply and "disk is full" in reply and "parse failed" not in reply
    # an upload: a clear refusal, and no partial file left behind
    upload = os.path.join(os.path.dirname(small_disk), "big.bin")
    with open(upload, "wb") as handle:
        handle.write(b"x" * (2 << 20))
    result = subprocess.run(["curl", "-sS", "--cacert", app.ca, "--cert", alice["cert"],
                             "--key", alice["key"], "-T", upload,
                             app.url + "/cert_redirect/big.bin"],
                            capture_output=True, timeout=60)
    assert b"disk" in result.stdout and b"full" in result.stdout, result.stdout
    assert b"Traceback" not in result.stdout
    assert not any(n.startswith("big.bin") for n in os.listdir(alice["home"]))
    assert job_ids(app, token) == acknowledged  # the refused ones do not exist
    time.sleep(2.5)  # a checkpoint round on the full disk
    assert received(clients) == b""  # not a byte of anybody's records
    os.unlink(filler)  # room again: no restart needed
    job, reply = submit(app, token)
    assert job, reply
    acknowledged.add(job)
    assert job_ids(app, token) == acknowledged

    filler = fill_blocks(small_disk)
    refused_until_full(app, token, acknowledged, small_disk)
    app.kill()
    app.start()  # on the still-full disk
    assert job_ids(app, token) == acknowledged
    os.unlink(filler)
    job, reply = submit(app, token)
    assert job, reply
    acknowledged.add(job)
    app.kill()
    app.start()
    assert job_ids(app, token) == acknowledged


def test_out_of_inodes_refuses_clearly_and_recovers_without_a_restart(appliance_factory,
                                                                      small_disk):
    app, alice = start_on(appliance_factory, small_disk)
    token = alice["token"]
    acknowledged = {submit(app, token)[0]}
    spare = fill_inodes(small_disk)
    clients = raw_clients(app)
    deadline = time.time() + 30
    reply = None
    while time.time() < deadline:
        # The journal needs an inode for its next segment once a checkpoint
        # rotated it (the dropped segment's inode is taken again at once).
        job, reply = submit(app, token)
        if job is None:
            break
        acknowledged.add(job)
        time.sleep(0.2)
        fill_inodes(small_disk)
    assert reply is not None and "not submitted" in reply and "disk is full" in reply, reply
    for _ in range(20):  # the old code wrote the journal into a reused descriptor here
        fill_inodes(small_disk)
        assert submit(app, token)[0] is None
    assert received(clients) == b""
    assert job_ids(app, token) == acknowledged
    app.kill()
    app.start()  # no inode free: starts all the same
    assert job_ids(app, token) == acknowledged
    for name in os.listdir(spare):
        os.unlink(os.path.join(spare, name))
    job, reply = submit(app, token)
    assert job, reply
    acknowledged.add(job)
    assert job_ids(app, token) == acknowledged


def job_status(app, token, job_id):
    conn = https_connection(app)
    try:
        _status, reply = post(conn, "/cgi-bin/jobstatus.py", "output_format=txt&flags=v&job_id="
                              + job_id, token)
    finally:
        conn.close()
    return reply


def test_outputs_that_do_not_fit_requeue_the_job_until_there_is_room(appliance_factory,
                                                                    small_disk):
    app, alice = start_on(appliance_factory, small_disk)
    token = alice["token"]
    conn = https_connection(app)
    try:
        status, reply = post(conn, "/cgi-bin/textarea.py", "output_format=txt&mrsltextarea_0="
                             + urllib.parse.quote("::EXECUTE::\nsleep 3\necho result-line\n"
                                                  "\n::RETRIES::\n5\n"), token)
    finally:
        conn.close()
    job = re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)
    deadline = time.time() + 60
    while "Status: EXECUTING" not in job_status(app, token, job):
        assert time.time() < deadline, job_status(app, token, job)
        time.sleep(0.2)
    filler = fill_blocks(small_disk)
    fill_inodes(small_disk)
    deadline = time.time() + 60
    while True:  # the run ends; its outputs cannot be saved: queued again, with the reason
        reply = job_status(app, token, job)
        if "DISK FULL" in reply:
            break
        assert "Status: FINISHED" not in reply, reply  # never FINISHED without its outputs
        assert time.time() < deadline, reply
        time.sleep(0.3)
        fill_blocks(small_disk)
    os.unlink(filler)
    spare = os.path.join(small_disk, "inodes")
    for name in os.listdir(spare):
        os.unlink(os.path.join(spare, name))
    deadline = time.time() + 90
    while "Status: FINISHED" not in job_status(app, token, job):
        assert time.time() < deadline, job_status(app, token, job)
        time.sleep(0.3)
    with open(os.path.join(alice["home"], "job_output", job, job + ".stdout")) as handle:
        assert handle.read() == "result-line\n"


def test_accounting_keeps_its_figures_while_the_disk_is_full(small_disk):
    """A flush that cannot be written keeps the figures in memory (still shown) and
    writes them with the next flush once there is room: none lost, none twice."""
    from mig.core import jobs as J
    from mig.core.accounting import Accounting
    from mig.store.pickledb import PickleStore
    now = [1_800_000_000.0]
    accounting = Accounting(PickleStore(os.path.join(small_disk, "db")), lambda r: ["alice"],
                            clock=lambda: now[0])
    day = time.strftime("%Y-%m-%d", time.gmtime(now[0]))
    record = {"OWNER": "bob", "EXECUTING_TIMESTAMP": now[0] - 10, "UNIQUE_RESOURCE_NAME": "r.0",
              "SPEC": {"CPUCOUNT": 2, "NODECOUNT": 1, "VGRID": ["Lab"]}}
    accounting("job1", J.EXECUTING, J.FINISHED, record)
    filler = fill_blocks(small_disk)
    spare = fill_inodes(small_disk)
    with pytest.raises(Exception):
        accounting.flush()
    assert accounting.days(day, day)[day]["user"] == {"bob": 20.0}
    os.unlink(filler)
    for name in os.listdir(spare):
        os.unlink(os.path.join(spare, name))
    accounting("job2", J.EXECUTING, J.FINISHED, record)
    accounting.flush()
    fresh = Accounting(PickleStore(os.path.join(small_disk, "db")), lambda r: [])
    assert fresh.days(day, day)[day] == {"user": {"bob": 40.0}, "vgrid": {"Lab": 40.0},
                                         "resource": {"r.0": 40.0}, "owner": {"alice": 40.0}}
