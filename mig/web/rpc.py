"""MiG's XML-RPC and JSON-RPC interfaces over the same backends.

Endpoints (POST only): ``/cgi-bin/xmlrpcinterface.py`` (also under
``/wsgi-bin/``) speaks XML-RPC; ``jsonrpcinterface.py`` and MiG's other
name ``jsoninterface.py`` speak JSON-RPC 2.0 (batches too).  A method is a
backend's name and takes ONE struct ``{field: [values]}``; it returns
``[output_objects, [exit_code, description]]``.  ``system.listMethods``,
``system.methodSignature(name)`` and ``system.methodHelp(name)`` describe
the methods.

Callers authenticate as for every other request (client certificate,
Bearer token or session) and every call goes through the dispatcher's own
CSRF check, validation and error path (``Dispatcher.run_backend``): a
refused field is exit code 102 in the reply, not a fault.  Protocol
errors (bad XML or JSON, unknown method, badly shaped params) are faults
or JSON-RPC error objects, never HTTP 500.  Bodies are bounded, must be
UTF-8 and may not declare a DTD or entities (no billion laughs); nothing is
ever unpickled or evaluated.
"""

import base64
import datetime
import json
import logging
import math
import re
import xmlrpc.client
from xml.parsers import expat

from mig.errors import AuthError, InvalidArgument, MigError
from mig.render.objects import error as error_object
from mig.web.response import Response

log = logging.getLogger("mig.web")

XMLRPC, JSONRPC = "xmlrpc", "jsonrpc"
ENDPOINTS = {}
for _prefix in ("/cgi-bin/", "/wsgi-bin/"):
    ENDPOINTS[_prefix + "xmlrpcinterface.py"] = XMLRPC
    ENDPOINTS[_prefix + "jsonrpcinterface.py"] = JSONRPC
    ENDPOINTS[_prefix + "jsoninterface.py"] = JSONRPC

MAX_RPC_BYTES = 16 * 1024 * 1024
MAX_BATCH = 100
SYSTEM_METHODS = ("system.listMethods", "system.methodHelp", "system.methodSignature")
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.I)
_XML_INT = (-2 ** 31, 2 ** 31 - 1)
# Characters XML 1.0 cannot carry at all (control characters, lone surrogates).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Fault codes (XML-RPC) and error codes (JSON-RPC).
FAULT_NO_METHOD, FAULT_REQUEST, FAULT_PARAMS, FAULT_INTERNAL = 1, 100, 102, 200
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INTERNAL_ERROR, AUTH_ERROR = -32603, -32001


