"""mig.core.home and mig.core.beneath: path confinement of user homes (traversal vectors, planted
symlinks, long names) and the file operations built on it, on real files."""

import os

import pytest

from mig.core.beneath import copy_confined
from mig.core.home import Home
from mig.errors import (ClientError, FileNotFound, InvalidArgument, MigError, NoFilePath,
                        NotCopied)


@pytest.fixture
def homes(tmp_path):
    """alice's home with planted links, plus bob, a prefix-sibling alice2 and /outside."""
    root = tmp_path / "home"
    alice, bob, alice2 = root / "alice", root / "bob", root / "alice2"
    for home in (alice, bob, alice2):
        home.mkdir(parents=True)
        (home / "secret.txt").write_text("secret of %s" % home.name)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file.txt").write_text("outside")
    (alice / "sub").mkdir()
    (alice / "sub" / "deep").mkdir()
    (alice / "sub" / "a.txt").write_text("a")
    (alice / "sub" / "deep" / "b.txt").write_text("b")
    (alice / "top.txt").write_text("top")
    (alice / ".hidden").write_text("h")
    (alice / ".htaccess").write_text("deny")
    os.symlink("/etc", alice / "link_etc")
    os.symlink(str(bob), alice / "link_bob")
    os.symlink("../bob", alice / "link_rel_bob")
    os.symlink(str(alice2), alice / "link_alice2")
    os.symlink(str(outside / "file.txt"), alice / "link_file")
    os.symlink("..", alice / "link_parent")
    os.symlink(str(tmp_path / "nowhere" / "x"), alice / "dangling_out")
    os.symlink("sub/a.txt", alice / "link_inside")
    os.symlink("loop2", alice / "loop1")
    os.symlink("loop1", alice / "loop2")
    return {"alice": alice, "bob": bob, "alice2": alice2, "outside": outside,
            "home": Home(str(alice)), "tmp": tmp_path}


def inside(home, path):
    real = os.path.realpath(path)
    return real == home.root or real.startswith(home.root + os.sep)


TRAVERSAL_VECTORS = [
    "..", "../", "../x", "../../etc/passwd", "../bob/secret.txt", "../alice2/secret.txt",
    "a/../../x", "./../x", "sub/../../bob", "sub/deep/../../../x", "x/..", "x/../..",
    "x/./../../..", "/etc/passwd", "//etc/passwd", "/../../etc/shadow", "/", ".", "",
    "%2e%2e/x", "%2e%2e%2fx", "..%2fx", "%252e%252e/x", "....//x", "..../x", ".../x",
    "..\\..\\etc\\passwd", "\\etc\\passwd", "sub\\..\\..\\bob", "..\\/..\\/x",
    "\u2025/x", "\uff0e\uff0e/x", "..\u2215x", "\u202e../x", "\n../x", "../\n",
    "~", "~root/x", "$HOME/x", "`id`", "*", " ", "../ ", " /../x",
    "link_etc", "link_etc/passwd", "link_etc/../x", "link_bob", "link_bob/secret.txt",
    "link_rel_bob/secret.txt", "link_alice2", "link_alice2/secret.txt", "link_file",
    "link_parent", "link_parent/bob/secret.txt", "link_parent/alice/top.txt",
    "dangling_out", "dangling_out/new", "link_inside", "loop1", "loop1/x",
    "sub/../link_etc/hosts", "\x00", "a\x00b", "../\x00", "sub/\x00/../..",
    "a" * 256, "sub/" + "b" * 300, "\u00e9" * 128, "a/" * 2100, "x" * 5000,
    ".htaccess", "sub/.htaccess", "./.htaccess/../top.txt", "top.txt", "sub/deep/b.txt",
]


SECRETS = ("secret of bob", "secret of alice2", "outside", "root:")


def outside_snapshot(homes):
    """Every file and folder of the test's tree except alice's home, with its
    content: what no operation on alice's home may change."""
    seen = {}
    for root, folders, files in os.walk(homes["tmp"]):
        if root == str(homes["alice"]) or root.startswith(str(homes["alice"]) + os.sep):
            folders[:] = []
            continue
        for name in folders + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            data = open(path, "rb").read() if os.path.isfile(path) and \
                not os.path.islink(path) else None
            seen[path] = (info.st_mode, info.st_ino, data)
    return seen


