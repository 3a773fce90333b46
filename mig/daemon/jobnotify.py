"""NOTIFY: tells the owner of a job when it ends FINISHED, FAILED or
EXPIRED (MiG sends nothing for CANCELED: the user did that).

Each NOTIFY line names where to: ``email: you@example.org``, a bare
address, or ``SETTINGS`` (``email: SETTINGS``), the address saved on the
Settings page.  Mail goes through the Mailer; with no mail server set up,
for a protocol other than e-mail, or for SETTINGS without an address, the
message goes to the owner's in-portal inbox.
"""

import os
import time

from mig.core import jobs as J

NOTIFIED = (J.FINISHED, J.FAILED, J.EXPIRED)
STATUS_BYTES = 8192


def targets(lines):
    """NOTIFY lines -> [(protocol, address)]; protocol "email" unless named."""
    found = []
    for line in lines:
        protocol, sep, address = line.partition(":")
        if not sep or "@" in protocol:
            protocol, address = "email", line
        protocol, address = protocol.strip().lower(), address.strip()
        if address and (protocol, address) not in found:
            found.append((protocol, address))
    return found


class JobNotifier:
    """A job store listener.  mailer: the Mailer; inbox: the Inbox; users: the
    UserDB (saved addresses, homes); base_url(): the portal's address."""

    def __init__(self, mailer, inbox, users, base_url):
        self.mailer, self.inbox, self.users, self.base_url = mailer, inbox, users, base_url

    def __call__(self, job_id, old, new, record):
        if new not in NOTIFIED or old == new or not record:
            return
        lines = (record.get("SPEC") or {}).get("NOTIFY") or []
        if not lines:
            return
        owner = record["OWNER"]
        subject, text = self.message(job_id, new, record)
        for protocol, address in targets(lines):
            if address.upper() == "SETTINGS":
                address = self.users.settings(owner).get("email", "") if protocol == "email" \
                    else ""
            if protocol == "email" and address:
                self.mailer.send(address, subject, text, user=owner)
            else:
                self.inbox.deliver(owner, subject, text)

    def message(self, job_id, state, record):
        name = (record.get("SPEC") or {}).get("JOBNAME") or ""
        reason = record.get("%s_MESSAGE" % state, "")
        url = self.base_url()
        lines = ["Your job %s%s ended %s at %s UTC%s." % (
            job_id, " (%s)" % name if name else "", state,
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), ": " + reason if reason else ""),
            "",
            "Status: %s/cgi-bin/jobstatus.py?job_id=%s" % (url, job_id),
            "Output: %s/cert_redirect/job_output/%s/%s.stdout" % (url, job_id, job_id),
            "Errors: %s/cert_redirect/job_output/%s/%s.stderr" % (url, job_id, job_id)]
        status = self._status_file(record["OWNER"], job_id)
        if status:
            lines += ["", "The exit code of each command:", status.rstrip("\n")]
        return "MiG job %s %s" % (job_id, state), "\n".join(lines) + "\n"

    def _status_file(self, owner, job_id):
        path = os.path.join(self.users.home(owner), "job_output", job_id, job_id + ".status")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return ""
        try:
            return os.read(fd, STATUS_BYTES).decode("utf-8", "replace")
        except OSError:
            return ""
        finally:
            os.close(fd)
