"""mig.core.homeops and mig.core.archives: copy, move, archive unpacking
(zip slip, links, absolute names, caps) and head/tail, on real files in a
temporary home."""

import io
import os
import tarfile
import time
import zipfile

import pytest

from mig.core import archives as A
from mig.core import homeops as F
from mig.core.home import Home
from mig.errors import ClientError, FileNotFound, InvalidArgument, MigError


@pytest.fixture
def home(tmp_path):
    root = tmp_path / "home"
    root.mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "dir").mkdir()
    (root / "dir" / "b.txt").write_text("beta\n")
    (root / "dir" / "sub").mkdir()
    (root / "dir" / "sub" / "c.txt").write_text("gamma\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret\n")
    return Home(str(root))


def files_under(path):
    found = set()
    for folder, _dirs, names in os.walk(path):
        for name in names:
            found.add(os.path.relpath(os.path.join(folder, name), path))
    return found


# -- copy ---------------------------------------------------------------------------------
def test_copy_file_to_new_name_and_into_folder(home):
    assert F.copy_path(home, "a.txt", "copy.txt") == "copy.txt"
    assert F.copy_path(home, "a.txt", "dir") == "dir/a.txt"
    assert open(os.path.join(home.root, "copy.txt")).read() == "alpha\n"
    assert open(os.path.join(home.root, "dir", "a.txt")).read() == "alpha\n"
    assert open(os.path.join(home.root, "a.txt")).read() == "alpha\n"


def test_copy_overwrites_a_file(home):
    F.copy_path(home, "a.txt", "dir/b.txt")
    assert open(os.path.join(home.root, "dir", "b.txt")).read() == "alpha\n"


def test_copy_folder_needs_recursive(home):
    with pytest.raises(ClientError, match="is a folder"):
        F.copy_path(home, "dir", "dir2")
    assert F.copy_path(home, "dir", "dir2", recursive=True) == "dir2"
    assert files_under(os.path.join(home.root, "dir2")) == {"b.txt", os.path.join("sub", "c.txt")}


def test_copy_folder_into_itself_is_refused(home):
    with pytest.raises(ClientError, match="into itself"):
        F.copy_path(home, "dir", "dir/sub", recursive=True)
    with pytest.raises(ClientError, match="into itself"):
        F.copy_path(home, ".", "dir", recursive=True)


def test_copy_same_file_is_refused(home):
    with pytest.raises(ClientError, match="same file"):
        F.copy_path(home, "a.txt", "a.txt")
    with pytest.raises(ClientError, match="same file"):
        F.copy_path(home, "a.txt", ".")


def test_copy_skips_links_in_folders(home, tmp_path):
    os.symlink(str(tmp_path / "outside"), os.path.join(home.root, "dir", "out_link"))
    os.symlink(str(tmp_path / "outside" / "secret.txt"), os.path.join(home.root, "dir", "s"))
    skipped = []
    F.copy_path(home, "dir", "copy", recursive=True, skipped=skipped)
    copied = files_under(os.path.join(home.root, "copy"))
    assert copied == {"b.txt", os.path.join("sub", "c.txt")}
    assert sorted(name for name, _why in skipped) == ["copy/out_link", "copy/s"]
    assert not os.path.lexists(os.path.join(home.root, "copy", "s"))


def test_copy_never_writes_through_a_link_at_the_destination(home, tmp_path):
    os.symlink(str(tmp_path / "outside"), os.path.join(home.root, "dir2"))
    with pytest.raises(InvalidArgument, match="outside your home"):
        F.copy_path(home, "a.txt", "dir2/x.txt")
    (tmp_path / "home" / "tree").mkdir()
    (tmp_path / "home" / "tree" / "sub").mkdir()
    (tmp_path / "home" / "tree" / "sub" / "x.txt").write_text("x")
    with pytest.raises(InvalidArgument, match="outside your home"):
        F.copy_path(home, "tree", "dir2", recursive=True)
    (tmp_path / "home" / "target" / "tree").mkdir(parents=True)
    os.symlink(str(tmp_path / "outside"), os.path.join(home.root, "target", "tree", "sub"))
    skipped = []
    F.copy_path(home, "tree", "target", recursive=True, skipped=skipped)
    assert skipped == [("target/tree/sub", "a link is in the way")]
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]


