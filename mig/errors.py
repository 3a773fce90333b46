"""One exception hierarchy for the whole appliance.

Each class knows its MiG exit code (the number scripts parse from the
``Exit code: N`` line) and the HTTP status used where a real HTTP error is
right (file GETs, unauthenticated requests).  Errors are raised deep and
translated only at the edges: the CLI, the HTTP dispatcher, daemon loops.
"""


class MigError(Exception):
    """Base: a refusal the caller can act on.  Never a traceback for users."""

    exit_code = 1
    description = "Client or system error"
    http_status = 400

    def __init__(self, message, *, details=None):
        super().__init__(message)
        self.message = str(message)
        self.details = list(details or [])


class ClientError(MigError):
    exit_code = 100
    description = "Client error"


class NoJobIdError(ClientError):
    exit_code = 101
    description = "No job id.."


class InvalidArgument(ClientError):
    exit_code = 102
    description = "Invalid argument"


class FieldError(InvalidArgument):
    """A request field refused before its backend ran.  problem: "missing",
    "invalid" (value, and what was expected) or "unexpected"; the web layer
    says it in words for people from these, scripts get the message."""

    def __init__(self, message, *, field, problem, value="", expected=""):
        super().__init__(message)
        self.field, self.problem, self.value, self.expected = field, problem, value, expected


class NoFilePath(ClientError):
    exit_code = 103
    description = "No file path provided"


class AuthError(MigError):
    exit_code = 104
    description = "Authentication error"
    http_status = 401


class AccessDenied(AuthError):
    """Authenticated, but not allowed: same MiG code, HTTP 403."""

    http_status = 403


class FileNotFound(MigError):
    exit_code = 105
    description = "File not found"
    http_status = 404


class MrslError(ClientError):
    """A job description that does not parse or validate; names line and keyword."""

    def __init__(self, message, *, line=None, keyword=None):
        where = []
        if line is not None:
            where.append("line %d" % line)
        if keyword:
            where.append("keyword %s" % keyword)
        text = ("%s: %s" % (", ".join(where), message)) if where else message
        super().__init__(text)
        self.line = line
        self.keyword = keyword


class NotCopied(ClientError):
    """A file was not copied or moved where it was to go; the message names
    the file and why (missing, behind a link, not writable there)."""


class StateError(ClientError):
    """An action not allowed in the job's current state."""


class ConflictError(ClientError):
    http_status = 409


class SystemFailure(MigError):
    exit_code = 200
    description = "SYSTEM_ERROR"
    http_status = 500


class DiskFull(SystemFailure):
    """The disk (blocks, inodes or quota) is full: nothing of the request was
    kept, and the same request works again once there is room."""

    http_status = 507


def disk_full(what):
    return DiskFull("%s: the disk of the grid is full (no space or no inodes left); nothing "
                    "was saved, try again later or ask the administrator" % what)


class StateTooNew(SystemFailure):
    """The state folder was written by a newer appliance version."""


class ConfigError(MigError):
    exit_code = 1
    description = "Configuration error"


# MiG's exit code descriptions, verbatim, as its scripts print them.
DESCRIPTIONS = {0: "OK", 1: "Client or system error", 100: "Client error", 101: "No job id..",
                102: "Invalid argument", 103: "No file path provided",
                104: "Authentication error", 105: "File not found", 200: "SYSTEM_ERROR",
                201: "USER_NOT_CREATED",
                202: "The output the server has generated could not be validated",
                400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                422: "Unprocessable Content"}


def describe(code):
    """The description MiG prints after an exit code."""
    return DESCRIPTIONS.get(code, "Client error")
