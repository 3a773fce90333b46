"""A VGrid's public and private page, wiki and forum over HTTPS: who reads and
writes each, the public page without login and without any script, wiki
history, and forum subscribers told of new posts."""

import json
import re
import subprocess
import urllib.parse

import pytest

from conftest import exit_code, grid_with_vgrid, post_backend


@pytest.fixture
def grid(appliance_factory):
    return grid_with_vgrid(appliance_factory, ("alice", "bob", "carol", "dave"),
                           {"bob": "Lab", "carol": "Lab"}, resource_keepalive="0")


def anonymous(app, path):
    """(status, headers text, body) of a GET without any credentials."""
    result = subprocess.run(["curl", "-sS", "-i", "--cacert", app.ca, app.url + path],
                            capture_output=True, text=True, timeout=60)
    head, _sep, body = result.stdout.partition("\n\n")  # text mode: \r\n read as \n
    return int(head.split()[1]), head, body


HOSTILE = ("# Welcome\n**Lab** studies <script>alert(1)</script> things.\n\n"
           "- [docs](https://example.org/docs)\n- [bad](javascript:alert(1))\n"
           '- <img src=x onerror="alert(2)">\n')


def test_pages_public_without_login_and_never_script(grid):
    app, u = grid
    reply = post_backend(app, u["alice"], "editvgridpage", [
        ("vgrid_name", "Lab"), ("page", "public"), ("text", HOSTILE)])
    assert exit_code(reply) == 0, reply
    status, head, body = anonymous(app, "/vgrid/Lab/")
    assert status == 200 and "default-src 'none'" in head
    page = body.split('<div class="markup" id="public-page">', 1)[1].split("</div>", 1)[0]
    assert page.startswith("<h2>Welcome</h2>")
    assert "<strong>Lab</strong> studies &lt;script&gt;alert(1)&lt;/script&gt; things." in page
    assert '<a href="https://example.org/docs" rel="nofollow noopener">docs</a>' in page
    assert "<script" not in page and "javascript:" not in page.replace("(javascript:", "")
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert anonymous(app, "/vgrid/Nope/")[0] == 404
    # Owners write the pages; members read the private one; others read neither.
    assert exit_code(post_backend(app, u["bob"], "editvgridpage", [
        ("vgrid_name", "Lab"), ("page", "public"), ("text", "defaced")])) == 104
    assert exit_code(post_backend(app, u["alice"], "editvgridpage", [
        ("vgrid_name", "Lab"), ("page", "private"), ("text", "the door code is 1234")])) == 0
    assert "the door code is 1234" in post_backend(app, u["bob"], "showvgridprivatefile",
                                                   [("vgrid_name", "Lab")])
    reply = post_backend(app, u["dave"], "vgridpage", [("vgrid_name", "Lab"),
                                                       ("page", "private")])
    assert exit_code(reply) == 104 and "1234" not in reply


def test_wiki_pages_keep_their_history(grid):
    app, u = grid
    assert exit_code(post_backend(app, u["bob"], "editvgridwiki", [
        ("vgrid_name", "Lab"), ("page", "Home"), ("text", "first by bob, see [[Results]]")])) == 0
    assert exit_code(post_backend(app, u["alice"], "editvgridwiki", [
        ("vgrid_name", "Lab"), ("page", "Home"), ("text", "second by alice")])) == 0
    reply = post_backend(app, u["carol"], "vgridwiki", [("vgrid_name", "Lab")])
    assert "second by alice" in reply and "first by bob" not in reply
    assert re.search(r"^2\s+alice\s", reply, re.M) and re.search(r"^1\s+bob\s", reply, re.M)
    old = post_backend(app, u["carol"], "vgridwiki", [("vgrid_name", "Lab"), ("revision", "1")])
    assert "first by bob, see [[Results]]" in old
    html = app.curl(u["carol"], "URL/cgi-bin/vgridwiki.py?vgrid_name=Lab&revision=1")
    link = "/cgi-bin/vgridwiki.py?" + urllib.parse.urlencode({"vgrid_name": "Lab",
                                                              "page": "Results"})
    assert '<a href="%s">Results</a>' % link.replace("&", "&amp;") in html
    for backend, fields in (("vgridwiki", []), ("editvgridwiki", [("page", "Home"),
                                                                  ("text", "x")])):
        assert exit_code(post_backend(app, u["dave"], backend,
                                      [("vgrid_name", "Lab")] + fields)) == 104


def test_forum_threads_replies_and_subscribers(grid):
    app, u = grid
    reply = post_backend(app, u["bob"], "vgridforumaction", [
        ("vgrid_name", "Lab"), ("action", "post"), ("msg_subject", "Beam time"),
        ("msg_body", "Who takes Friday?")])
    assert exit_code(reply) == 0, reply
    threads = json.loads(app.curl(u["alice"], "URL/cgi-bin/vgridforum.py?vgrid_name=Lab"
                                              "&output_format=json"))
    rows = [o for o in threads if o.get("kind") == "forumthreads"][0]["rows"]
    assert [(r[0]["text"], r[1], r[2]) for r in rows] == [("Beam time", "bob", 0)]
    thread_id = urllib.parse.parse_qs(rows[0][0]["href"].split("?", 1)[1])["thread"][0]
    # carol follows the whole forum; alice replies: bob (the starter) and carol are told.
    assert exit_code(post_backend(app, u["carol"], "vgridforumaction", [
        ("vgrid_name", "Lab"), ("action", "subscribe_all")])) == 0
    assert exit_code(post_backend(app, u["alice"], "vgridforumaction", [
        ("vgrid_name", "Lab"), ("action", "reply"), ("thread", thread_id),
        ("msg_body", "I do.")])) == 0
    for who in ("bob", "carol"):
        inbox = post_backend(app, u[who], "inbox", [])
        assert "[Lab forum] Beam time" in inbox and "alice wrote:" in inbox, inbox
    assert "[Lab forum]" not in post_backend(app, u["alice"], "inbox", [])
    shown = post_backend(app, u["carol"], "vgridforum", [
        ("vgrid_name", "Lab"), ("action", "show_thread"), ("thread", thread_id)])
    assert shown.index("Who takes Friday?") < shown.index("I do.")
    assert exit_code(post_backend(app, u["dave"], "vgridforum", [("vgrid_name", "Lab")])) == 104
    assert exit_code(post_backend(app, u["dave"], "vgridforumaction", [
        ("vgrid_name", "Lab"), ("action", "reply"), ("thread", thread_id),
        ("msg_body", "spam")])) == 104