def test_copy_missing_source(home):
    with pytest.raises(FileNotFound):
        F.copy_path(home, "nope.txt", "x.txt")
    with pytest.raises(ClientError, match="destination folder does not exist"):
        F.copy_path(home, "a.txt", "no/such/x.txt")


# -- move ---------------------------------------------------------------------------------
def test_move_renames_and_moves_into_folder(home):
    assert F.move_path(home, "a.txt", "renamed.txt") == "renamed.txt"
    assert not os.path.exists(os.path.join(home.root, "a.txt"))
    assert F.move_path(home, "renamed.txt", "dir/sub") == "dir/sub/renamed.txt"
    assert open(os.path.join(home.root, "dir", "sub", "renamed.txt")).read() == "alpha\n"
    assert F.move_path(home, "dir", "moved") == "moved"
    assert files_under(os.path.join(home.root, "moved")) == {
        "b.txt", os.path.join("sub", "c.txt"), os.path.join("sub", "renamed.txt")}


def test_move_refusals(home):
    with pytest.raises(ClientError, match="into itself"):
        F.move_path(home, "dir", "dir/sub")
    with pytest.raises(ClientError, match="cannot move your home"):
        F.move_path(home, ".", "dir")
    os.mkdir(os.path.join(home.root, "full"))
    os.mkdir(os.path.join(home.root, "full", "dir"))
    open(os.path.join(home.root, "full", "dir", "x"), "w").close()
    with pytest.raises(ClientError, match="not empty"):
        F.move_path(home, "dir", "full")
    with pytest.raises(ClientError, match="overwrite the file"):
        F.move_path(home, "dir", "a.txt")
    with pytest.raises(ClientError, match="same file"):
        F.move_path(home, "a.txt", "a.txt")
    assert os.path.isdir(os.path.join(home.root, "dir", "sub"))


def test_move_clamps_traversal_inside_the_home(home, tmp_path):
    assert F.move_path(home, "a.txt", "../../evil.txt") == "evil.txt"
    assert F.move_path(home, "evil.txt", "dir/../../outside") == "outside"
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]
    assert os.path.isfile(os.path.join(home.root, "outside"))
    os.symlink(str(tmp_path / "outside"), os.path.join(home.root, "out"))
    with pytest.raises(InvalidArgument, match="outside your home"):
        F.move_path(home, "dir", "out")
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]


