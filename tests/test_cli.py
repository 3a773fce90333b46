"""The command line: help everywhere, user management on the state folder."""

import json
import os
import stat
import subprocess
import sys

from conftest import ENTRY


def run(*args, input_text=None):
    return subprocess.run([sys.executable, ENTRY] + list(args), capture_output=True, text=True,
                          timeout=60, input=input_text)


def test_help_everywhere():
    for args in ([], ["serve"], ["user"], ["user", "add"], ["user", "list"], ["user", "token"],
                 ["user", "passwd"]):
        result = run(*(args + ["--help"]))
        assert result.returncode == 0 and "usage:" in result.stdout, args
    assert "--state" in run("serve", "--help").stdout


def test_user_management(tmp_path):
    state = str(tmp_path / "s")
    made = json.loads(run("user", "add", "carol", "--state", state, "--json").stdout)
    assert made["dn"].startswith("/C=DK/ST=NA/L=NA/O=MiG Appliance/OU=NA/CN=carol/emailAddress=carol@")
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert os.path.exists(os.path.join(state, "admin-credentials.txt"))
    listing = json.loads(run("user", "list", "--state", state, "--json").stdout)
    assert [u["name"] for u in listing] == ["admin", "carol"]
    again = run("user", "add", "carol", "--state", state)
    assert again.returncode == 3 and "already exists" in again.stderr
    bad = run("user", "add", "Bad/Name", "--state", state)
    assert bad.returncode == 3 and "invalid user name" in bad.stderr
    token = run("user", "token", "carol", "--state", state).stdout.strip()
    assert token.startswith("mig_") and token != made["token"]
    short = run("user", "passwd", "carol", "--password", "short", "--state", state)
    assert short.returncode == 3 and "at least 8" in short.stderr
    assert run("user", "passwd", "carol", "--password", "long enough pw", "--state", state).returncode == 0


def test_state_from_environment(tmp_path):
    env = dict(os.environ, MIG_STATE=str(tmp_path / "envstate"))
    result = subprocess.run([sys.executable, ENTRY, "user", "list"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0 and "admin" in result.stdout
    assert os.path.isdir(tmp_path / "envstate" / "ca")


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    state = tmp_path / "s"
    result = run("serve", "--policy", "Nonsense", "--port", "0", "--state", str(state))
    assert result.returncode == 3 and "scheduler_policy 'Nonsense'" in result.stderr
    assert "Traceback" not in result.stderr
    (state).mkdir()
    (state / "config.ini").write_text("[appliance]\nlocal_slots = many\n")
    result = run("user", "list", "--state", str(state))
    assert result.returncode == 3 and "local_slots: 'many' is not a valid int" in result.stderr


def test_flags_hold_for_one_run_only(tmp_path):
    state = tmp_path / "s"
    assert run("user", "list", "--state", str(state)).returncode == 0
    assert "port = 8443" in (state / "config.ini").read_text()


def test_a_broken_config_file_is_refused_clearly(tmp_path):
    state = tmp_path / "s"
    state.mkdir()
    (state / "config.ini").write_text("[appliance]\nport = 1\nport = 2\n")
    result = run("user", "list", "--state", str(state))
    assert result.returncode == 3 and "config.ini" in result.stderr
    assert "Traceback" not in result.stderr


def test_exit_statuses_tell_mistakes_from_failures(tmp_path):
    """docs/admin.md's table: 2 for the command line, 3 for a refused value;
    each error class maps to its row (1 for failures, as the ssh resource
    tests see from an unreachable resource)."""
    from mig.cli import exit_status
    from mig.core.certs import CertError
    from mig.errors import (AccessDenied, ConfigError, DiskFull, FileNotFound, InvalidArgument,
                            MrslError, NoJobIdError, SystemFailure)
    assert run("user", "frobnicate").returncode == 2  # argparse: the command line
    state = tmp_path / "s"
    assert run("user", "add", "dave", "--state", str(state)).returncode == 0
    assert run("user", "token", "nobody", "--state", str(state)).returncode == 3
    expected = {InvalidArgument("x"): 3, NoJobIdError("x"): 3, MrslError("x"): 3,
                ConfigError("x"): 3, AccessDenied("x"): 4, FileNotFound("x"): 5,
                SystemFailure("x"): 1, DiskFull("x"): 1, CertError("x"): 1}
    assert {type(e).__name__: exit_status(e) for e in expected} == \
        {type(e).__name__: code for e, code in expected.items()}
