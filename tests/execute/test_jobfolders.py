"""Job folders are recycled (no inode churn per job) but only when the job left
nothing but the appliance's own files; tampered folders are removed whole."""

import os
import stat

import pytest

from mig.execute.jobfolders import SCRIPT, FolderPool, write_in_place


def test_an_emptied_folder_comes_back_for_the_next_job(tmp_path):
    pool = FolderPool(str(tmp_path))
    first = pool.take("job1")
    assert os.listdir(first) == [] and stat.S_IMODE(os.stat(first).st_mode) == 0o700
    write_in_place(first, SCRIPT, "echo one\n")
    inode = os.stat(first).st_ino
    pool.give_back(first)
    assert not os.path.exists(first)
    second = pool.take("job2")
    assert second.endswith("job2") and os.stat(second).st_ino == inode
    # the script's file is reused in place: a shorter text leaves no tail behind
    write_in_place(second, SCRIPT, "ls\n")
    with open(os.path.join(second, SCRIPT)) as handle:
        assert handle.read() == "ls\n"
    pool.close()
    assert [n for n in os.listdir(tmp_path) if n != "job2"] == []


@pytest.mark.parametrize("tamper", ["extra file", "link as script", "hard link", "subfolder"])
def test_a_folder_with_anything_else_is_removed_not_reused(tmp_path, tamper):
    os.makedirs(tmp_path / "work")
    pool = FolderPool(str(tmp_path / "work"))
    folder = pool.take("job1")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    if tamper == "extra file":
        (tmp_path / "work" / "job1" / "result.dat").write_text("x")
    elif tamper == "link as script":
        os.symlink(outside, os.path.join(folder, SCRIPT))
    elif tamper == "hard link":
        os.link(outside, os.path.join(folder, SCRIPT))
    else:
        os.mkdir(os.path.join(folder, "sub"))
    pool.give_back(folder)
    assert not os.path.exists(folder)
    assert pool.spares == [] and os.listdir(tmp_path / "work") == []
    assert outside.read_text() == "secret"


def test_scripts_are_never_written_through_a_link(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    os.symlink(target, tmp_path / SCRIPT)
    with pytest.raises(OSError):
        write_in_place(str(tmp_path), SCRIPT, "echo pwned\n")
    assert target.read_text() == "keep"


def test_spares_left_by_a_previous_run_are_checked_again(tmp_path):
    first = FolderPool(str(tmp_path))
    good, bad = first.take("a"), first.take("b")
    (tmp_path / "b" / "left.txt").write_text("x")
    first.give_back(good)
    os.rename(bad, str(tmp_path / ".spare-99-1"))  # as if a crash left it
    second = FolderPool(str(tmp_path))
    assert len(second.spares) == 2 - 1
    assert not (tmp_path / ".spare-99-1").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown); run the tests as root")
def test_a_folder_the_job_user_owned_is_taken_back_before_the_check(tmp_path):
    pool = FolderPool(str(tmp_path))
    folder = pool.take("job1")
    os.chown(folder, 65534, 65534)
    os.chmod(folder, 0o755)
    pool.give_back(folder)
    spare = pool.spares[0]
    info = os.stat(spare)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700)
