"""Moving a job's files: inputs from the owner's home into a job folder, and
outputs from the job folder back into the home, every path confined.

Shared by the executors: the local one works on its job folder directly,
the ssh one on a local copy it ships to the resource and back.
"""

import os
import shutil
import urllib.request

from mig.core.files import move_confined, move_regular_files
from mig.core.jobspec import split_file_line
from mig.core.verify import verify_results
from mig.execute.base import Outcome
from mig.execute.jobscript import parse_status

URL_TIMEOUT = 60


def write_small(path, text, mode=0o600, dir_fd=None):
    """Write a small file with plain system calls (this runs several times per job)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode, dir_fd=dir_fd)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


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


def stage_inputs(home, spec, folder):
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
                    fetch_url(src, target)
                else:
                    source = home.resolve(src, must_exist=True)
                    shutil.copyfile(source, target)
                if key == "EXECUTABLES":
                    os.chmod(target, 0o755)
            except Exception:  # counted in io-status, as MiG does
                failures[key] += 1
    return [("get_input_files", failures["INPUTFILES"]),
            ("get_executables", failures["EXECUTABLES"])]

def fetch_url(url, target):
    if not url.lower().startswith(("http://", "https://", "ftp://")):
        raise ValueError("unsupported URL scheme")
    with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response, \
            open(target, "wb") as out:
        shutil.copyfileobj(response, out)

def collect_outputs(home, job_id, spec, folder, io_status):
    missing = 0
    for line in spec["OUTPUTFILES"]:
        src, dst = split_file_line(line)
        if "://" in dst:
            missing += 1  # uploads to URLs are not supported by the local resource
            continue
        if move_confined(folder, src, home, dst):
            missing += 1
    io_status = io_status + [("output_files_missing", missing), ("send_output_files", 0)]
    names = ["%s.%s" % (job_id, suffix) for suffix in ("stdout", "stderr", "status")]
    out_fd = home.open_job_output(job_id)
    try:
        for name in move_regular_files(folder, names, out_fd):
            # Not renamed: another disk (copy it), or not a plain file (leave it).
            if move_confined(folder, name, home, os.path.join("job_output", job_id, name)):
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                                 0o644, dir_fd=out_fd))
        write_small(job_id + ".io-status", "".join("%s %d\n" % item for item in io_status),
                    0o644, dir_fd=out_fd)
        status_text = read_small(job_id + ".status", dir_fd=out_fd)
    finally:
        os.close(out_fd)
    return Outcome("FINISHED", "", parse_status(status_text), io_status,
                   verify_results(home, job_id, spec))
