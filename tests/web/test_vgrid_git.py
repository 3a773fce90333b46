"""A VGrid's git repository over HTTPS with a real git client: members clone,
commit and push with their certificates; outsiders are refused."""

import os
import subprocess

import pytest

from conftest import exit_code, grid_with_vgrid, post_backend, require_tool


@pytest.fixture
def grid(appliance_factory):
    require_tool("/usr/lib/git-core/git-http-backend", "apt-get install git")
    return grid_with_vgrid(appliance_factory, ("alice", "bob", "dave"), {"bob": "Lab"},
                           resource_keepalive="0")


def git(app, user, tmp_path, *args, cwd=None, check=True):
    """git as user: the user's certificate, the grid's CA, no prompts."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0",
           "LANG": "C"}
    command = ["git", "-c", "http.sslCAInfo=%s" % app.ca, "-c", "http.sslCert=%s" % user["cert"],
               "-c", "http.sslKey=%s" % user["key"], "-c", "user.name=%s" % user["name"],
               "-c", "user.email=%s@example.org" % user["name"], "-c", "init.defaultBranch=main"]
    result = subprocess.run(command + list(args), cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=120)
    if check:
        assert result.returncode == 0, (args, result.stderr)
    return result


def test_members_clone_commit_and_push_outsiders_are_refused(grid, tmp_path):
    app, u = grid
    url = app.url + "/vgridgit/Lab.git"
    bob_copy, alice_copy = tmp_path / "bob", tmp_path / "alice"
    git(app, u["bob"], tmp_path, "clone", "-q", url, str(bob_copy))
    (bob_copy / "README").write_text("shared notes\n")
    git(app, u["bob"], tmp_path, "add", "README", cwd=bob_copy)
    git(app, u["bob"], tmp_path, "commit", "-q", "-m", "first", cwd=bob_copy)
    git(app, u["bob"], tmp_path, "push", "-q", "origin", "HEAD:main", cwd=bob_copy)

    git(app, u["alice"], tmp_path, "clone", "-q", "-b", "main", url, str(alice_copy))
    assert (alice_copy / "README").read_text() == "shared notes\n"
    log = git(app, u["alice"], tmp_path, "log", "--format=%an %s", cwd=alice_copy).stdout
    assert log == "bob first\n"

    # dave is in no VGrid: neither clone nor push, and the reply says so.
    refused = git(app, u["dave"], tmp_path, "clone", "-q", url, str(tmp_path / "dave"),
                  check=False)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    refused = git(app, u["dave"], tmp_path, "push", "-q", url, "HEAD:evil", cwd=alice_copy,
                  check=False)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    assert "evil" not in git(app, u["alice"], tmp_path, "ls-remote", url).stdout

    # Pushing is for owners only once the VGrid says so; reading stays open to members.
    assert exit_code(post_backend(app, u["alice"], "vgridsettings", [
        ("vgrid_name", "Lab"), ("write_shared_files", "OWNERS")])) == 0
    (bob_copy / "README").write_text("changed\n")
    git(app, u["bob"], tmp_path, "commit", "-q", "-am", "second", cwd=bob_copy)
    refused = git(app, u["bob"], tmp_path, "push", "-q", "origin", "HEAD:main", cwd=bob_copy,
                  check=False)
    assert refused.returncode != 0 and "403" in refused.stderr, refused.stderr
    git(app, u["bob"], tmp_path, "fetch", "-q", cwd=bob_copy)


def test_no_credentials_no_repository(grid, tmp_path):
    app, _u = grid
    result = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             "--cacert", app.ca,
                             app.url + "/vgridgit/Lab.git/info/refs?service=git-upload-pack"],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout == "401"
