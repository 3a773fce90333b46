"""Moving a job's files: inputs from the owner's home into a job folder, and
outputs from the job folder back into the home, every path confined.

Shared by the executors: the local one works on its job folder directly,
the ssh one on a local copy it ships to the resource and back.
"""

import contextlib
import logging
import os
import shutil
import stat

from mig.core.beneath import copy_confined, destination, is_own_regular_file, parent_beneath
from mig.core.home import DIR_FLAGS
from mig.core.jobspec import split_file_line
from mig.core.verify import verify_results
from mig.errors import MigError, NotCopied
from mig.execute.base import Outcome
from mig.execute.jobscript import parse_status
from mig.execute.urlfetch import UrlFetcher
from mig.store import fileio
from mig.store.atomic import replacing, write_atomic

log = logging.getLogger("mig.staging")

LOST = "%s: missing, not a regular file, or behind a link"


def write_small(path, text, mode=0o600, dir_fd=None):
    """Write a small file whole (the atomic writer, not synced: the job's
    files are synced together by make_durable)."""
    write_atomic(path, text.encode("utf-8"), durable=False, mode=mode, dir_fd=dir_fd)


def read_small(path, dir_fd=None):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks).decode("utf-8", "replace")
            chunks.append(chunk)
    finally:
        os.close(fd)


def stage_inputs(home, spec, folder, max_bytes=None, fetcher=None):
    """Copy the inputs and executables into a job folder we just made; URLs
    go through fetcher (default: a guarded fetch with max_bytes per file)."""
    fetcher = fetcher or UrlFetcher(max_bytes=max_bytes)
    failures = {"INPUTFILES": 0, "EXECUTABLES": 0}
    for key in ("INPUTFILES", "EXECUTABLES"):
        for line in spec[key]:
            src, dst = split_file_line(line)
            if "://" in src and dst == src:
                dst = src.split("://", 1)[1].lstrip("/")
            target = os.path.realpath(os.path.join(folder, dst))
            if not target.startswith(os.path.realpath(folder) + os.sep):
                failures[key] += 1
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                if "://" in src:
                    fetcher.fetch(src, target)
                else:
                    source = home.resolve(src, must_exist=True)
                    shutil.copyfile(source, target)
                if key == "EXECUTABLES":
                    os.chmod(target, 0o755)
            except Exception as exc:  # counted in io-status, as MiG does
                log.info("staging %s failed: %s", src, exc)
                failures[key] += 1
    return [("get_input_files", failures["INPUTFILES"]),
            ("get_executables", failures["EXECUTABLES"])]


def collect_outputs(home, job_id, spec, folder, io_status, owner=None, keep_outputs=True,
                    files=fileio.OS):
    """Outputs into the home.  With owner (the job's uid, local jobs), every
    file is copied, and only files that are the job's own with one name: a
    job's file never enters a home itself (its inode stays the job's).
    Without it (a local copy of a remote job's files, ours), files move.
    keep_outputs False (the owner's quota is full): only the status is kept.
    Every output and its folder entry are synced before this returns, so a
    FINISHED recorded afterwards never outlives its outputs in a power cut."""
    missing, kept = 0, []
    for line in spec["OUTPUTFILES"]:
        src, dst = split_file_line(line)
        if "://" in dst or not keep_outputs:
            missing += 1  # uploads to URLs are not supported by the local resource
            continue
        if (in_place(copy_confined, folder, src, home, dst, owner) if owner is not None
                else in_place(move_confined, folder, src, home, dst)):
            kept.append(dst)
        else:
            missing += 1
    io_status = io_status + [("output_files_missing", missing), ("send_output_files", 0)]
    names = ["%s.%s" % (job_id, suffix) for suffix in ("stdout", "stderr", "status")]
    skipped = [] if keep_outputs else names[:2]  # left empty: over the quota
    out_fd = home.open_job_output(job_id)
    try:
        taken = [name for name in names if name not in skipped]
        left = skipped + (copy_job_files(folder, taken, out_fd, owner) if owner is not None
                          else move_regular_files(folder, taken, out_fd))
        for name in left:
            # Not renamed: another disk (copy it), or not a plain file (leave it).
            if (owner is not None or name in skipped or not in_place(
                    move_confined, folder, name, home, os.path.join("job_output", job_id, name))):
                write_atomic(name, b"", durable=False, mode=0o644, dir_fd=out_fd)
        write_small(job_id + ".io-status", "".join("%s %d\n" % item for item in io_status),
                    0o644, dir_fd=out_fd)
        status_text = read_small(job_id + ".status", dir_fd=out_fd)
        make_durable(home, out_fd, names + [job_id + ".io-status"], kept, files)
    finally:
        os.close(out_fd)
    return Outcome("FINISHED", "", parse_status(status_text), io_status,
                   verify_results(home, job_id, spec))


