"""Pickled records that a damaged disk cannot turn into a crash.

Records are plain data (dicts, lists, tuples, strings, numbers, ranges and
sets), so the unpickler refuses every class but those few builtin ones.  Each stored
record carries a CRC-32 that is checked before a byte is unpickled, because
a flipped byte in a pickle can ask for a gigantic allocation (a memo index
of billions) or raise almost any exception.  What still fails to load is
reported as ``DamagedRecord`` and never anything else.
"""

import io
import pickle
import zlib

MAX_RECORD = 64 << 20  # bytes; a record is a few KB, a length beyond this is damage


class DamagedRecord(ValueError):
    """A stored record whose bytes are not a whole, intact record."""


_PLAIN = {("builtins", n) for n in ("range", "set", "frozenset", "complex", "bytearray",
                                     "slice")}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _PLAIN:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("records hold plain data, not %s.%s" % (module, name))


def encode(value):
    """(bytes, crc32) of a record."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return data, zlib.crc32(data)


def decode(data, crc=None):
    """The record in data (checked against crc when given), or DamagedRecord."""
    if len(data) > MAX_RECORD:
        raise DamagedRecord("record of %d bytes is larger than any record" % len(data))
    if crc is not None and zlib.crc32(data) != crc:
        raise DamagedRecord("checksum mismatch")
    return load_plain(data)


def load_plain(data):
    """Unpickle plain data; any failure (of any kind) is DamagedRecord."""
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except MemoryError:
        raise DamagedRecord("record asks for more memory than it can hold") from None
    except Exception as exc:  # a damaged pickle can raise nearly anything
        raise DamagedRecord("%s: %s" % (type(exc).__name__, exc)) from None
