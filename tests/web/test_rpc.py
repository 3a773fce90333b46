"""XML-RPC and JSON-RPC (mig.web.rpc) against a real appliance process."""

import base64
import contextlib
import io
import json
import os
import re
import ssl
import subprocess
import xmlrpc.client

import pytest

from conftest import (ROOT, Appliance, ENTRY, https_connection, portal_login, require_tool,
                      wait_for)
from mig import backends
from mig.backends.catalog import load_all
from mig.core import auth
from mig.web import rpc

XML = "/cgi-bin/xmlrpcinterface.py"
JSON_RPC = "/cgi-bin/jsonrpcinterface.py"
HELLO = "::EXECUTE::\necho rpc\n"


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One appliance for the whole module, with alice; stopped by its PID."""
    import sys
    app = Appliance([sys.executable, ENTRY], str(tmp_path_factory.mktemp("rpc") / "state"))
    alice = app.add_user("alice")
    app.cli("user", "add", "bob", "--password", "bob-password")
    app.start()
    yield app, alice
    app.stop()
    app.remove_work_folder()


def proxy(app, user=None, path=XML, **kwargs):
    ctx = ssl.create_default_context(cafile=app.ca)
    if user is not None:
        ctx.load_cert_chain(user["cert"], user["key"])
    return xmlrpc.client.ServerProxy(app.url + path, context=ctx, **kwargs)


def raw_post(app, path, body, headers=None, user=None):
    """POST bytes; returns (status, headers, body bytes)."""
    conn = https_connection(app, user)
    try:
        conn.request("POST", path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def jsonrpc(app, payload, token, path=JSON_RPC):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "python-test"}
    if token:
        headers["Authorization"] = "Bearer " + token
    status, _headers, data = raw_post(app, path, body, headers)
    return status, (json.loads(data) if data else None)


def objects_of(objects, kind):
    return [o for o in objects if o["object_type"] == kind]


def job_id_of(objects):
    rows = objects_of(objects, "table")[0]["rows"]
    assert rows[0][1] == 1, rows
    return rows[0][2]


def fault_of(body):
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(body)
    return fault.value


# -- XML-RPC ------------------------------------------------------------------------
def test_xmlrpc_introspection(grid):
    app, alice = grid
    server = proxy(app, alice)
    methods = server.system.listMethods()
    names = sorted(load_all())
    assert methods == names + ["system.listMethods", "system.methodHelp",
                               "system.methodSignature"]
    assert {"textarea", "jobstatus", "ls"} <= set(methods)
    signature = server.system.methodSignature("jobstatus")
    assert signature.startswith("jobstatus(struct)")
    assert "job_id: job_id, optional, repeated, default ['*']" in signature
    textarea = server.system.methodSignature("textarea")
    assert "mrsltextarea_0, mrsltextarea_1, ...: text, required, repeated" in textarea
    assert "changes state" in textarea
    assert server.system.methodHelp("ls").startswith(backends.REGISTRY["ls"].help)
    assert "mrsltextarea_0" in server.system.methodHelp("textarea")
    assert "listMethods" in server.system.methodSignature("system.listMethods")
    for call in (lambda: server.system.methodHelp("nosuch"),
                 lambda: server.system.methodSignature("nosuch"),
                 lambda: server.system.nosuch()):
        with pytest.raises(xmlrpc.client.Fault) as fault:
            call()
        assert fault.value.faultCode == 1 and "no such method" in fault.value.faultString
    with pytest.raises(xmlrpc.client.Fault) as fault:
        server.system.methodHelp()
    assert fault.value.faultCode == 102


def test_xmlrpc_job_journey(grid):
    app, alice = grid
    server = proxy(app, alice)
    objects, (code, description) = server.textarea({"mrsltextarea_0": [HELLO]})
    assert (code, description) == (0, "OK"), objects
    assert objects_of(objects, "header")
    job_id = job_id_of(objects)

    def status():
        objs, (rc, _text) = server.jobstatus({"job_id": [job_id]})
        assert rc == 0, objs
        jobs = objects_of(objs, "job_list")[0]["jobs"]
        return jobs[0]["status"] == "FINISHED" and jobs[0]
    job = wait_for(status, 60, 0.3, "FINISHED")
    assert job["job_id"] == job_id
    objects, (code, _text) = server.ls({"path": ["."]})
    assert code == 0
    listing = objects_of(objects, "dir_listing")
    assert listing and listing[0]["path"] == "."
    names = [e["name"] for e in listing[0]["entries"]]
    assert "job_output" in names, names
    objects, (code, _text) = server.cat({"path": ["job_output/%s/%s.stdout" % (job_id, job_id)]})
    assert code == 0 and "rpc" in json.dumps(objects)


def test_xmlrpc_fields_and_values(grid):
    app, alice = grid
    server = proxy(app, alice)
    objects, (code, description) = server.ls({"nosuch_field": ["x"]})
    assert (code, description) == (102, "Invalid argument")
    assert "unexpected field: nosuch_field" in objects_of(objects, "error_text")[0]["text"]
    objects, (code, _text) = server.jobstatus({"max_jobs": ["many"]})
    assert code == 102 and "whole number" in json.dumps(objects)
    objects, (code, _text) = server.textarea({})  # required field missing
    assert code == 102 and "missing required field" in json.dumps(objects)
    # single values, ints and blanks as the form parser takes them
    objects, (code, _text) = server.jobstatus({"job_id": "*", "max_jobs": 5, "flags": ""})
    assert code == 0, objects
    objects, (code, _text) = server.ls({"path": ["", "."], "flags": ["", "a"]})
    assert code == 0 and objects_of(objects, "dir_listing")
    objects, (code, _text) = server.jobstatus()  # no struct at all: the defaults
    assert code == 0
    with pytest.raises(xmlrpc.client.Fault) as fault:
        server.jobstatus({"job_id": ["*"]}, {"flags": ["s"]})
    assert fault.value.faultCode == 102 and "one struct" in fault.value.faultString
    with pytest.raises(xmlrpc.client.Fault) as fault:
        server.jobstatus({"job_id": [["nested"]]})
    assert fault.value.faultCode == 102
    with pytest.raises(xmlrpc.client.Fault) as fault:
        server.nosuchmethod({})
    assert (fault.value.faultCode, fault.value.faultString) == (1, "no such method nosuchmethod")
    # a backend error (not a fault): a file that is not there
    objects, (code, _text) = server.cat({"path": ["no-such-file.txt"]})
    assert code != 0 and objects_of(objects, "file_not_found"), objects


def test_xmlrpc_authentication(grid):
    app, alice = grid
    with pytest.raises(xmlrpc.client.ProtocolError) as refused:
        proxy(app).system.listMethods()
    assert refused.value.errcode == 401
    call = xmlrpc.client.dumps(({"path": ["."]},), "ls").encode()
    for headers in ({}, {"Authorization": "Bearer mig_wrong"}):
        status, reply_headers, body = raw_post(app, XML, call, headers)
        assert status == 401 and reply_headers["WWW-Authenticate"] == "Bearer"
        fault = fault_of(body)
        assert fault.faultCode == 104
    assert "client certificate" in fault_of(raw_post(app, XML, call)[2]).faultString
    # a Bearer token works as well as the certificate, also under /wsgi-bin/
    status, _headers, body = raw_post(app, "/wsgi-bin/xmlrpcinterface.py", call,
                                      {"Authorization": "Bearer " + alice["token"]})
    (result,), _method = xmlrpc.client.loads(body)
    objects, (code, _text) = result
    assert status == 200 and code == 0 and objects_of(objects, "dir_listing")


def test_xmlrpc_csrf_for_browser_requests(grid):
    app, alice = grid
    origin = {"Origin": "https://evil.example"}
    server = proxy(app, alice, headers=list(origin.items()))
    objects, (code, _text) = server.textarea({"mrsltextarea_0": [HELLO]})
    assert code == 104 and "CSRF" in json.dumps(objects)
    with open(os.path.join(app.state, "secret.key"), "rb") as handle:
        token = auth.csrf_token(handle.read(), "alice")
    objects, (code, _text) = server.textarea({"mrsltextarea_0": [HELLO], "_csrf": [token]})
    assert code == 0, objects
    # a read-only method needs no token, and neither does a script's call
    assert server.ls({})[1][0] == 0
    assert proxy(app, alice).textarea({"mrsltextarea_0": [HELLO]})[1][0] == 0


def test_xmlrpc_with_a_portal_session(grid):
    app, _alice = grid
    conn = https_connection(app)
    resp, _body, cookie = portal_login(conn, "bob", "bob-password", "/")
    conn.close()
    assert resp.status == 303
    session = cookie.split("=", 1)[1]
    server = proxy(app, headers=[("Cookie", cookie)])
    assert server.ls({})[1][0] == 0
    objects, (code, _text) = server.textarea({"mrsltextarea_0": [HELLO]})
    assert code == 104 and "CSRF" in json.dumps(objects)
    with open(os.path.join(app.state, "secret.key"), "rb") as handle:
        token = auth.csrf_token(handle.read(), "bob", session)
    objects, (code, _text) = server.textarea({"mrsltextarea_0": [HELLO], "_csrf": token})
    assert code == 0, objects


def test_xmlrpc_reply_with_control_characters(grid):
    app, alice = grid
    conn = https_connection(app, alice)
    data = "red \x1b[31mtext\x00\x07 ok\n".encode()
    conn.request("PUT", "/cert_redirect/colours.txt", body=data,
                 headers={"User-Agent": "python-test"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read().startswith(b"0")
    conn.close()
    objects, (code, _text) = proxy(app, alice).cat({"path": ["colours.txt"]})
    assert code == 0
    assert objects_of(objects, "file_output")[0]["text"] == "red \ufffd[31mtext\ufffd\ufffd ok\n"
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "cat", "id": 1,
                                  "params": {"path": "colours.txt"}}, alice["token"])
    assert objects_of(reply["result"][0], "file_output")[0]["text"] == data.decode()


@pytest.mark.parametrize("body,words", [
    (b"this is not xml", "malformed"),
    (b"<?xml version='1.0'?><methodCall><methodName>ls</methodName><params>", "malformed"),
    (b"<methodCall><params></params></methodCall>", "no methodName"),
    (b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
     b"<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>"
     b"<methodCall><methodName>&lol1;</methodName></methodCall>", "DTD"),
    (b"<?xml version='1.0'?><!doctype x SYSTEM 'file:///etc/passwd'><methodCall/>", "DTD"),
    ("<?xml version='1.0' encoding='utf-16'?><!DOCTYPE x []><methodCall/>".encode("utf-16"),
     "UTF-8"),
    (b"\xff\xfe<\x00m\x00", "UTF-8"),
    (b"<methodCall><methodName>ls</methodName><params><param><value><int>twelve"
     b"</int></value></param></params></methodCall>", "malformed"),
    (b"<methodResponse><fault><value><struct></struct></value></fault></methodResponse>",
     "malformed"),
    (b"", "malformed"),
])
def test_xmlrpc_bad_bodies_are_faults(grid, body, words):
    app, alice = grid
    status, headers, reply = raw_post(app, XML, body, {"Content-Type": "text/xml"}, alice)
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    fault = fault_of(reply)
    assert words in fault.faultString and fault.faultCode == 100, fault


def test_xmlrpc_limits_and_methods(grid):
    app, alice = grid
    conn = https_connection(app, alice)
    conn.putrequest("POST", XML)
    conn.putheader("Content-Length", str(rpc.MAX_RPC_BYTES + 1))
    conn.endheaders()  # the body is never sent: the reply must not wait for it
    resp = conn.getresponse()
    assert resp.status == 200 and "too large" in fault_of(resp.read()).faultString
    conn.close()
    conn = https_connection(app, alice)
    conn.request("GET", XML)
    resp = conn.getresponse()
    assert resp.status == 405 and resp.getheader("Allow") == "POST"
    resp.read()
    conn.close()


# -- JSON-RPC -----------------------------------------------------------------------
def test_jsonrpc_single_calls(grid):
    app, alice = grid
    token = alice["token"]
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "textarea",
                                  "params": {"mrsltextarea_0": [HELLO]}, "id": "submit"},
                            token)
    assert status == 200 and reply["id"] == "submit" and reply["jsonrpc"] == "2.0"
    objects, (code, description) = reply["result"]
    assert (code, description) == (0, "OK")
    job_id = job_id_of(objects)
    # params as a list of one struct, via MiG's other name for the endpoint
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "jobstatus",
                                  "params": [{"job_id": job_id}], "id": 7}, token,
                            "/wsgi-bin/jsoninterface.py")
    objects, (code, _text) = reply["result"]
    assert code == 0 and objects_of(objects, "job_list")[0]["jobs"][0]["job_id"] == job_id
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "ls",
                                  "params": {"bogus": ["1"]}, "id": 8}, token)
    assert status == 200 and reply["result"][1] == [102, "Invalid argument"]
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "system.methodSignature",
                                  "params": ["ls"], "id": 9}, token)
    assert reply["result"].startswith("ls(struct)")


def test_jsonrpc_errors(grid):
    app, alice = grid
    token = alice["token"]
    status, reply = jsonrpc(app, b'{"jsonrpc": "2.0", "method": ', token)
    assert status == 200 and reply["error"]["code"] == -32700 and reply["id"] is None
    status, reply = jsonrpc(app, b"[" * 100000, token)
    assert status == 200 and reply["error"]["code"] == -32700
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "nosuch", "id": 3}, token)
    assert reply["error"] == {"code": -32601, "message": "no such method nosuch"}
    assert reply["id"] == 3
    for params in ("x", [1, 2], [{"path": ["."]}, {}]):
        status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "ls", "params": params,
                                      "id": 4}, token)
        assert reply["error"]["code"] == -32602, reply
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "ls",
                                  "params": {"path": [{"a": 1}]}, "id": 5}, token)
    assert reply["error"]["code"] == -32602 and "path" in reply["error"]["message"]
    assert reply["error"]["data"] == {"exit_code": 102}
    status, reply = jsonrpc(app, {"jsonrpc": "1.0", "method": "ls", "id": 6}, token)
    assert reply["error"]["code"] == -32600
    status, reply = jsonrpc(app, {"jsonrpc": "2.0", "id": 6}, token)
    assert reply["error"]["code"] == -32600
    status, reply = jsonrpc(app, [], token)
    assert reply["error"]["code"] == -32600
    status, reply = jsonrpc(app, [{"jsonrpc": "2.0", "method": "ls", "id": n}
                                  for n in range(rpc.MAX_BATCH + 1)], token)
    assert reply["error"]["code"] == -32600
    for bad_token in (None, "mig_wrong"):
        status, reply = jsonrpc(app, {"jsonrpc": "2.0", "method": "ls", "id": 1}, bad_token)
        assert status == 401 and reply["error"]["code"] == -32001
        assert reply["error"]["data"] == {"exit_code": 104}


def test_jsonrpc_batch(grid):
    app, alice = grid
    batch = [{"jsonrpc": "2.0", "method": "system.listMethods", "id": 1},
             {"jsonrpc": "2.0", "method": "ls", "params": {"path": ["."]}, "id": 2},
             {"jsonrpc": "2.0", "method": "nosuch", "id": 3},
             {"jsonrpc": "2.0", "method": "jobstatus"},  # a notification: no reply
             "not a request",
             {"jsonrpc": "2.0", "method": "download", "params": {"what": "ca"}, "id": 4}]
    status, replies = jsonrpc(app, batch, alice["token"])
    assert status == 200 and len(replies) == 5
    by_id = {r["id"]: r for r in replies}
    assert "ls" in by_id[1]["result"] and "system.methodHelp" in by_id[1]["result"]
    assert by_id[2]["result"][1] == [0, "OK"]
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[None]["error"]["code"] == -32600
    binary = objects_of(by_id[4]["result"][0], "binary")[0]
    with open(app.ca, "rb") as handle:
        assert base64.b64decode(binary["data"]) == handle.read()
    status, replies = jsonrpc(app, [{"jsonrpc": "2.0", "method": "ls"}], alice["token"])
    assert status == 204 and replies is None


def test_xmlrpc_binary_reply(grid):
    app, alice = grid
    objects, (code, _text) = proxy(app, alice).download({"what": ["ca"]})
    assert code == 0
    with open(app.ca, "rb") as handle:
        assert objects_of(objects, "binary")[0]["data"].data == handle.read()


# -- the examples in docs/rpc.md ----------------------------------------------------
def doc_block(tag):
    with open(os.path.join(ROOT, "docs", "rpc.md"), encoding="utf-8") as handle:
        blocks = re.findall(r"^```%s\n(.*?)^```$" % tag, handle.read(), re.M | re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_doc_python_example(grid):
    app, alice = grid
    code = doc_block("python")
    for old, new in (("https://127.0.0.1:8443", app.url), ("mig-state/ca/ca.crt", app.ca),
                     ("mig-state/users/alice/user.crt", alice["cert"]),
                     ("mig-state/users/alice/user.key", alice["key"])):
        assert old in code
        code = code.replace(old, new)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/rpc.md", "exec"), {})
    assert re.match(r"^\S+ (RECEIVED|QUEUED|EXECUTING|FINISHED) 0 OK$", out.getvalue()), \
        out.getvalue()


def test_doc_curl_example(grid):
    require_tool("curl", "apt-get install curl")
    app, alice = grid
    env = dict(os.environ, CA=app.ca, TOKEN=alice["token"], URL=app.url)
    result = subprocess.run(["bash", "-c", doc_block("sh")], env=env, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["id"] == 1 and reply["result"][1] == [0, "OK"]
    assert objects_of(reply["result"][0], "dir_listing")[0]["path"] == "."


# -- no server: the parsing and conversion guards ---------------------------------------
def test_parse_and_convert_units():
    method, params = rpc.parse_xml_call(xmlrpc.client.dumps(({"a": ["1"]},), "ls"))
    assert (method, params) == ("ls", ({"a": ["1"]},))
    with pytest.raises(rpc.RpcError):
        rpc.parse_xml_call("<?xml version='1.0'?><!ENTITY x 'y'><methodCall/>")
    assert rpc.struct_fields(({"a": "x", "b": 3, "c": True, "d": ["", None, "v"],
                               "e": "", "f": b"bin", "g": 2.5},)) == \
        {"a": ["x"], "b": ["3"], "c": ["true"], "d": ["v"], "f": ["bin"], "g": ["2.5"]}
    assert rpc.struct_fields(()) == {}
    with pytest.raises(rpc.RpcError):
        rpc.struct_fields(("x",))
    with pytest.raises(rpc.RpcError):
        rpc.struct_fields(({"a": [b"\xff"]},))
    value = rpc.plain({"n": None, "big": 2 ** 40, "b": b"\x00", "t": (1, 2), 3: "k",
                       "f": float("nan")}, xmlrpc.client.Binary)
    assert value["n"] == "" and value["big"] == str(2 ** 40) and value["t"] == [1, 2]
    assert value["b"].data == b"\x00" and value["3"] == "k" and value["f"] == "nan"
    xmlrpc.client.dumps((value,), methodresponse=True)  # writable as XML-RPC
    odd = rpc.plain({"k\x01": ["a\x1bb\udcff\U0001F600\t"]}, xmlrpc.client.Binary)
    assert odd == {"k\ufffd": ["a\ufffdb\ufffd\U0001F600\t"]}
    assert xmlrpc.client.loads(xmlrpc.client.dumps((odd,), methodresponse=True))[0] == (odd,)
    assert rpc.plain({"big": 2 ** 40, "b": b"\x00"}, rpc._b64) == {"big": 2 ** 40, "b": "AA=="}