def host_safe(vector):
    """Vectors that could reach the host's /etc or / when confinement is
    broken get only reads: a broken build must not write there."""
    return not any(mark in vector for mark in ("etc", "~", "$")) and \
        not vector.startswith(("/", "\\", " /")) and vector.strip(" ./\\") != ""


@pytest.mark.parametrize("vector", TRAVERSAL_VECTORS)
def test_traversal_vector_never_escapes(homes, vector):
    """Each vector through every operation on a home: the paths it resolves
    to stay inside, what it reads is never another home's or the host's, and
    nothing outside the home changes."""
    from mig.core.homeops import copy_path, head_lines, touch_file, truncate_file
    home = homes["home"]
    before = outside_snapshot(homes)
    for must_exist in (False, True):
        try:
            path = home.resolve(vector, must_exist=must_exist)
        except MigError:
            continue
        assert inside(home, path), (vector, path)
    reads = [lambda: home.read_bytes(vector), lambda: "".join(head_lines(home, vector)),
             lambda: repr(home.listing(home.resolve(vector, must_exist=True)))]
    writes = [lambda: touch_file(home, vector), lambda: truncate_file(home, vector),
              lambda: home.mkdir(vector + "/made", parents=True),
              lambda: copy_path(home, "top.txt", vector),
              lambda: home.remove(vector, recursive=True, force=True)]
    for operation in reads + (writes if host_safe(vector) else []):
        try:
            result = operation()
        except (MigError, OSError):
            continue
        text = result.decode("utf-8", "replace") if isinstance(result, bytes) else str(result)
        assert not any(secret in text for secret in SECRETS), (vector, text[:200])
    assert outside_snapshot(homes) == before, vector


@pytest.mark.parametrize("vector", [
    "link_etc", "link_etc/passwd", "link_bob", "link_bob/secret.txt", "link_rel_bob",
    "link_rel_bob/secret.txt", "link_alice2", "link_alice2/secret.txt", "link_file",
    "link_parent", "link_parent/bob", "dangling_out", "dangling_out/new",
    "sub/../link_etc/hosts",
])
def test_symlink_out_of_home_raises_invalid_argument(homes, vector):
    with pytest.raises(InvalidArgument) as info:
        homes["home"].resolve(vector)
    assert "outside your home" in str(info.value)


@pytest.mark.parametrize("vector", ["\x00", "a\x00b", "sub/x\x00.txt"])
def test_nul_raises_invalid_argument(homes, vector):
    with pytest.raises(InvalidArgument):
        homes["home"].resolve(vector)


@pytest.mark.parametrize("vector", ["a" * 256, "sub/" + "b" * 300, "\u00e9" * 128,
                                    "a/" * 2100, "x" * 4097])
def test_long_names_raise_invalid_argument(homes, vector):
    with pytest.raises(InvalidArgument):
        homes["home"].resolve(vector)


def test_long_names_at_the_limit_are_fine(homes):
    home = homes["home"]
    assert home.resolve("a" * 255) == os.path.join(home.root, "a" * 255)
    assert home.resolve("\u00e9" * 127) == os.path.join(home.root, "\u00e9" * 127)


@pytest.mark.parametrize("vector", [".htaccess", "sub/.htaccess", ".htaccess/x"])
def test_htaccess_refused(homes, vector):
    with pytest.raises(InvalidArgument):
        homes["home"].resolve(vector)


def test_resolve_exact_results(homes):
    home = homes["home"]
    root = home.root
    assert home.resolve("/etc/passwd") == os.path.join(root, "etc", "passwd")
    assert home.resolve("../../etc/passwd") == os.path.join(root, "etc", "passwd")
    assert home.resolve("%2e%2e/x") == os.path.join(root, "%2e%2e", "x")
    assert home.resolve("..\\..\\x") == os.path.join(root, "x")
    assert home.resolve("") == root
    assert home.resolve("/") == root
    assert home.resolve("sub//deep/./b.txt") == os.path.join(root, "sub", "deep", "b.txt")
    assert home.resolve("link_inside") == os.path.join(root, "link_inside")
    with pytest.raises(NoFilePath):
        home.resolve(None)
    with pytest.raises(FileNotFound):
        home.resolve("missing.txt", must_exist=True)
    assert home.relative(os.path.join(root, "sub", "a.txt")) == "sub/a.txt"
    assert home.relative(root) == "."


