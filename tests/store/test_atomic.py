"""mig.store.atomic: the one writer that replaces files, on real files."""

import os
import stat

import pytest

from mig.store.atomic import write_atomic


def leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".tmp-")]


def test_replaces_whole_with_mode_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)
    try:
        write_atomic(str(target), [b"new ", b"content"], mode=0o644)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644  # not narrowed by the umask
    assert leftovers(tmp_path) == []


def test_a_buffer_is_written_whole_not_byte_by_byte(tmp_path):
    """A spooled upload arrives as an mmap: one buffer, not an iterable of
    single bytes (48 MB byte by byte took over a minute)."""
    import mmap
    source = tmp_path / "spooled"
    source.write_bytes(os.urandom(1024 * 1024))
    calls = []
    real_write = os.write

    def counting_write(fd, data):
        calls.append(len(data))
        return real_write(fd, data)
    with open(source, "rb") as handle, mmap.mmap(handle.fileno(), 0,
                                                 access=mmap.ACCESS_READ) as spooled:
        os.write = counting_write
        try:
            write_atomic(str(tmp_path / "out"), spooled, durable=False)
        finally:
            os.write = real_write
    assert (tmp_path / "out").read_bytes() == source.read_bytes()
    assert len(calls) <= 4, len(calls)


def test_a_planted_link_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "home" / "script.sh"
    target.parent.mkdir()
    os.symlink(victim, target)
    write_atomic(str(target), b"#!/bin/sh\n", durable=False)
    assert victim.read_bytes() == b"precious"
    assert not os.path.islink(target) and target.read_bytes() == b"#!/bin/sh\n"


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")

    def chunks():
        yield b"half of the new"
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError):
        write_atomic(str(target), chunks())
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    with pytest.raises(OSError):  # a folder in the way: refused, nothing left
        write_atomic(str(tmp_path), b"x")
    assert leftovers(tmp_path.parent) == []


def test_a_full_disk_leaves_the_old_file(tmp_path):
    """On a real full file system (a 1 MB tmpfs when root can mount one)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (run the tests as root)")
    import subprocess
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        target = mount / "f.bin"
        target.write_bytes(b"old")
        with pytest.raises(OSError) as info:
            write_atomic(str(target), b"x" * (2 * 1024 * 1024))
        assert info.value.errno == 28
        assert target.read_bytes() == b"old" and leftovers(mount) == []
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_without_replace_an_existing_name_is_kept(tmp_path):
    """A drop box only adds: the name that exists keeps its content."""
    target = tmp_path / "dropped.txt"
    write_atomic(str(target), b"first", replace=False)
    with pytest.raises(FileExistsError):
        write_atomic(str(target), b"second", replace=False)
    assert target.read_bytes() == b"first" and leftovers(tmp_path) == []


def test_a_writer_that_fails_inside_replacing_leaves_the_old_file(tmp_path):
    """An archive being packed fails half way: the old file stays, whole."""
    from mig.store.atomic import replacing
    target = tmp_path / "pack.zip"
    target.write_bytes(b"old archive")
    with pytest.raises(ValueError):
        with replacing(str(target), mode=0o644) as out:
            out.write(b"half of a new archive")
            raise ValueError("a member vanished")
    assert target.read_bytes() == b"old archive" and leftovers(tmp_path) == []
    with replacing(str(target), mode=0o644) as out:
        out.write(b"new archive")
    assert target.read_bytes() == b"new archive"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