def make_durable(home, out_fd, names, delivered, files=fileio.OS):
    """Sync the job's output files, their folder, its entry in job_output and
    job_output's in the home, and every OUTPUTFILES destination with its folder."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            _sync_file(files, name, out_fd)
    files.fsync(out_fd)
    for up in ("..", "../.."):  # job_output (its entry JOBID) and the home (job_output's)
        parent = os.open(up, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=out_fd)
        try:
            files.fsync(parent)
        finally:
            os.close(parent)
    folders = set()
    for rel in delivered:
        try:
            path = home.resolve(rel)
            _sync_file(files, path)
        except (OSError, MigError):
            continue  # moved away or replaced meanwhile: not ours to keep
        folders.add(os.path.dirname(path))
    for folder in sorted(folders):
        files.fsync_dir(folder)


def _sync_file(files, path, dir_fd=None):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        files.fsync(fd)
    finally:
        os.close(fd)


def copy_job_files(folder, names, dst_fd, owner):
    """Copy the named files of a job folder into the folder open as dst_fd, as
    new files of ours renamed into place.  Only regular files owned by the
    job's uid with a single name are taken.  Returns the names not copied."""
    left = []
    src_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for name in names:
            try:
                _copy_one(src_fd, name, dst_fd, owner)
                os.unlink(name, dir_fd=src_fd)  # so the emptied folder can be reused
            except OSError:
                left.append(name)
    finally:
        os.close(src_fd)
    return left


def _copy_one(src_fd, name, dst_fd, owner):
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=src_fd)
    try:
        info = os.fstat(source)
        if not is_own_regular_file(info, owner):
            raise OSError("not the job's own regular file")
        # Synced later, all files of the job at once (make_durable).
        with replacing(name, durable=False, mode=0o644, dir_fd=dst_fd) as target:
            left = info.st_size
            while left > 0:
                sent = os.sendfile(target.fileno(), source, None, min(left, 1 << 30))
                if not sent:
                    break
                left -= sent
    finally:
        os.close(source)


def move_confined(src_root, src_rel, dst_home, dst_rel):
    """Like copy_confined, but renames when both are on one file system (cheap).

    The rename goes through the parent folder's descriptor, so it moves
    exactly the checked regular file; anything else falls back to a copy.
    Raises NotCopied with the reason.
    """
    try:
        fd, name = parent_beneath(src_root, src_rel)
    except OSError:
        raise NotCopied(LOST % src_rel) from None
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            raise NotCopied(LOST % src_rel)
        try:
            dst = destination(dst_home, dst_rel)
            os.rename(name, dst, src_dir_fd=fd)
            return
        except (OSError, MigError):
            pass  # another file system, or a problem copy_confined will name
    except OSError:
        raise NotCopied(LOST % src_rel) from None
    finally:
        os.close(fd)
    copy_confined(src_root, src_rel, dst_home, dst_rel)


def in_place(copy, *args):
    """Whether copy (copy_confined or move_confined) put the file in place."""
    try:
        copy(*args)
        return True
    except NotCopied:
        return False


def move_regular_files(src_dir, names, dst_fd):
    """Rename regular files by name from a folder into the folder open as dst_fd
    (no path is re-walked).  Returns the names not moved."""
    left = []
    src_fd = os.open(src_dir, DIR_FLAGS)
    try:
        for name in names:
            try:
                if not stat.S_ISREG(os.stat(name, dir_fd=src_fd, follow_symlinks=False).st_mode):
                    raise OSError("not a regular file")
                os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            except OSError:
                left.append(name)
    finally:
        os.close(src_fd)
    return left
