"""The legacy ``miginterface`` API, as a thin layer on mig.client.

Programs written against MiG's old Python interface module keep their calls:
create_job, submit_job, job_status, job_finished, job_output, cancel_job,
upload_file, get_file, ls, mk_dir, path_exists, remove, remove_dir,
test_connection.  ``local_mode(True)`` runs the same calls on this machine
(jobs as local processes with the grid's states and job_output layout),
and ``local_mode(False)`` switches back to the grid from ~/.mig/miguser.conf.
"""

import os
import tempfile

from mig.client import GridError, NotFound, connect

_state = {"local": False, "grid": None, "conf": os.path.expanduser("~/.mig/miguser.conf")}


def read_conf(path):
    """miguser.conf: 'key value' lines ('#' comments allowed), paths with ~ expanded."""
    conf = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if " " in line:
                key, value = line.split(None, 1)
                conf[key] = os.path.expandvars(os.path.expanduser(value.strip()))
    return conf


def configure(conf_path=None, grid=None):
    """Use another miguser.conf, or an already made client (RemoteGrid/LocalGrid)."""
    if conf_path:
        _state["conf"] = conf_path
    _state["grid"] = grid


def local_mode(enabled=True, folder=None):
    """Switch local mode on (jobs run here) or off (jobs go to the grid)."""
    if _state["grid"] is not None:
        _state["grid"].close()
    _state["local"], _state["grid"] = enabled, None
    if enabled:
        _state["grid"] = connect(local=True, folder=folder)


def _grid():
    if _state["grid"] is None:
        if _state["local"]:
            _state["grid"] = connect(local=True)
        else:
            conf = read_conf(_state["conf"])
            _state["grid"] = connect(conf["migserver"], token=conf.get("token"),
                                     cert=conf.get("certfile"), key=conf.get("keyfile"),
                                     ca=conf.get("cacertfile") or None)
    return _state["grid"]


def create_job(exec_commands, input_files=(), output_files=(), executables=(),
               cached_files=(), resource_specifications=None, name=""):
    """Upload the local input files, submit the job, return its id."""
    grid = _grid()
    lines = ["::EXECUTE::"] + list(exec_commands) + [""]
    uploaded = []
    for local in list(input_files) + list(cached_files):
        remote = os.path.basename(local)
        grid.upload(local, remote)
        uploaded.append(remote)
    if uploaded:
        lines += ["::INPUTFILES::"] + uploaded + [""]
    if executables:
        for local in executables:
            grid.upload(local, os.path.basename(local))
        lines += ["::EXECUTABLES::"] + [os.path.basename(e) for e in executables] + [""]
    if output_files:
        lines += ["::OUTPUTFILES::"] + list(output_files) + [""]
    for key, value in (resource_specifications or {}).items():
        lines += ["::%s::" % key.upper(), str(value), ""]
    if name:
        lines += ["::JOBNAME::", name, ""]
    return grid.submit("\n".join(lines))


def submit_job(mrsl_file, dest_dir=""):
    """Upload a local .mRSL file (into dest_dir) and submit it."""
    grid = _grid()
    remote = os.path.join(dest_dir, os.path.basename(mrsl_file)) if dest_dir else \
        os.path.basename(mrsl_file)
    grid.upload(mrsl_file, remote)
    with open(mrsl_file, encoding="utf-8") as handle:
        return grid.submit(handle.read())


def job_info(job_id):
    return _grid().status(job_id)


def jobs_info(job_ids):
    return [job_info(job_id) for job_id in job_ids]


def job_status(job_id):
    return job_info(job_id)["status"]


def jobs_status(job_ids):
    return [job_status(job_id) for job_id in job_ids]


def job_finished(job_id):
    return job_status(job_id) in ("FINISHED", "FAILED", "CANCELED", "EXPIRED")


def cancel_job(job_id):
    return _grid().cancel(job_id)


def cancel_jobs(job_ids):
    return [cancel_job(job_id) for job_id in job_ids]


def job_output(job_id):
    """stderr followed by stdout, as the old module returned them."""
    grid = _grid()
    return grid.output(job_id, "stderr") + grid.output(job_id, "stdout")


def upload_file(local_path, dest_dir=""):
    remote = os.path.join(dest_dir, os.path.basename(local_path)) if dest_dir else \
        os.path.basename(local_path)
    _grid().upload(local_path, remote)
    return remote


def get_file(remote_path, local_path=None):
    local_path = local_path or os.path.join(tempfile.gettempdir(), os.path.basename(remote_path))
    _grid().download(remote_path, local_path)
    return local_path


def ls(path="."):
    return _grid().ls(path)


def mk_dir(path):
    _grid().mkdir(path, parents=True)


def path_exists(path):
    return _grid().exists(path)


def remove(path):
    _grid().rm(path)


def remove_dir(path):
    _grid().rm(path, recursive=True)


def test_connection():
    """True when the grid answers for this user."""
    try:
        _grid().ls(".")
        return True
    except GridError:
        return False


__all__ = ["create_job", "submit_job", "job_info", "jobs_info", "job_status", "jobs_status",
           "job_finished", "cancel_job", "cancel_jobs", "job_output", "upload_file", "get_file",
           "ls", "mk_dir", "path_exists", "remove", "remove_dir", "test_connection",
           "local_mode", "configure", "read_conf", "GridError", "NotFound"]
