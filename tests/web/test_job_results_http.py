"""Job results and the Jobs list over HTTP: a job whose commands exit non-zero
is marked (job page and list), stdout is inline and bounded, declared output
files link into the home, the list sorts (also through the index directly),
a new user's Dashboard offers a sample job, and Docs has an anchor per keyword."""

import calendar
import re
import urllib.parse

import pytest

from conftest import exit_code, https_connection, post_fields, wait_for
from mig.backends.jobs import retries_text
from mig.core import jobs as J
from mig.core.jobs import JobService
from mig.core.jobspec import parse_mrsl
from mig.core.keywords import KEYWORDS
from mig.store.pickledb import PickleStore

NOWHERE = "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n\n::JOBNAME::\n%s\n"


def get_file(app, token, href):
    conn = https_connection(app)
    try:
        conn.request("GET", href, headers={"Authorization": "Bearer " + token})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def submit(app, token, text):
    reply = post_fields(app, token, "/cgi-bin/textarea.py",
                 [("output_format", "txt"), ("mrsltextarea_0", text)])
    return re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)


def finished(app, token, job_id):
    def done():
        page = post_fields(app, token, "/cgi-bin/jobview.py",
                    [("output_format", "txt"), ("job_id", job_id)])
        return re.search(r"^Status\s+FINISHED$", page, re.M) and page
    return wait_for(done, timeout=30, what="%s to finish" % job_id)


def html(app, token, backend, **fields):
    return post_fields(app, token, "/cgi-bin/%s.py" % backend, list(fields.items()))


def list_row(page, job_id):
    """The <tr> of the Jobs list whose id cell links to job_id."""
    table = page.split('<table data-kind="jobs">', 1)[1].split("</table>", 1)[0]
    rows = [r for r in table.split("<tr>")
            if '<a href="/cgi-bin/jobview.py?job_id=%s">%s</a>' % (job_id, job_id) in r]
    assert len(rows) == 1, table
    return rows[0]


def kind_table(page, kind):
    return page.split('<table data-kind="%s">' % kind, 1)[1].split("</table>", 1)[0]


BADGE = re.compile(r'<span class="badge exit-failed"[^>]*>exit (\d+)</span>')


