"""Notifications: NOTIFY e-mail of an ended job through a real SMTP server
(OpenSMTPD, started here on a loopback port, delivering into a maildir of the
test), the inbox when no mail server is set up, and messages between users
and to a VGrid's people."""

import email
import email.policy
import os
import re


from conftest import exit_code, post_backend, set_config, wait_for


def received(maildir):
    """The messages delivered so far, parsed."""
    found = []
    for sub in ("new", "cur"):
        folder = maildir / sub
        for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
            with open(folder / name, "rb") as handle:
                found.append(email.message_from_binary_file(handle, policy=email.policy.default))
    return found


def submitted(reply):
    assert exit_code(reply) == 0, reply
    return re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]


def status(app, user, job_id):
    return re.search(r"^Status: (\w+)", post_backend(app, user, "jobstatus",
                                                     [("job_id", job_id)]), re.M).group(1)


def doc_job():
    """The NOTIFY example of docs/notifications.md: the job these tests submit."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "notifications.md")
    with open(path, encoding="utf-8") as handle:
        blocks = re.findall(r"```mrsl\n(.*?)```", handle.read(), re.S)
    assert len(blocks) == 1
    return blocks[0]


JOB = doc_job()


def test_notify_mail_of_a_finished_job_reaches_a_real_smtp_server(appliance_factory,
                                                                   smtp_server):
    port, maildir = smtp_server
    app = appliance_factory()
    alice = app.add_user("alice")
    set_config(app.state, smtp_server="127.0.0.1:%d" % port, smtp_from="grid@example.org",
               scheduler_tick="0.5")
    app.start()
    assert exit_code(post_backend(app, alice, "savesettings",
                                  [("email", "alice.private@example.org")])) == 0
    job_id = submitted(post_backend(app, alice, "textarea", [("mrsltextarea_0", JOB)]))
    wait_for(lambda: status(app, alice, job_id) == "FINISHED", 60, what="the job")
    mails = wait_for(lambda: len(received(maildir)) == 2 and received(maildir), 30,
                     what="two mails")
    assert sorted(m["To"] for m in mails) == ["alice.private@example.org", "alice@example.org"]
    for mail in mails:
        assert mail["From"] == "grid@example.org"
        assert mail["Subject"] == "MiG job %s FINISHED" % job_id
        body = mail.get_content()
        assert "Your job %s ended FINISHED" % job_id in body
        assert "Status: %s/cgi-bin/jobstatus.py?job_id=%s" % (app.url, job_id) in body
        assert "\necho hello 0\n" in body  # the status file: each command's exit code
    # With mail set up, nothing goes to the inbox.
    assert "MiG job" not in post_backend(app, alice, "inbox", [])


def test_without_a_mail_server_the_notice_lands_in_the_inbox(appliance_factory):
    app = appliance_factory()
    alice = app.add_user("alice")
    set_config(app.state, scheduler_tick="0.5")
    app.start()
    job_id = submitted(post_backend(app, alice, "textarea",
                                    [("mrsltextarea_0", JOB.replace("echo hello", "exit 3"))]))
    wait_for(lambda: status(app, alice, job_id) in ("FINISHED", "FAILED"), 60, what="the job")
    reply = post_backend(app, alice, "inbox", [])
    assert reply.count("MiG job %s FINISHED" % job_id) == 2, reply  # one per NOTIFY line
    assert "exit 3 3" in reply


def test_messages_to_a_user_and_to_a_vgrid(appliance_factory):
    app = appliance_factory()
    u = {n: app.add_user(n) for n in ("alice", "bob", "carol", "dave")}
    app.start()
    post_backend(app, u["alice"], "createvgrid", [("vgrid_name", "Lab")])
    post_backend(app, u["alice"], "addvgridmember", [("vgrid_name", "Lab"), ("cert_id", "bob")])
    reply = post_backend(app, u["dave"], "sendmsg", [("to", "carol"), ("subject", "hi"),
                                                    ("text", "line one\nline two")])
    assert exit_code(reply) == 0 and "Sent to carol." in reply
    reply = post_backend(app, u["carol"], "inbox", [])
    assert re.search(r"\sdave\s+hi\s+line one\nline two\s+new\s", reply), reply
    # Only the VGrid's people write to all of them; the sender is left out.
    assert exit_code(post_backend(app, u["dave"], "sendmsg", [
        ("vgrid_name", "Lab"), ("subject", "x"), ("text", "y")])) == 104
    reply = post_backend(app, u["bob"], "sendmsg", [("vgrid_name", "Lab"),
                                                   ("subject", "meeting"), ("text", "at 10")])
    assert "Sent to alice." in reply
    assert "[Lab] meeting" in post_backend(app, u["alice"], "inbox", [])
    assert "[Lab] meeting" not in post_backend(app, u["carol"], "inbox", [])


def test_one_user_sends_at_most_the_hourly_limit(appliance_factory):
    from mig.core.inbox import SEND_LIMIT
    app = appliance_factory()
    u = {n: app.add_user(n) for n in ("alice", "bob")}
    app.start()
    for number in range(SEND_LIMIT):
        reply = post_backend(app, u["alice"], "sendmsg", [("to", "bob"), ("subject", "n"),
                                                         ("text", str(number))])
        assert exit_code(reply) == 0, reply
    reply = post_backend(app, u["alice"], "sendmsg", [("to", "bob"), ("subject", "n"),
                                                     ("text", "one too many")])
    assert exit_code(reply) == 100 and "at most %d may be sent an hour" % SEND_LIMIT in reply
    assert exit_code(post_backend(app, u["bob"], "sendmsg", [("to", "alice"), ("subject", "s"),
                                                            ("text", "t")])) == 0
