"""The Files page's actions over HTTPS (the JSON replies its script reads and
the html it shows): Trash with restore and emptying, pack and unpack, share
links made and revoked from the page, search by name and content, sorting
and sizes in human units, the download links, and the chunked upload the
upload widget uses (resumed from what arrived, then moved into place)."""

import hashlib
import os
import re
import zipfile

import pytest

from conftest import exit_code, https_connection, write_home_file as write
from test_portal_files import call, multipart, page, request


@pytest.fixture
def grid(alice_conn):
    return alice_conn


def outcome(objects):
    """The one-sentence outcome of a fileaction JSON reply (success or error)."""
    found = [o for o in objects if o["object_type"] in ("success", "error_text")]
    assert found, objects
    return found[0]


def status_code(objects):
    return objects[0]["exit_code"]


def listing_rows(html, kind="filelist"):
    """The rows of the table data-kind=KIND as lists of cell texts (tags dropped)."""
    table = re.search(r'<table data-kind="%s">(.*?)</table>' % kind, html, re.S)
    assert table, kind
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1).split("<tbody>", 1)[1], re.S)
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in rows]


def test_delete_restores_to_where_it_was_and_trash_can_be_emptied(grid):
    _app, alice, conn = grid
    home = alice["home"]
    write(alice, "deep/er/note.txt", "keep me")
    write(alice, "top.txt", "top")
    reply = call(conn, "fileaction", [("action", "delete"), ("path", "deep/er/note.txt"),
                                      ("path", "top.txt")], "json")
    assert outcome(reply)["object_type"] == "success"
    assert "moved to Trash" in outcome(reply)["text"]
    os.rmdir(os.path.join(home, "deep/er"))  # the folder it came from is gone too
    # restore: back where it was, the folder made again
    reply = call(conn, "fileaction", [("action", "restore"), ("path", "Trash/note.txt")], "json")
    assert status_code(reply) == 0, reply
    assert outcome(reply)["text"] == "Trash/note.txt: restored to deep/er/note.txt"
    assert open(os.path.join(home, "deep/er/note.txt")).read() == "keep me"
    assert not os.path.exists(os.path.join(home, "Trash/note.txt"))
    # a name in the way is not replaced
    write(alice, "top.txt", "new top")
    reply = call(conn, "fileaction", [("action", "restore"), ("path", "Trash/top.txt")], "json")
    assert status_code(reply) != 0 and "top.txt exists already" in outcome(reply)["text"]
    assert open(os.path.join(home, "top.txt")).read() == "new top"
    # only items in Trash can be restored
    reply = call(conn, "fileaction", [("action", "restore"), ("path", "top.txt")], "json")
    assert status_code(reply) != 0
    # the Trash page offers Restore, Delete forever and Empty the trash
    html = page(conn, "fileman", path="Trash")
    assert 'name="action" value="restore"' in html
    assert 'name="action" value="emptytrash"' in html
    assert 'name="action" value="copy"' not in html
    reply = call(conn, "fileaction", [("action", "emptytrash"), ("path", "Trash")], "json")
    assert status_code(reply) == 0 and outcome(reply)["text"] == "Trash/top.txt: deleted"
    assert os.listdir(os.path.join(home, "Trash")) == []


