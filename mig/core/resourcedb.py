"""Registered resources: their checked configuration, text and owners.

Names follow MiG: ``<HOSTURL>.<HOSTIDENTIFIER>``, the identifier picked as
the next free number for the host when the configuration says 0 or AUTO.
"""

import time

from mig.core.resconf import parse_resource
from mig.errors import ClientError, ConflictError


class ResourceDB:
    def __init__(self, store):
        self.store = store

    def names(self):
        return sorted(name for name, _path in self.store.records("resources"))

    def get(self, name):
        record = self.store.read("resources/%s" % name, None) if "/" not in name else None
        if record is None:
            raise ClientError("no such resource: %s" % name)
        return record

    def add(self, text, owner):
        """Check and store a configuration; returns the new record."""
        conf = parse_resource(text)
        with self.store.lock("resources"):
            taken = [n for n in self.names() if n.rsplit(".", 1)[0] == conf["HOSTURL"]]
            number = conf["HOSTIDENTIFIER"] or 1 + max(
                [int(n.rsplit(".", 1)[1]) for n in taken] or [-1])
            name = "%s.%d" % (conf["HOSTURL"], number)
            if name in taken:
                raise ConflictError("resource %s exists already" % name)
            conf["HOSTIDENTIFIER"] = number
            record = {"NAME": name, "CONF": conf, "TEXT": text, "OWNERS": [owner],
                      "CREATED": time.time()}
            self.store.write("resources/%s" % name, record)
        return record