def test_home_root_is_real_path(homes):
    link = homes["tmp"] / "alias"
    os.symlink(str(homes["alice"]), link)
    home = Home(str(link))
    assert home.root == os.path.realpath(str(homes["alice"]))
    assert home.resolve("top.txt") == os.path.join(home.root, "top.txt")


# -------------------------------------------------------------------------- expand

@pytest.mark.parametrize("pattern", [
    "*", "../*", "*/*", "*/*/*", "link_etc/*", ".*", "/*", "../../*/*", "*/secret.txt",
    "../bob/*", "[l]*/*", "link_*/*", "*/../*", "sub/*", "**/*", "link_parent/*/*",
    "?ink_bob/*", "\x00*", "link_alice2/*",
])
def test_expand_never_returns_paths_outside(homes, pattern):
    home = homes["home"]
    try:
        matches = home.expand(pattern)
    except MigError:
        return
    for match in matches:
        assert inside(home, match), (pattern, match)
        assert ".htaccess" not in match


def test_expand_exact_matches(homes):
    home = homes["home"]
    root = home.root
    assert home.expand("sub/*") == [os.path.join(root, "sub", "a.txt"),
                                    os.path.join(root, "sub", "deep")]
    assert home.expand("*/secret.txt", must_exist=False) == []
    with pytest.raises(FileNotFound):
        home.expand("*/secret.txt")
    assert home.expand("*.txt") == [os.path.join(root, "secret.txt"),
                                    os.path.join(root, "top.txt")]
    assert home.expand(".h*") == [os.path.join(root, ".hidden")]
    assert home.expand("top.txt") == [os.path.join(root, "top.txt")]
    assert home.expand("new.txt", must_exist=False) == [os.path.join(root, "new.txt")]
    with pytest.raises(FileNotFound):
        home.expand("new.txt")
    everything = home.expand("*")
    assert os.path.join(root, "link_etc") not in everything
    assert os.path.join(root, "link_inside") in everything


# ------------------------------------------------------------------------- listing

def test_listing_hides_dotfiles_and_htaccess(homes):
    home = homes["home"]
    [(path, entries)] = home.listing(home.resolve("sub"))
    assert path == os.path.join(home.root, "sub")
    assert [(e["name"], e["type"]) for e in entries] == [("a.txt", "file"),
                                                           ("deep", "directory")]
    assert entries[0]["size"] == 1
    names = [e["name"] for e in home.listing(home.root)[0][1]]
    assert ".hidden" not in names and ".htaccess" not in names
    assert names == sorted(names)
    names_all = [e["name"] for e in home.listing(home.root, show_all=True)[0][1]]
    assert ".hidden" in names_all and ".htaccess" not in names_all


def test_listing_of_a_file(homes):
    home = homes["home"]
    [(folder, [entry])] = home.listing(home.resolve("sub/a.txt"))
    assert folder == os.path.join(home.root, "sub")
    assert entry["name"] == "a.txt" and entry["type"] == "file" and entry["size"] == 1


def test_recursive_listing_does_not_follow_links_out(homes):
    home = homes["home"]
    result = home.listing(home.root, recursive=True)
    folders = [folder for folder, _ in result]
    assert folders == [home.root, os.path.join(home.root, "sub"),
                       os.path.join(home.root, "sub", "deep")]
    for folder, _entries in result:
        assert inside(home, folder)


def test_read_bytes(homes):
    home = homes["home"]
    assert home.read_bytes("sub/a.txt") == b"a"
    assert home.read_bytes("top.txt", limit=2) == b"to"
    with pytest.raises(ClientError):
        home.read_bytes("sub")
    with pytest.raises(FileNotFound):
        home.read_bytes("nope")
    with pytest.raises(InvalidArgument):
        home.read_bytes("link_file")


# --------------------------------------------------------------------------- mkdir