# -- archives -----------------------------------------------------------------------------
def make_zip(path, members):
    """members: [(name, data)] or [(ZipInfo, data)]."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)


def make_tar(path, members, mode="w:gz"):
    """members: [(TarInfo, data or None)]."""
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)


def test_unpack_zip(home):
    make_zip(os.path.join(home.root, "in.zip"),
             [("top.txt", b"top"), ("folder/", b""), ("folder/deep/x.mRSL", b"::EXECUTE::\n")])
    written = A.unpack_archive(home, "in.zip", "dir")
    assert sorted(written) == ["dir/folder/deep/x.mRSL", "dir/top.txt"]
    assert open(os.path.join(home.root, "dir", "top.txt"), "rb").read() == b"top"


@pytest.mark.parametrize("evil", ["../evil.txt", "a/../../evil.txt", "..\\evil.txt",
                                  "/tmp/evil.txt", "/evil.txt", "C:\\evil.txt", "c:/evil.txt",
                                  "ok/../../../../../../evil.txt"])
def test_unpack_zip_slip_and_absolute_names_refuse_the_whole_archive(home, tmp_path, evil):
    make_zip(os.path.join(home.root, "evil.zip"), [("good.txt", b"good"), (evil, b"evil")])
    before = files_under(str(tmp_path))
    with pytest.raises(ClientError, match="nothing was unpacked"):
        A.unpack_archive(home, "evil.zip", "dir")
    assert files_under(str(tmp_path)) == before


def test_unpack_zip_symlink_member_is_skipped(home, tmp_path):
    info = zipfile.ZipInfo("link")
    info.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(os.path.join(home.root, "l.zip"), "w") as zf:
        zf.writestr(info, str(tmp_path / "outside" / "secret.txt"))
        zf.writestr("plain.txt", "plain")
    skipped = []
    written = A.unpack_archive(home, "l.zip", ".", skipped)
    assert written == ["plain.txt"]
    assert skipped == [("link", "links and special files are not unpacked")]
    assert not os.path.lexists(os.path.join(home.root, "link"))


def test_unpack_tar_symlink_hardlink_and_device_members_are_skipped(home, tmp_path):
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path / "outside")
    hard = tarfile.TarInfo("hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/passwd"
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    fifo = tarfile.TarInfo("fifo")
    fifo.type = tarfile.FIFOTYPE
    # a file "through" the link must not land outside either
    through = tarfile.TarInfo("link/planted.txt")
    plain = tarfile.TarInfo("plain.txt")
    make_tar(os.path.join(home.root, "t.tar.gz"),
             [(link, None), (hard, None), (dev, None), (fifo, None), (through, b"planted"),
              (plain, b"plain")])
    skipped = []
    written = A.unpack_archive(home, "t.tar.gz", ".", skipped)
    assert sorted(written) == ["link/planted.txt", "plain.txt"]
    assert sorted(name for name, _ in skipped) == ["dev", "fifo", "hard", "link"]
    assert not os.path.islink(os.path.join(home.root, "link"))
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]


@pytest.mark.parametrize("suffix,mode", [(".tgz", "w:gz"), (".tar.bz2", "w:bz2"),
                                         (".tar", "w"), (".tar.xz", "w:xz")])
def test_unpack_tar_kinds_and_slip(home, tmp_path, suffix, mode):
    good = tarfile.TarInfo("folder/ok.txt")
    make_tar(os.path.join(home.root, "ok" + suffix), [(good, b"ok")], mode)
    assert A.unpack_archive(home, "ok" + suffix, "dir") == ["dir/folder/ok.txt"]
    for evil in ("../evil.txt", "/abs/evil.txt"):
        make_tar(os.path.join(home.root, "bad" + suffix),
                 [(tarfile.TarInfo("first.txt"), b"1"), (tarfile.TarInfo(evil), b"evil")], mode)
        with pytest.raises(ClientError):
            A.unpack_archive(home, "bad" + suffix, "dir")
        assert not os.path.exists(os.path.join(home.root, "dir", "first.txt"))
        assert not os.path.exists(os.path.join(home.root, "evil.txt"))
        assert not os.path.exists(str(tmp_path / "evil.txt"))


def test_unpack_planted_link_in_destination_cannot_lead_out(home, tmp_path):
    os.symlink(str(tmp_path / "outside"), os.path.join(home.root, "dir", "out"))
    make_zip(os.path.join(home.root, "p.zip"), [("out/x.txt", b"x"), ("fine.txt", b"f")])
    skipped = []
    assert A.unpack_archive(home, "p.zip", "dir", skipped) == ["dir/fine.txt"]
    assert skipped[0][0] == "out/x.txt" and "outside your home" in skipped[0][1]
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]


def test_unpack_caps_members_and_size(home):
    make_zip(os.path.join(home.root, "many.zip"), [("f%d" % i, b"x") for i in range(11)])
    with pytest.raises(ClientError, match="at most 10"):
        A.unpack_archive(home, "many.zip", "dir", max_members=10)
    make_zip(os.path.join(home.root, "big.zip"), [("big", b"0" * 5000)])  # compresses well
    with pytest.raises(ClientError, match="at most 4096"):
        A.unpack_archive(home, "big.zip", "dir", max_bytes=4096)
    make_tar(os.path.join(home.root, "many.tgz"),
             [(tarfile.TarInfo("f%d" % i), b"x") for i in range(11)])
    with pytest.raises(ClientError, match="more than 10"):
        A.unpack_archive(home, "many.tgz", "dir", max_members=10)
    assert not os.path.exists(os.path.join(home.root, "dir", "f0"))
    assert not os.path.exists(os.path.join(home.root, "dir", "big"))
    assert A.MAX_ARCHIVE_BYTES == 4 * 1024 ** 3 and A.MAX_ARCHIVE_MEMBERS == 100000


def test_unpack_refuses_htaccess_and_damaged_archives(home):
    make_zip(os.path.join(home.root, "h.zip"), [(".htaccess", b"Allow all"), ("ok", b"1")])
    skipped = []
    assert A.unpack_archive(home, "h.zip", ".", skipped) == ["ok"]
    assert skipped[0][0] == ".htaccess"
    with open(os.path.join(home.root, "bad.zip"), "wb") as handle:
        handle.write(b"PK\x03\x04 not really a zip")
    with pytest.raises(ClientError, match="not a valid zip"):
        A.unpack_archive(home, "bad.zip", ".")
    with open(os.path.join(home.root, "bad.tgz"), "wb") as handle:
        handle.write(b"\x1f\x8b garbage")
    with pytest.raises(ClientError):
        A.unpack_archive(home, "bad.tgz", ".")
    with pytest.raises(ClientError, match="not a supported archive"):
        A.unpack_archive(home, "a.txt", ".")
    with pytest.raises(ClientError, match="not a folder"):
        A.unpack_archive(home, "h.zip", "a.txt")


def test_unpack_replaces_files_and_keeps_exec_bit(home):
    info = zipfile.ZipInfo("run.sh")
    info.external_attr = (0o100755 << 16)
    with zipfile.ZipFile(os.path.join(home.root, "x.zip"), "w") as zf:
        zf.writestr(info, "#!/bin/sh\n")
        zf.writestr("a.txt", "replaced\n")
    A.unpack_archive(home, "x.zip", ".")
    assert open(os.path.join(home.root, "a.txt")).read() == "replaced\n"
    assert os.stat(os.path.join(home.root, "run.sh")).st_mode & 0o100


# -- head and tail -------------------------------------------------------------------------
def test_head_and_tail(home):
    with open(os.path.join(home.root, "n.txt"), "w") as handle:
        handle.write("".join("line %d\n" % i for i in range(1, 101)))
    assert F.head_lines(home, "n.txt", 2) == "line 1\nline 2\n"
    assert F.tail_lines(home, "n.txt", 2) == "line 99\nline 100\n"
    assert F.tail_lines(home, "n.txt", 1000).count("\n") == 100
    assert F.head_lines(home, "n.txt", 0) == "" and F.tail_lines(home, "n.txt", 0) == ""
    with open(os.path.join(home.root, "open.txt"), "w") as handle:
        handle.write("a\nb\nc")
    assert F.tail_lines(home, "open.txt", 2) == "b\nc"
    with pytest.raises(InvalidArgument):
        F.tail_lines(home, "n.txt", -1)
    with pytest.raises(ClientError, match="is a directory"):
        F.head_lines(home, "dir", 1)
    with pytest.raises(FileNotFound):
        F.tail_lines(home, "missing.txt", 1)
    with pytest.raises(MigError):
        F.tail_lines(home, "../../outside/secret.txt", 1)


def test_tail_of_a_50_mb_file_is_fast(home):
    path = os.path.join(home.root, "big.log")
    line = b"x" * 99 + b"\n"
    with open(path, "wb") as handle:
        handle.write(line * (50 * 1024 * 1024 // len(line)))
        handle.write(b"the end\n")
    start = time.perf_counter()
    text = F.tail_lines(home, "big.log", 5)
    assert time.perf_counter() - start < 0.05
    assert text.endswith("the end\n") and text.count("\n") == 5
    # a sparse 8 GB file: reading it whole would take many seconds
    sparse = os.path.join(home.root, "sparse.log")
    with open(sparse, "wb") as handle:
        handle.truncate(8 * 1024 ** 3)
        handle.seek(0, os.SEEK_END)
        handle.write(b"one\ntwo\nthree\n")
    start = time.perf_counter()
    assert F.tail_lines(home, "sparse.log", 2) == "two\nthree\n"
    assert time.perf_counter() - start < 0.05


def test_tail_of_one_huge_line_is_bounded(home):
    path = os.path.join(home.root, "oneline")
    with open(path, "wb") as handle:
        handle.write(b"y" * (20 * 1024 * 1024))
    text = F.tail_lines(home, "oneline", 3)
    assert 0 < len(text) <= F.MAX_LINES_BYTES
    assert len(F.head_lines(home, "oneline", 3)) <= F.MAX_LINES_BYTES
