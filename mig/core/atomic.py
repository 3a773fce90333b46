"""Whole-or-nothing file replacement for the layers that may not reach the
store (backends): the store's one writer, mig.store.atomic, offered here."""

from mig.store.atomic import fsync_dir, replacing, write_atomic

__all__ = ["fsync_dir", "replacing", "write_atomic"]