class RpcError(Exception):
    """A protocol-level refusal: an XML-RPC fault or a JSON-RPC error object."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind  # "parse", "request", "method", "params", "internal"
        self.message = message


FAULT_CODES = {"parse": FAULT_REQUEST, "request": FAULT_REQUEST, "method": FAULT_NO_METHOD,
               "params": FAULT_PARAMS, "internal": FAULT_INTERNAL}
JSON_CODES = {"parse": PARSE_ERROR, "request": INVALID_REQUEST, "method": METHOD_NOT_FOUND,
              "params": INVALID_PARAMS, "internal": INTERNAL_ERROR}


# -- entry ------------------------------------------------------------------------
def handle(dispatcher, req, kind):
    """One HTTP request to an RPC endpoint -> a dispatch.Response."""
    if req.method != "POST":
        return Response(405, "%s: POST an %s request\n"
                        % (req.path, "XML-RPC" if kind == XMLRPC else "JSON-RPC"),
                        headers={"Allow": "POST"})
    reply = _xml_reply if kind == XMLRPC else _json_reply
    try:
        user, how = dispatcher.authenticate(req)
    except AuthError as exc:
        return reply(None, auth_error=exc.message)
    try:
        body = _read_body(req)
    except RpcError as exc:
        return reply(exc)
    call = Call(dispatcher, req, user, how)
    if kind == XMLRPC:
        return _xmlrpc(call, body)
    return _jsonrpc(call, body)


def _read_body(req):
    try:
        length = req.content_length()
    except MigError as exc:
        raise RpcError("request", exc.message) from None
    if length > MAX_RPC_BYTES:
        raise RpcError("request", "request body too large (at most %d MB)"
                       % (MAX_RPC_BYTES // (1024 * 1024)))
    body = req.rfile.read(length) if length else b""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise RpcError("parse", "the request body is not UTF-8") from None


class Call:
    """Runs methods for one authenticated request."""

    def __init__(self, dispatcher, req, user, how):
        self.dispatcher = dispatcher
        self.req = req
        self.user = user
        self.how = how
        # RPC clients are scripts: only explicit browser markers ask for _csrf.
        self.browser = req.is_browser()

    def run(self, method, params):
        """method name and positional params -> the result value; raises RpcError."""
        if not isinstance(method, str) or not method:
            raise RpcError("request", "the method name must be a string")
        if method.startswith("system."):
            return self._system(method, params)
        if method not in self.dispatcher.backends:
            raise RpcError("method", "no such method %s" % method)
        fields = struct_fields(params)
        try:
            objects, code, description = self.dispatcher.run_backend(
                self.req, method, fields, self.user, self.how, browser=self.browser)
        except MigError as exc:
            objects, code, description = [error_object(exc.message)], exc.exit_code, \
                exc.description
        except Exception:  # one call's failure is a fault, never a 500
            log.exception("RPC %s failed for %s", method, self.user)
            raise RpcError("internal", "internal error; see the appliance log") from None
        return [list(objects), [code, description]]

    def _system(self, method, params):
        backends = self.dispatcher.backends
        if method == "system.listMethods":
            return sorted(backends) + list(SYSTEM_METHODS)
        if method not in SYSTEM_METHODS:
            raise RpcError("method", "no such method %s" % method)
        if len(params) != 1 or not isinstance(params[0], str):
            raise RpcError("params", "%s takes one method name" % method)
        name = params[0]
        if name in SYSTEM_METHODS:
            table = SYSTEM_SIGNATURES if method == "system.methodSignature" else SYSTEM_HELP
            return table[name]
        if name not in backends:
            raise RpcError("method", "no such method %s" % name)
        if method == "system.methodSignature":
            return signature(backends[name])
        return method_help(backends[name])


SYSTEM_SIGNATURES = {
    "system.listMethods": "system.listMethods() -> [method names]",
    "system.methodHelp": "system.methodHelp(name) -> help text",
    "system.methodSignature": "system.methodSignature(name) -> the fields, as text",
}
SYSTEM_HELP = {
    "system.listMethods": "The names of all methods: every backend, then the system methods.",
    "system.methodHelp": "The help text of a method and of its fields.",
    "system.methodSignature": "The fields a method's one struct argument takes.",
}


# -- arguments and replies ------------------------------------------------------------
def struct_fields(params):
    """RPC params (nothing, or one struct) -> the form shape {name: [values]}.

    Values may be lists or single values; each becomes a string (bools as
    true/false) and blank values are dropped, as the form parser does.
    """
    if len(params) == 0 or (len(params) == 1 and params[0] is None):
        return {}
    if len(params) != 1 or not isinstance(params[0], dict):
        raise RpcError("params", "a method takes one struct of {field: [values]}, got %s"
                       % ", ".join(type(p).__name__ for p in params))
    fields = {}
    for key, value in params[0].items():
        if not isinstance(key, str):
            raise RpcError("params", "field names must be strings")
        values = value if isinstance(value, (list, tuple)) else [value]
        cleaned = [_field_value(key, v) for v in values if v is not None]
        cleaned = [v for v in cleaned if v != ""]
        if cleaned:
            fields[key] = cleaned
    return fields


def _field_value(name, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise RpcError("params", "%s: binary values must be UTF-8 text" % name) from None
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise RpcError("params", "%s: values must be strings or numbers, not %s"
                   % (name, type(value).__name__))


def plain(value, binary):
    """Output objects -> values both wire formats carry (binary wraps bytes).

    For XML-RPC, characters XML 1.0 cannot carry become U+FFFD and ints
    beyond 32 bits become strings.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        if binary is xmlrpc.client.Binary:
            return _NOT_XML.sub("\ufffd", value)
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if binary is xmlrpc.client.Binary and not _XML_INT[0] <= value <= _XML_INT[1]:
            return str(value)  # XML-RPC ints are 32 bits
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return binary(bytes(value))
    if isinstance(value, dict):
        return {plain(str(k), binary): plain(v, binary) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, binary) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def signature(backend):
    """A backend's fields as text: name, check, required, repeated, default."""
    lines = ["%s(struct) -> [output_objects, [exit_code, description]]" % backend.name]
    if backend.state_changing:
        lines.append("  changes state")
    if not backend.fields:
        lines.append("  (no fields)")
    for name, spec in backend.fields.items():
        shown = name[:-2] + "_0, " + name[:-2] + "_1, ..." if name.endswith("_N") else name
        parts = [spec.check, "required" if spec.required else "optional"]
        if spec.multi or name.endswith("_N"):
            parts.append("repeated")
        if spec.default:
            parts.append("default %s" % list(spec.default))
        lines.append("  %s: %s" % (shown, ", ".join(parts)))
    return "\n".join(lines)


def method_help(backend):
    text = backend.help or backend.title
    described = ["  %s: %s" % (name, spec.help) for name, spec in backend.fields.items()
                 if spec.help]
    if described:
        text += "\n\nFields:\n" + "\n".join(described)
    return text


