"""mqueue: MiG's per-user message queues, for jobs and users to pass messages.

Each queue is a folder ``message_queues/<queue>/`` in the caller's home and
each message a file named by its arrival time (nanoseconds), so the oldest
is the one with the smallest number: first in, first out.  Every action
holds an exclusive fcntl lock on ``message_queues/.mqueue.lock``; the
``default`` queue always exists.  Replies are MiG's (``New 'q' queue
created``, ``File: <msgid>`` and the message, ``NO MESSAGES``).
"""

import contextlib
import fcntl
import os
import re
import time

from mig.backends import Field, backend
from mig.core.atomic import write_atomic
from mig.errors import ClientError, FileNotFound, InvalidArgument, MigError
from mig.render import objects as O

QUEUE_DIR = "message_queues"
DEFAULT_QUEUE = "default"
LOCK_NAME = ".mqueue.lock"
EMPTY = "NO MESSAGES"
MAX_MESSAGE_BYTES = 1024 * 1024
ACTIONS = ("create", "remove", "send", "receive", "show", "listqueues", "listmessages",
           "interactive")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,127}$")
_MESSAGE_ID = re.compile(r"^[0-9]{1,30}$")


@contextlib.contextmanager
def _locked(home):
    """The queue base folder (created with the default queue), under the lock."""
    base = home.resolve(QUEUE_DIR)
    if os.path.lexists(base) and not os.path.isdir(base):
        raise ClientError("%s in your home is not a folder: move it away to use message "
                          "queues" % QUEUE_DIR)
    os.makedirs(os.path.join(base, DEFAULT_QUEUE), exist_ok=True)
    home.resolve(os.path.join(QUEUE_DIR, DEFAULT_QUEUE))  # no link was followed
    fd = os.open(os.path.join(base, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield base
    finally:
        os.close(fd)  # releases the lock


def _queue(home, name, must_exist=True):
    if not _QUEUE_NAME.match(name):
        raise InvalidArgument("Invalid queue name: '%s' (letters, digits, '.', '_' and '-'; "
                              "not starting with '.')" % name[:80])
    path = home.resolve(os.path.join(QUEUE_DIR, name))
    if os.path.islink(path):
        raise ClientError("'%s' is a link, not a queue" % name)
    if must_exist and not os.path.isdir(path):
        raise FileNotFound("No such queue: '%s' (create it first)" % name)
    return path


def _messages(folder):
    """Message ids of a queue folder, oldest first."""
    return sorted((n for n in os.listdir(folder) if _MESSAGE_ID.match(n)), key=int)


def _read(folder, msg_id):
    with open(os.path.join(folder, msg_id), "rb") as handle:
        return handle.read().decode("utf-8", "replace")


def _pick(folder, msg_id):
    """(id, text) of the wanted message, the oldest without msg_id; (None, None) if empty."""
    if msg_id:
        if not _MESSAGE_ID.match(msg_id) or not os.path.isfile(os.path.join(folder, msg_id)):
            raise FileNotFound("No such message: '%s'" % msg_id[:80])
        return msg_id, _read(folder, msg_id)
    ids = _messages(folder)
    return (ids[0], _read(folder, ids[0])) if ids else (None, None)


def _send(folder, msg):
    data = msg.encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ClientError("the message is %d bytes; at most %d are allowed"
                          % (len(data), MAX_MESSAGE_BYTES))
    number = time.time_ns()
    while os.path.lexists(os.path.join(folder, str(number))):
        number += 1
    write_atomic(os.path.join(folder, str(number)), data)


def _act(home, base, action, queue, msg, msg_id):
    """The output objects of one action (the lock is held)."""
    if action == "listqueues":
        return [O.text(n) for n in sorted(os.listdir(base))
                if _QUEUE_NAME.match(n) and os.path.isdir(os.path.join(base, n))]
    if action == "interactive":
        names = [n for n in sorted(os.listdir(base))
                 if _QUEUE_NAME.match(n) and os.path.isdir(os.path.join(base, n))]
        return [O.table("mqueues", ("Queue", "Messages"),
                        [(n, len(_messages(os.path.join(base, n)))) for n in names])]
    if action == "create":
        folder = _queue(home, queue, must_exist=False)
        if os.path.lexists(folder):
            raise ClientError("Could not create '%s' queue: it already exists" % queue)
        os.mkdir(folder)
        return [O.text("New '%s' queue created" % queue)]
    folder = _queue(home, queue)
    if action == "remove":
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
        return [O.text("Existing '%s' queue removed" % queue)]
    if action == "send":
        _send(folder, msg)
        return [O.text("Message sent to '%s' queue" % queue)]
    if action == "listmessages":
        return [O.text(n) for n in _messages(folder)]
    found, text = _pick(folder, msg_id)
    if found is None:
        return [O.file_output(EMPTY)]
    if action == "receive":
        os.unlink(os.path.join(folder, found))
    return [O.text("File: %s" % found), O.file_output(text, found)]


@backend("mqueue", title="Message queue", header="Message queue", state_changing=True,
         fields={"queue": Field("word", default=(DEFAULT_QUEUE,), help="the queue name"),
                 "action": Field("word", required=True, help=", ".join(ACTIONS)),
                 "msg": Field("text", help="the message to send"),
                 "msg_id": Field("word", help="show: this message instead of the oldest"),
                 "iosessionid": Field("word", help="not supported: use your certificate")})
def mqueue(ctx, args):
    """Message queues: create, remove, send, receive (oldest first, removed), show,
    listqueues, listmessages."""
    action = args["action"].lower()
    header = O.header("Message queue %s" % action)
    if action not in ACTIONS:
        return O.Result([header, O.error('Invalid action "%s" (supported: %s)'
                                         % (action, ", ".join(ACTIONS)))],
                        ClientError.exit_code)
    code = 0
    try:
        if args["iosessionid"]:
            raise ClientError("job session access (iosessionid) is not supported here: call "
                              "mqueue with your own certificate")
        with _locked(ctx.home) as base:
            objects = _act(ctx.home, base, action, args["queue"], args["msg"], args["msg_id"])
    except MigError as exc:
        objects, code = [O.error(exc.message)], exc.exit_code
    except OSError as exc:
        objects = [O.error("Could not %s on '%s' queue: %s"
                           % (action, args["queue"], exc.strerror or exc))]
        code = ClientError.exit_code
    return O.Result([header] + objects, code)