def test_mkdir(homes):
    home = homes["home"]
    assert home.mkdir("newdir") == os.path.join(home.root, "newdir")
    assert os.path.isdir(os.path.join(home.root, "newdir"))
    with pytest.raises(ClientError) as info:
        home.mkdir("newdir")
    assert "path exist" in str(info.value)
    assert home.mkdir("newdir", parents=True) == os.path.join(home.root, "newdir")
    with pytest.raises(ClientError) as info:
        home.mkdir("a/b/c")
    assert "parent folder does not exist" in str(info.value)
    assert not os.path.exists(os.path.join(home.root, "a"))
    assert home.mkdir("a/b/c", parents=True) == os.path.join(home.root, "a", "b", "c")
    assert os.path.isdir(os.path.join(home.root, "a", "b", "c"))
    with pytest.raises(ClientError):
        home.mkdir("top.txt")
    with pytest.raises(ClientError):
        home.mkdir("top.txt", parents=True)
    for vector in ("link_etc/x", "link_bob/x", "dangling_out", "dangling_out/x"):
        with pytest.raises(InvalidArgument):
            home.mkdir(vector, parents=True)
    assert not os.path.exists(homes["tmp"] / "nowhere")
    assert sorted(os.listdir(homes["bob"])) == ["secret.txt"]
    assert home.mkdir("../../escape", parents=True) == os.path.join(home.root, "escape")


def test_mkdir_parents_under_a_file(homes):
    with pytest.raises(ClientError):
        homes["home"].mkdir("top.txt/x", parents=True)


# -------------------------------------------------------------------------- remove

def test_remove_moves_to_trash(homes):
    home = homes["home"]
    root = home.root
    home.remove("top.txt")
    assert not os.path.exists(os.path.join(root, "top.txt"))
    with open(os.path.join(root, "Trash", "top.txt")) as handle:
        assert handle.read() == "top"
    # a second file of the same name does not overwrite the first in the trash
    with open(os.path.join(root, "top.txt"), "w") as handle:
        handle.write("second")
    home.remove("top.txt")
    trashed = sorted(os.listdir(os.path.join(root, "Trash")))
    assert len(trashed) == 2 and trashed[0] == "top.txt"
    assert trashed[1].startswith("top.txt.")
    # removing inside Trash deletes for good
    home.remove("Trash/top.txt")
    assert sorted(os.listdir(os.path.join(root, "Trash"))) == [trashed[1]]


def test_remove_force_deletes(homes):
    home = homes["home"]
    home.remove("top.txt", force=True)
    assert not os.path.lexists(os.path.join(home.root, "top.txt"))
    assert not os.path.exists(os.path.join(home.root, "Trash"))
    home.remove("sub", recursive=True, force=True)
    assert not os.path.exists(os.path.join(home.root, "sub"))


def test_remove_folder_needs_recursive(homes):
    home = homes["home"]
    with pytest.raises(ClientError) as info:
        home.remove("sub")
    assert "is a directory" in str(info.value)
    assert os.path.isdir(os.path.join(home.root, "sub"))
    with pytest.raises(ClientError):
        home.remove("sub", force=True)
    home.remove("sub", recursive=True)
    assert os.path.isfile(os.path.join(home.root, "Trash", "sub", "deep", "b.txt"))


@pytest.mark.parametrize("vector", ["", ".", "/", "..", "../..", "sub/..", "/../"])
def test_remove_refuses_home(homes, vector):
    home = homes["home"]
    for kwargs in ({}, {"recursive": True}, {"recursive": True, "force": True}):
        with pytest.raises(ClientError):
            home.remove(vector, **kwargs)
    assert os.path.isfile(os.path.join(home.root, "top.txt"))


def test_remove_missing_and_outside(homes):
    home = homes["home"]
    with pytest.raises(FileNotFound):
        home.remove("nope.txt")
    with pytest.raises(InvalidArgument):
        home.remove("link_bob/secret.txt", force=True)
    assert os.path.isfile(os.path.join(homes["bob"], "secret.txt"))


def test_remove_symlink_removes_the_link_not_the_target(homes):
    home = homes["home"]
    os.symlink("sub", os.path.join(home.root, "link_sub"))
    home.remove("link_sub", force=True)
    assert not os.path.lexists(os.path.join(home.root, "link_sub"))
    assert os.path.isfile(os.path.join(home.root, "sub", "a.txt"))


# ----------------------------------------------------------------- open_for_upload

def test_open_for_upload(homes):
    home = homes["home"]
    path, tmp = home.open_for_upload("sub/new.bin")
    assert path == os.path.join(home.root, "sub", "new.bin")
    assert os.path.dirname(tmp) == os.path.join(home.root, "sub")
    assert os.path.basename(tmp).startswith(".upload-new.bin-")
    assert not os.path.exists(tmp)