def test_a_job_that_exits_3_is_marked_on_its_page_and_in_the_list(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    bad = submit(app, token, "::EXECUTE::\necho fine\nexit 3\n")
    good = submit(app, token, "::EXECUTE::\necho fine\n")
    finished(app, token, bad)
    finished(app, token, good)
    page = html(app, token, "jobview", job_id=bad)
    status = [r for r in kind_table(page, "job").split("<tr>") if "<td>Status</td>" in r][0]
    assert BADGE.search(status).group(1) == "3"
    assert "1 of 2 exited non-zero (the last with 3)" in kind_table(page, "job")
    codes = kind_table(page, "exitcodes").split("<tr>")
    assert [BADGE.search(r).group(1) for r in codes if "<td>exit 3</td>" in r] == ["3"]
    assert not BADGE.search([r for r in codes if "<td>echo fine</td>" in r][0])
    assert not BADGE.search(kind_table(html(app, token, "jobview", job_id=good), "job"))
    jobs = html(app, token, "jobman")
    assert BADGE.search(list_row(jobs, bad)).group(1) == "3"
    assert not BADGE.search(list_row(jobs, good))
    # scripts keep MiG's format: the state is just the state
    txt = post_fields(app, token, "/cgi-bin/jobview.py", [("output_format", "txt"), ("job_id", bad)])
    assert re.search(r"^Status\s+FINISHED$", txt, re.M)


def test_stdout_inline_and_declared_outputs_linked_into_the_home(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    job_id = submit(app, token, "::EXECUTE::\necho the answer is 42\necho to-stderr >&2\n"
                                "echo kept > result.txt\n\n::OUTPUTFILES::\n"
                                "result.txt results/+JOBID+.txt\nmissing.txt\n")
    finished(app, token, job_id)
    page = html(app, token, "jobview", job_id=job_id)
    assert re.search(r'<pre id="job-stdout">(.*?)</pre>', page, re.S).group(1) == \
        "the answer is 42\n"
    assert re.search(r'<pre id="job-stderr">(.*?)</pre>', page, re.S).group(1) == "to-stderr\n"
    outputs = kind_table(page, "outputfiles")
    dst = "results/%s.txt" % job_id
    href = "/cert_redirect/" + urllib.parse.quote(dst)
    assert '<td><a href="%s">%s</a></td><td>5 B</td><td>result.txt</td>' % (href, dst) \
        in outputs
    assert "<td>missing.txt</td><td>not there: see the job&#x27;s io-status</td>" in outputs
    assert get_file(app, token, href) == (200, "kept\n")
    whole = re.search(r'<a href="([^"]+\.stdout)">The whole file', page).group(1)
    assert get_file(app, token, whole) == (200, "the answer is 42\n")


def test_long_stdout_shows_its_last_64_kb(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    job_id = submit(app, token, "::EXECUTE::\nseq 1 30000\n")  # 168,894 bytes
    finished(app, token, job_id)
    page = html(app, token, "jobview", job_id=job_id)
    shown = re.search(r'<pre id="job-stdout">(.*?)</pre>', page, re.S).group(1)
    assert len(shown) <= 64 * 1024 and shown.endswith("\n29999\n30000\n")
    assert shown.split("\n", 1)[0].isdigit() and "\n1\n" not in shown  # whole lines, the end
    assert "The last 64.0 KB of 164.9 KB:" in page


def test_retries_used_agree_with_gave_up_after():
    spec = {"RETRIES": 2}
    assert retries_text({"SPEC": spec}) == "0 of 2"
    assert retries_text({"SPEC": spec, "RETRY_COUNT": 1}) == "1 of 2 (1 failed run)"
    # the gridd says "gave up after 2 retries" with RETRY_COUNT 3 (failed runs)
    assert retries_text({"SPEC": spec, "RETRY_COUNT": 3}) == "2 of 2 (3 failed runs)"


def test_the_jobs_list_sorts_and_offers_actions_per_row(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    ids = [submit(app, token, NOWHERE % name) for name in ("bravo", "charlie", "alpha")]
    reply = post_fields(app, token, "/cgi-bin/jobaction.py",
                 [("output_format", "txt"), ("action", "cancel"), ("job_id", ids[1])])
    assert exit_code(reply) == 0, reply

    def order(sort):
        page = post_fields(app, token, "/cgi-bin/jobman.py", [("output_format", "txt"),
                                                       ("sort", sort)])
        return re.findall(r"^(\d+_\S+) ", page, re.M)
    assert order("newest") == [ids[2], ids[1], ids[0]]
    assert order("oldest") == [ids[0], ids[1], ids[2]]
    assert order("name") == [ids[2], ids[0], ids[1]]
    assert order("state") == [ids[1], ids[2], ids[0]]  # CANCELED before QUEUED
    searched = post_fields(app, token, "/cgi-bin/jobman.py", [("output_format", "txt"),
                                                       ("sort", "name"), ("name", "a")])
    assert re.findall(r"^(\d+_\S+) ", searched, re.M) == [ids[2], ids[0], ids[1]]
    bad = post_fields(app, token, "/cgi-bin/jobman.py", [("output_format", "txt"), ("sort", "size")])
    assert exit_code(bad) != 0 and "unknown sort 'size'" in bad
    page = html(app, token, "jobman", sort="name")
    queued, canceled = list_row(page, ids[0]), list_row(page, ids[1])
    assert 'name="action" value="cancel"' in queued and 'value="resubmit"' in queued
    assert 'name="action" value="cancel"' not in canceled and 'value="resubmit"' in canceled
    assert '>View</a>' in queued
    # the bulk form no longer wraps the table: its checkboxes join it by form=
    assert 'form="select-jobs"' in queued and '<form id="select-jobs"' in page


def test_a_new_users_dashboard_offers_the_sample_job(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    page = html(app, token, "dashboard")
    sample = re.search(r'<form method="post" action="/cgi-bin/samplejob.py" class="inline">'
                       r'(.*?)</form>', page, re.S).group(1)
    assert 'name="_csrf"' in sample and ">Run a sample job</button>" in sample
    assert '<a href="/cgi-bin/docs.py?topic=start">Getting started</a>' in page
    assert '<a href="/cgi-bin/downloads.py">' in page
    assert 'class="cards"' not in page  # no wall of zeros
    reply = post_fields(app, token, "/cgi-bin/samplejob.py", [("output_format", "txt")])
    job_id = re.search(r"Job (\S+) submitted\.", reply).group(1)
    done = finished(app, token, job_id)
    assert re.search(r"^Commands\s+all exited 0$", done, re.M)
    assert get_file(app, token, "/cert_redirect/sample-%s.txt" % job_id)[0] == 200
    page = html(app, token, "dashboard")
    assert 'class="cards"' in page and "samplejob.py" not in page


def test_every_keyword_has_an_anchor_that_the_fields_help_links_to(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    docs = html(app, token, "docs", topic="mrsl")
    form = html(app, token, "submitjob")
    for kw in KEYWORDS:
        assert docs.count(' id="%s"' % kw.name) == 1, kw.name
        assert 'href="/cgi-bin/docs.py?topic=mrsl#%s"' % kw.name in form, kw.name


# -- the index's orders, without a server --------------------------------------------

T0 = calendar.timegm((2025, 7, 2, 9, 5, 3))


@pytest.mark.parametrize("trigrams", [False, True], ids=["list-index", "trigram-index"])
def test_the_index_sorts_pages_and_searches(tmp_path, monkeypatch, trigrams):
    from mig.store import jobqueries as jobdb
    monkeypatch.setattr(jobdb, "FTS_FROM", 0 if trigrams else 10 ** 9)
    now = [float(T0)]
    service = JobService(PickleStore(str(tmp_path / "state")), "grid.example.org.0",
                         clock=lambda: now[0])
    names = ["kilo-run", "alpha-run", "mike-run", "bravo-run", "lima-test", "alpha-test"]
    ids = []
    for name in names:
        now[0] += 60
        ids.append(service.submit("alice", parse_mrsl(NOWHERE % name), "x")["JOB_ID"])
        if name == "mike-run":
            service.checkpoint()  # the newer ones are not in the trigram index yet
    service.act("alice", ids[2], "cancel")
    index = service.index

    def page(order, **kwargs):
        return [e.job_id for e in index.page("alice", order=order, limit=100, **kwargs)]

    def search(order, text, offset=0, limit=100):
        matched, entries = index.search("alice", text, order=order, offset=offset,
                                        limit=limit)
        return matched, [e.job_id for e in entries]
    assert page("newest") == ids[::-1] and page("oldest") == ids
    assert page("name") == [ids[1], ids[5], ids[3], ids[0], ids[4], ids[2]]
    assert page("state") == [ids[2], ids[5], ids[4], ids[3], ids[1], ids[0]]
    assert page("oldest", state=J.QUEUED) == [ids[0], ids[1], ids[3], ids[4], ids[5]]
    assert [e.job_id for e in index.page("alice", order="name", offset=1, limit=2)] == \
        [ids[5], ids[3]]
    assert search("newest", "run") == (4, [ids[3], ids[2], ids[1], ids[0]])
    assert search("oldest", "run") == (4, [ids[0], ids[1], ids[2], ids[3]])
    assert search("name", "run") == (4, [ids[1], ids[3], ids[0], ids[2]])
    assert search("state", "run") == (4, [ids[2], ids[3], ids[1], ids[0]])
    assert search("name", "run", offset=1, limit=2) == (4, [ids[3], ids[0]])
    # sorting by name or state orders only the newest SORT_WINDOW jobs (bounded)
    monkeypatch.setattr(jobdb, "SORT_WINDOW", 3)
    assert page("name") == [ids[5], ids[3], ids[4]]
    assert search("name", "run")[1] == [ids[1], ids[3], ids[2]]


def test_sorted_pages_keep_their_order_across_pages(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    names = ["job-%02d" % n for n in range(55)][::-1]  # submitted in reverse name order
    reply = post_fields(app, token, "/cgi-bin/textarea.py", [("output_format", "txt")] + [
        ("mrsltextarea_%d" % n, NOWHERE % name) for n, name in enumerate(names)])
    assert exit_code(reply) == 0, reply
    first = html(app, token, "jobman", sort="name")
    assert '<a href="/cgi-bin/jobman.py?sort=name&amp;page=2">2</a>' in first
    listed = []
    for page in ("1", "2"):
        reply = post_fields(app, token, "/cgi-bin/jobman.py", [("output_format", "txt"),
                                                        ("sort", "name"), ("page", page)])
        listed += re.findall(r"^\d+_\S+ +\d+_\S+ +QUEUED +(job-\d+) ", reply, re.M)
    assert listed == sorted(names)