# -- XML-RPC -------------------------------------------------------------------------
def _refuse_dtd(*_args):
    raise RpcError("parse", "DTDs and entity declarations are not accepted")


def parse_xml_call(text):
    """A methodCall -> (method, params); no DTD, no entities, UTF-8 only."""
    if _DTD.search(text):
        _refuse_dtd()
    unmarshaller = xmlrpc.client.Unmarshaller(use_datetime=False, use_builtin_types=True)
    parser = expat.ParserCreate("utf-8", None)  # overrides any declared encoding
    parser.StartElementHandler = unmarshaller.start
    parser.EndElementHandler = unmarshaller.end
    parser.CharacterDataHandler = unmarshaller.data
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    unmarshaller.xml(None, None)
    try:
        parser.Parse(text.encode("utf-8"), True)
        params = unmarshaller.close()
    except RpcError:
        raise
    except Exception as exc:  # whatever the XML, a fault and never a 500
        raise RpcError("parse", "malformed XML-RPC request: %s" % exc) from None
    method = unmarshaller.getmethodname()
    if method is None:
        raise RpcError("parse", "malformed XML-RPC request: no methodName")
    return method, params


def _xml_response(body, status=200, headers=None):
    return Response(status, body, "text/xml; charset=utf-8", headers)


def _xml_fault(code, message, status=200, headers=None):
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True,
                               encoding="utf-8")
    return _xml_response(body, status, headers)


def _xml_reply(error, auth_error=None):
    if auth_error is not None:
        return _xml_fault(AuthError.exit_code, auth_error, 401, {"WWW-Authenticate": "Bearer"})
    return _xml_fault(FAULT_CODES[error.kind], error.message)


def _xmlrpc(call, text):
    try:
        method, params = parse_xml_call(text)
        result = call.run(method, params)
        body = xmlrpc.client.dumps((plain(result, xmlrpc.client.Binary),),
                                   methodresponse=True, encoding="utf-8")
    except RpcError as exc:
        return _xml_reply(exc)
    except (OverflowError, TypeError, ValueError, RecursionError):
        log.exception("XML-RPC reply could not be written")
        return _xml_fault(FAULT_INTERNAL, "the reply could not be written as XML-RPC")
    return _xml_response(body)


# -- JSON-RPC ------------------------------------------------------------------------
def _json_response(payload, status=200, headers=None):
    if payload is None:  # only notifications: nothing to say
        return Response(204, b"", "application/json", headers)
    return Response(status, json.dumps(payload), "application/json", headers)


def _json_error(kind_code, message, ident=None, data=None):
    error = {"code": kind_code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": ident}


def _json_reply(error, auth_error=None):
    if auth_error is not None:
        return _json_response(_json_error(AUTH_ERROR, auth_error, data={"exit_code": 104}),
                              401, {"WWW-Authenticate": "Bearer"})
    return _json_response(_json_error(JSON_CODES[error.kind], error.message))


def _jsonrpc(call, text):
    try:
        data = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError) as exc:
        return _json_response(_json_error(PARSE_ERROR, "parse error: %s" % exc))
    if data is None:
        return _json_response(_json_error(PARSE_ERROR, "parse error: empty body"))
    if isinstance(data, list):
        if not data:
            return _json_response(_json_error(INVALID_REQUEST, "an empty batch"))
        if len(data) > MAX_BATCH:
            return _json_response(_json_error(INVALID_REQUEST, "at most %d calls in a batch"
                                              % MAX_BATCH))
        replies = [r for r in (_json_one(call, item) for item in data) if r is not None]
        return _json_response(replies or None)
    return _json_response(_json_one(call, data))


def _json_one(call, request):
    """One JSON-RPC request object -> its reply object, or None for a notification."""
    if not isinstance(request, dict):
        return _json_error(INVALID_REQUEST, "a request must be an object")
    ident = request.get("id")
    if not isinstance(ident, (str, int, float, type(None))) or isinstance(ident, bool):
        return _json_error(INVALID_REQUEST, "id must be a string, a number or null")
    notification = "id" not in request
    if request.get("jsonrpc", "2.0") != "2.0":
        return _json_error(INVALID_REQUEST, 'only "jsonrpc": "2.0" is spoken here', ident)
    params = request.get("params")
    if params is None:
        params = []
    elif isinstance(params, dict):
        params = [params]
    elif not isinstance(params, list):
        return _json_error(INVALID_PARAMS, "params must be an object or an array", ident)
    try:
        result = plain(call.run(request.get("method"), params), _b64)
        reply = {"jsonrpc": "2.0", "result": result, "id": ident}
    except RpcError as exc:
        data = {"exit_code": InvalidArgument.exit_code} if exc.kind == "params" else None
        reply = _json_error(JSON_CODES[exc.kind], exc.message, ident, data)
    return None if notification else reply