def test_pack_and_unpack_from_the_selection(grid):
    _app, alice, conn = grid
    home = alice["home"]
    write(alice, "proj/a.txt", "A")
    write(alice, "proj/sub/b.txt", "B")
    reply = call(conn, "fileaction", [("action", "pack"), ("path", "proj/a.txt"),
                                      ("path", "proj/sub"), ("dst", "bundle.zip")], "json")
    assert status_code(reply) == 0, reply
    assert "packed into proj/bundle.zip" in outcome(reply)["text"]
    with zipfile.ZipFile(os.path.join(home, "proj/bundle.zip")) as archive:
        assert sorted(archive.namelist()) == ["a.txt", "sub/", "sub/b.txt"]
    # unpack beside the archive (in a new folder, so nothing is in the way)
    os.makedirs(os.path.join(home, "other"))
    os.replace(os.path.join(home, "proj/bundle.zip"), os.path.join(home, "other/bundle.zip"))
    reply = call(conn, "fileaction", [("action", "unpack"), ("path", "other/bundle.zip")], "json")
    assert status_code(reply) == 0, reply
    assert "unpacked 2 files into other" in outcome(reply)["text"]
    assert open(os.path.join(home, "other/sub/b.txt")).read() == "B"
    reply = call(conn, "fileaction", [("action", "unpack"), ("path", "other/a.txt")], "json")
    assert status_code(reply) != 0 and "not an archive" in outcome(reply)["text"]
    reply = call(conn, "fileaction", [("action", "pack"), ("path", ".")], "json")
    assert status_code(reply) != 0
    # an archive inside a folder it packs is refused
    reply = call(conn, "fileaction", [("action", "pack"), ("path", "proj"),
                                      ("dst", "proj/sub/self.zip")], "json")
    assert status_code(reply) != 0 and "inside what it packs" in outcome(reply)["text"]
    assert not os.path.exists(os.path.join(home, "proj/sub/self.zip"))


def test_share_from_the_page_downloads_anonymously_and_revoke(grid):
    app, alice, conn = grid
    write(alice, "shared/report.txt", "the report\n")
    reply = call(conn, "fileaction", [("action", "share"), ("path", "shared/report.txt")], "json")
    assert status_code(reply) == 0, reply
    address = re.search(r"/share_redirect/[A-Za-z0-9_-]+/report\.txt", outcome(reply)["text"])
    assert address, reply
    html = page(conn, "fileman")
    rows = listing_rows(html, "sharelinks")
    assert rows[0][:2] == ["shared/report.txt", "read-only"] and rows[0][3] == address.group(0)
    anonymous = https_connection(app)  # no certificate, no session
    status, text = request(anonymous, "GET", address.group(0))
    assert (status, text) == (200, "the report\n")
    share_id = address.group(0).split("/")[2]
    reply = call(conn, "fileaction", [("action", "unshare"), ("path", "shared/report.txt"),
                                      ("share_id", share_id)], "json")
    assert status_code(reply) == 0 and "revoked" in outcome(reply)["text"]
    status, _text = request(anonymous, "GET", address.group(0))
    assert status == 404
    assert listing_rows(page(conn, "fileman"), "sharelinks") == []
    anonymous.close()


def test_search_by_name_and_content_stays_in_the_home(grid, tmp_path):
    _app, alice, conn = grid
    write(alice, "data/Results-2024.csv", "x,y\n")
    write(alice, "data/notes.txt", "the needle is in here\n")
    write(alice, "data/blob.bin", b"needle\x00binary")
    outside = tmp_path / "outside.txt"
    outside.write_text("needle outside the home\n")
    os.symlink(str(outside), os.path.join(alice["home"], "data", "link.txt"))
    os.mkfifo(os.path.join(alice["home"], "data", "pipe"))  # never opened (it would block)
    html = page(conn, "fileman", search="results")
    assert [r[0] for r in listing_rows(html, "filesearch")] == ["data/Results-2024.csv"]
    html = page(conn, "fileman", search="NEEDLE", content="true")
    rows = listing_rows(html, "filesearch")
    assert [(r[0], r[3]) for r in rows] == [("data/notes.txt", "content")]
    html = page(conn, "fileman", search="needle")  # names only: none has it
    assert listing_rows(html, "filesearch") == []
    html = page(conn, "fileman", path="data", search="*.csv")
    assert [r[0] for r in listing_rows(html, "filesearch")] == ["data/Results-2024.csv"]


