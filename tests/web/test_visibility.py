"""Who sees what (setvisibility): a job, a runtime environment and a resource
are private, visible to a VGrid or public, as their owners choose; every
backend that shows them asks the one rule in core/visibility.py."""

import re

from conftest import (exit_code, grid_with_vgrid, post_backend, register_resource,
                      resource_conf, table_rows)


def call(app, user, name, *fields):
    return post_backend(app, user, name, list(fields))


def share(app, user, kind, obj, level):
    return exit_code(call(app, user, "setvisibility", ("kind", kind), ("object_id", obj),
                          ("visibility", level)))


def test_jobs_runtime_environments_and_resources(appliance_factory):
    app, u = grid_with_vgrid(appliance_factory, ("alice", "bob", "dave"), {"bob": "Lab"},
                             resource_keepalive="0")
    alice, bob, dave = u["alice"], u["bob"], u["dave"]
    reply = call(app, bob, "textarea", ("mrsltextarea_0", "::EXECUTE::\ntrue\n\n::JOBNAME::\n"
                                        "bobs-job\n\n::ARCHITECTURE::\nSPARC\n"))
    job_id = re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]

    def sees_job(user):
        reply = call(app, user, "jobstatus", ("job_id", job_id))
        return exit_code(reply) == 0 and "bobs-job" in reply
    assert sees_job(bob) and not sees_job(alice) and not sees_job(dave)
    assert share(app, alice, "job", job_id, "public") == 104  # not hers
    assert share(app, bob, "job", job_id, "vgrid:Other") == 104  # no VGrid of his
    assert share(app, bob, "job", job_id, "vgrid:Lab") == 0
    assert sees_job(alice) and not sees_job(dave)
    assert share(app, bob, "job", job_id, "public") == 0
    assert sees_job(dave)
    assert "Who sees it: every user." in call(app, bob, "jobview", ("job_id", job_id))

    # a runtime environment alice keeps to herself, then shares with Lab
    assert exit_code(call(app, alice, "createre", ("re_name", "SECRETRE"))) == 0
    assert share(app, alice, "runtimeenv", "SECRETRE", "private") == 0
    job = "::EXECUTE::\ntrue\n\n::RUNTIMEENVIRONMENT::\nSECRETRE\n"
    for user, sees in ((alice, True), (bob, False), (dave, False)):
        assert ("SECRETRE" in call(app, user, "redb")) == sees
        assert (exit_code(call(app, user, "showre", ("re_name", "SECRETRE"))) == 0) == sees
        reply = call(app, user, "textarea", ("mrsltextarea_0", job))
        assert (exit_code(reply) == 0) == sees, reply
    assert share(app, alice, "runtimeenv", "SECRETRE", "vgrid:Lab") == 0
    assert exit_code(call(app, bob, "showre", ("re_name", "SECRETRE"))) == 0
    assert exit_code(call(app, dave, "showre", ("re_name", "SECRETRE"))) != 0

    # a resource of alice's that only she sees
    register_resource(app, resource_conf("127.0.0.1", ["name=exe0"], port=9), "alice")

    def sees_resource(user):
        rows, _objects = table_rows(app, user, "resources", "resources")
        return any(r[0] == "127.0.0.1.0" for r in rows)
    app.curl(alice, "URL/api/resman")  # the running grid takes the new record
    assert sees_resource(alice) and sees_resource(bob)
    assert share(app, bob, "resource", "127.0.0.1.0", "private") == 104
    assert share(app, alice, "resource", "127.0.0.1.0", "private") == 0
    assert sees_resource(alice) and not sees_resource(bob)
    assert "127.0.0.1.0" not in app.curl(bob, "URL/api/monitor")


def test_a_home_folder_opened_to_a_vgrid_then_to_everyone(appliance_factory):
    app, u = grid_with_vgrid(appliance_factory, ("alice", "bob", "dave"), {"bob": "Lab"},
                             scheduler_tick="0.5")
    alice, bob, dave = u["alice"], u["bob"], u["dave"]
    assert exit_code(call(app, bob, "mkdir", ("path", "results/2026"), ("flags", "p"))) == 0
    for rel, data in (("results/2026/data.txt", "21\n"), ("private.txt", "secret\n")):
        assert app.curl(bob, "-X", "PUT", "--data-binary", data,
                        "URL/cert_redirect/" + rel).startswith("0")
    import os
    os.symlink("../../private.txt", os.path.join(app.state, "home", "bob", "results", "2026",
                                                 "leak.txt"))
    seen = "shared_with_me/bob/results/2026/data.txt"

    def reads(user, rel=seen):
        reply = call(app, user, "cat", ("path", rel))
        return exit_code(reply) == 0 and reply.endswith("\n21\n")
    assert not reads(alice) and not reads(dave)
    for bad, why in ((".", "not a folder of the home"), ("nothing", "No such file"),
                     ("private.txt", "not a folder of the home"),
                     ("../alice", "No such file")):
        reply = call(app, bob, "setvisibility", ("kind", "folder"), ("object_id", bad),
                     ("visibility", "public"))
        assert exit_code(reply) != 0 and why in reply, (bad, reply)
    assert share(app, bob, "folder", "results/2026", "vgrid:Lab") == 0
    assert reads(alice) and not reads(dave)
    assert reads(bob, "results/2026/data.txt")
    # Read only for alice; a link in it leads nowhere; bob's other files stay his.
    reply = app.curl(alice, "-X", "PUT", "--data-binary", "forged\n", "URL/cert_redirect/" + seen)
    assert reply.startswith("1") and "read-only for you" in reply, reply
    for backend, fields in (("rm", [("path", seen)]), ("mkdir", [("path", seen + ".d")]),
                            ("mv", [("src", seen), ("dst", "mine.txt")])):
        reply = call(app, alice, backend, *fields)
        assert exit_code(reply) != 0, (backend, reply)
    reply = call(app, alice, "cat", ("path", "shared_with_me/bob/results/2026/leak.txt"))
    assert exit_code(reply) != 0 and "secret" not in reply, reply
    assert exit_code(call(app, alice, "cat", ("path", "shared_with_me/bob/private.txt"))) != 0
    # alice's jobs may read it.
    reply = call(app, alice, "textarea", ("mrsltextarea_0", (
        "::EXECUTE::\necho $(( $(cat in.txt) * 2 ))\n\n::INPUTFILES::\n%s in.txt\n" % seen)))
    job_id = re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]
    from conftest import wait_for
    wait_for(lambda: re.search(r"^Status: FINISHED", call(app, alice, "jobstatus",
                                                          ("job_id", job_id)), re.M), 60,
             what="alice's job")
    assert app.curl(alice, "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id)) \
        == "42\n"
    # The page lists it for both; everyone, then nobody once it is renamed.
    assert [row[:2] for row in table_rows(app, bob, "sharedfolders", "myopenfolders")[0]] \
        == [["results/2026", "the VGrid Lab"]]
    assert [row[:2] for row in table_rows(app, alice, "sharedfolders", "openedtome")[0]] \
        == [["bob", "results/2026"]]
    assert share(app, bob, "folder", "results/2026", "public") == 0
    assert reads(dave)
    assert exit_code(call(app, bob, "mv", ("src", "results/2026"), ("dst", "results/old"))) == 0
    assert not reads(alice) and not reads(dave)
    assert share(app, bob, "folder", "results/2026", "private") == 0
    assert table_rows(app, bob, "sharedfolders", "myopenfolders")[0] == []