def test_open_for_upload_refuses_directory_in_the_way(homes):
    with pytest.raises(ClientError) as info:
        homes["home"].open_for_upload("sub")
    assert "directory in the way" in str(info.value)
    with pytest.raises(ClientError):
        homes["home"].open_for_upload("")


def test_open_for_upload_refuses_missing_parent(homes):
    with pytest.raises(ClientError) as info:
        homes["home"].open_for_upload("nodir/file.txt")
    assert "invalid directory: nodir" in str(info.value)
    with pytest.raises(ClientError):
        homes["home"].open_for_upload("top.txt/file.txt")


def test_open_for_upload_refuses_links_out(homes):
    for vector in ("link_bob/secret.txt", "link_file", "dangling_out", "link_etc/x"):
        with pytest.raises(InvalidArgument):
            homes["home"].open_for_upload(vector)


# -------------------------------------------------------------------- copy_confined

@pytest.fixture
def jobdir(homes):
    folder = homes["tmp"] / "work" / "job1"
    folder.mkdir(parents=True)
    (folder / "out.txt").write_text("result")
    (folder / "nested").mkdir()
    (folder / "nested" / "n.txt").write_text("n")
    os.symlink(str(homes["bob"] / "secret.txt"), folder / "steal.txt")
    os.symlink("/etc/passwd", folder / "passwd")
    os.symlink("..", folder / "up")
    os.symlink("out.txt", folder / "alias.txt")
    return folder


def test_copy_confined_copies(homes, jobdir):
    home = homes["home"]
    copy_confined(str(jobdir), "out.txt", home, "results/out.txt")
    with open(os.path.join(home.root, "results", "out.txt")) as handle:
        assert handle.read() == "result"
    copy_confined(str(jobdir), "nested/n.txt", home, "top.txt")
    with open(os.path.join(home.root, "top.txt")) as handle:
        assert handle.read() == "n"
    assert not [n for n in os.listdir(home.root) if n.startswith(".tmp-") or ".part-" in n]


@pytest.mark.parametrize("src", ["steal.txt", "passwd", "up/job1/out.txt", "../job1/out.txt",
                                 "/etc/passwd", "up", ".", ""])
def test_copy_confined_refuses_source_leading_out(homes, jobdir, src):
    home = homes["home"]
    with pytest.raises(NotCopied) as refused:
        copy_confined(str(jobdir), src, home, "stolen.txt")
    assert refused.value.message.startswith("%s: " % src)
    assert not os.path.lexists(os.path.join(home.root, "stolen.txt"))


def test_copy_confined_missing_source(homes, jobdir):
    for src in ("nope.txt", "nested", "nested/none.txt"):
        with pytest.raises(NotCopied) as refused:
            copy_confined(str(jobdir), src, homes["home"], "x.txt")
        assert refused.value.message.startswith("%s: " % src)
        assert "missing" in refused.value.message
    assert not os.path.lexists(os.path.join(homes["home"].root, "x.txt"))


def test_copy_confined_destination_confined(homes, jobdir):
    home = homes["home"]
    copy_confined(str(jobdir), "out.txt", home, "../../bob/owned.txt")
    assert os.path.isfile(os.path.join(home.root, "bob", "owned.txt"))
    assert not os.path.exists(os.path.join(homes["bob"], "owned.txt"))
    with pytest.raises(NotCopied, match="outside your home"):
        copy_confined(str(jobdir), "out.txt", home, "link_bob/owned.txt")
    assert not os.path.exists(os.path.join(homes["bob"], "owned.txt"))
    with pytest.raises(NotCopied, match="outside your home"):
        copy_confined(str(jobdir), "out.txt", home, "link_file")
    with open(os.path.join(homes["outside"], "file.txt")) as handle:
        assert handle.read() == "outside"


def test_copy_confined_directory_in_the_way(homes, jobdir):
    home = homes["home"]
    before = sorted(os.listdir(home.root))
    with pytest.raises(NotCopied):
        copy_confined(str(jobdir), "out.txt", home, "sub")
    assert sorted(os.listdir(home.root)) == before


def test_copy_confined_file_in_the_way_of_parent(homes, jobdir):
    with pytest.raises(NotCopied):
        copy_confined(str(jobdir), "out.txt", homes["home"], "top.txt/out.txt")