def test_sorting_sizes_and_download_links(grid):
    _app, alice, conn = grid
    home = alice["home"]
    write(alice, "b-small.txt", "x" * 10)
    write(alice, "a-big.bin", b"y" * (3 * 1024 * 1024 + 200 * 1024))
    write(alice, "c-mid.txt", "z" * 2048)
    os.makedirs(os.path.join(home, "zfolder"))
    os.utime(os.path.join(home, "c-mid.txt"), (1000000000, 1000000000))
    os.utime(os.path.join(home, "a-big.bin"), (1100000000, 1100000000))

    def names(**query):
        return [r[1] for r in listing_rows(page(conn, "fileman", **query))]
    assert names() == ["zfolder/", "a-big.bin", "b-small.txt", "c-mid.txt"]
    assert names(sort="name", order="desc") == ["zfolder/", "c-mid.txt", "b-small.txt",
                                                "a-big.bin"]
    assert names(sort="size") == ["zfolder/", "b-small.txt", "c-mid.txt", "a-big.bin"]
    assert names(sort="size", order="desc") == ["zfolder/", "a-big.bin", "c-mid.txt",
                                                "b-small.txt"]
    assert names(sort="date") == ["zfolder/", "c-mid.txt", "a-big.bin", "b-small.txt"]
    sizes = {r[1]: r[2] for r in listing_rows(page(conn, "fileman"))}
    assert sizes == {"zfolder/": "", "a-big.bin": "3.2 MB", "b-small.txt": "10 B",
                     "c-mid.txt": "2.0 KB"}
    html = page(conn, "fileman")
    assert '<a href="/cert_redirect/a-big.bin" download="a-big.bin">Download</a>' in html
    # the current sort key's link turns the order round
    assert 'href="/cgi-bin/fileman.py?path=.&amp;sort=name&amp;order=desc">Sort by name ' \
        '(ascending)</a>' in html
    # the page loads the file manager's script, which is served
    assert '<script src="/static/files.js" defer></script>' in html
    assert '<script src="/static/files.js" defer></script>' in page(conn, "submitjob",
                                                                     style="files")
    status, text = request(conn, "GET", "/static/files.js")
    assert status == 200 and "uploadchunked" in text


def chunk(conn, key, data, first, total):
    body, ctype = multipart([("action", "put"), ("output_format", "json")],
                            [("files[]", key, data)])
    status, text = request(conn, "POST", "/cgi-bin/uploadchunked.py", body, {
        "Content-Type": ctype,
        "Content-Range": "bytes %d-%d/%d" % (first, first + len(data) - 1, total)})
    assert status == 200, text
    return text


def test_chunked_upload_resumes_from_what_arrived_then_moves_into_place(grid):
    _app, alice, conn = grid
    home = alice["home"]
    os.makedirs(os.path.join(home, "in"))
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = "%d-1700000000000-big.bin" % len(data)
    part = 1024 * 1024
    chunk(conn, key, data[:part], 0, len(data))
    # the widget asks what arrived before sending: one part
    reply = call(conn, "uploadchunked", [("action", "status"), ("files[]filename", key)], "json")
    table = [o for o in reply if o["object_type"] == "table"][0]
    assert table["rows"][0][1] == part
    for first in range(part, len(data), part):
        chunk(conn, key, data[first:first + part], first, len(data))
    reply = call(conn, "upload", [("dir", "in"), ("cached", key), ("filename", "big.bin")],
                 "json")
    assert status_code(reply) == 0, reply
    rows = [o for o in reply if o["object_type"] == "table"][0]["rows"]
    assert rows == [["big.bin", len(data), "uploaded", "stored as in/big.bin"]]
    with open(os.path.join(home, "in/big.bin"), "rb") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest()
    assert not os.path.exists(os.path.join(home, ".upload-cache", key))
    # names are checked: no way out of the cache or the folder
    reply = call(conn, "upload", [("cached", "../top.txt"), ("filename", "x")], "txt")
    assert exit_code(reply) != 0
    reply = call(conn, "upload", [("cached", key), ("filename", "../x")], "txt")
    assert exit_code(reply) != 0
