"""A VGrid's shared folder inside its members' homes, over HTTPS: members
upload, list, read and run jobs on its files; outsiders do not see it; the
write setting is enforced; the folder itself cannot be removed; a link
planted in it leads nowhere; share links work inside it."""

import os
import re

import pytest

from conftest import exit_code, grid_with_vgrid, post_backend, wait_for


@pytest.fixture
def grid(appliance_factory):
    return grid_with_vgrid(appliance_factory, ("alice", "bob", "carol", "dave"),
                           {"bob": "Lab", "carol": "Lab/Sub"}, scheduler_tick="0.5")


def put(app, user, rel, data):
    """MiG's PUT upload to /cert_redirect/REL: the reply's first line is 0 or 1."""
    return app.curl(user, "-X", "PUT", "--data-binary", data, "URL/cert_redirect/" + rel)


def cat(app, user, rel):
    return post_backend(app, user, "cat", [("path", rel)])


def names(app, user, rel="."):
    reply = post_backend(app, user, "ls", [("path", rel)])
    assert exit_code(reply) == 0, reply
    return reply.split("___\n\n", 1)[1].split()


def test_members_share_the_folder_outsiders_do_not_see_it(grid):
    app, u = grid
    assert put(app, u["bob"], "Lab/data.txt", "measurements\n").startswith("0")
    assert "Lab" in names(app, u["bob"]) and "Lab" in names(app, u["alice"])
    assert names(app, u["alice"], "Lab") == ["Sub", "data.txt"]
    assert cat(app, u["alice"], "Lab/data.txt").endswith("measurements\n")
    # carol is only in Lab/Sub: she sees that folder (under Lab/), not Lab's files.
    assert put(app, u["carol"], "Lab/Sub/notes.txt", "sub notes\n").startswith("0")
    assert names(app, u["carol"], "Lab") == ["Sub"]
    assert cat(app, u["bob"], "Lab/Sub/notes.txt").endswith("sub notes\n")
    reply = cat(app, u["carol"], "Lab/data.txt")
    assert exit_code(reply) != 0 and "measurements" not in reply
    # dave is in no VGrid: Lab/ in his home is his own (there is none).
    reply = cat(app, u["dave"], "Lab/data.txt")
    assert "No such file" in reply and "measurements" not in reply
    assert "Lab" not in names(app, u["dave"])


def test_the_shared_folder_itself_stays_and_links_lead_nowhere(grid):
    app, u = grid
    for backend, fields in (("rm", [("path", "Lab"), ("flags", "r")]),
                            ("rmdir", [("path", "Lab/Sub")]),
                            ("mv", [("src", "Lab"), ("dst", "mine")])):
        reply = post_backend(app, u["bob"], backend, fields)
        assert exit_code(reply) != 0 and "shared folder of a VGrid" in reply, reply
    assert names(app, u["alice"], "Lab") == ["Sub"]
    # A link in the shared folder (made behind the appliance's back) is not followed.
    folder = os.path.join(app.state, "vgrid_files", "Lab")
    os.symlink("/etc", os.path.join(folder, "etc"))
    os.symlink(os.path.join(app.state, "users"), os.path.join(folder, "users"))
    for rel in ("Lab/etc/passwd", "Lab/users/alice/user.key"):
        reply = cat(app, u["bob"], rel)
        assert exit_code(reply) != 0 and "outside your home" in reply, reply


def test_the_write_setting_is_enforced(grid):
    app, u = grid
    assert put(app, u["bob"], "Lab/before.txt", "x\n").startswith("0")
    assert exit_code(post_backend(app, u["alice"], "vgridsettings", [
        ("vgrid_name", "Lab"), ("write_shared_files", "OWNERS")])) == 0
    reply = put(app, u["bob"], "Lab/after.txt", "y\n")
    assert reply.startswith("1") and "read-only for you" in reply, reply
    for backend, fields in (("rm", [("path", "Lab/before.txt")]),
                            ("mkdir", [("path", "Lab/new")]),
                            ("touch", [("path", "Lab/t")]),
                            ("cp", [("src", "Lab/before.txt"), ("dst", "Lab/copy.txt")])):
        reply = post_backend(app, u["bob"], backend, fields)
        assert exit_code(reply) == 104 and "read-only for you" in reply, (backend, reply)
    # Reading and copying out stay open; the owner still writes.
    assert exit_code(post_backend(app, u["bob"], "cp", [("src", "Lab/before.txt"),
                                                        ("dst", "mine.txt")])) == 0
    assert put(app, u["alice"], "Lab/owner.txt", "z\n").startswith("0")
    assert names(app, u["bob"], "Lab") == ["Sub", "before.txt", "owner.txt"]


def test_a_job_reads_a_shared_file_and_a_share_link_serves_it(grid):
    app, u = grid
    assert put(app, u["alice"], "Lab/input.txt", "21\n").startswith("0")
    job = ("::EXECUTE::\necho $(( $(cat input.txt) * 2 ))\n\n"
           "::INPUTFILES::\nLab/input.txt input.txt\n")
    reply = post_backend(app, u["bob"], "textarea", [("mrsltextarea_0", job)])
    assert exit_code(reply) == 0, reply
    job_id = re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]

    def status():
        return re.search(r"^Status: (\w+)", post_backend(
            app, u["bob"], "jobstatus", [("job_id", job_id)]), re.M).group(1)
    wait_for(lambda: status() == "FINISHED", 60, what="the job")
    assert app.curl(u["bob"], "URL/cert_redirect/job_output/%s/%s.stdout"
                    % (job_id, job_id)) == "42\n"
    reply = post_backend(app, u["bob"], "sharelink", [("action", "create"),
                                                      ("path", "Lab/input.txt"),
                                                      ("read_access", "true")])
    assert exit_code(reply) == 0, reply
    share_url = re.search(r"(/share_redirect/\S+)", reply).group(1)
    import subprocess
    got = subprocess.run(["curl", "-sS", "--cacert", app.ca, app.url + share_url],
                         capture_output=True, text=True, timeout=60).stdout
    assert got == "21\n"


def test_a_job_cannot_write_its_outputs_into_a_read_only_shared_folder(grid):
    app, u = grid
    assert exit_code(post_backend(app, u["alice"], "vgridsettings", [
        ("vgrid_name", "Lab"), ("write_shared_files", "OWNERS")])) == 0
    job = ("::EXECUTE::\necho forged > out.txt\necho kept > mine.txt\n\n"
           "::OUTPUTFILES::\nout.txt Lab/out.txt\nmine.txt mine.txt\n")
    reply = post_backend(app, u["bob"], "textarea", [("mrsltextarea_0", job)])
    assert exit_code(reply) == 0, reply
    job_id = re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]
    wait_for(lambda: re.search(r"^Status: FINISHED", post_backend(
        app, u["bob"], "jobstatus", [("job_id", job_id)]), re.M), 60, what="the job")
    assert cat(app, u["bob"], "mine.txt").endswith("kept\n")
    assert not os.path.exists(os.path.join(app.state, "vgrid_files", "Lab", "out.txt"))
    io_status = app.curl(u["bob"], "URL/cert_redirect/job_output/%s/%s.io-status"
                         % (job_id, job_id))
    assert "output_files_missing 1\n" in io_status, io_status
