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
