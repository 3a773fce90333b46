"""The Files pages and their operations: fileman, filemove, viewfile, editor
(GET pages) and upload, fileaction, editfile, cp, mv (POST, state changing).

Pages are output objects only (tables, forms, links); every path goes
through the caller's Home, so nothing here can reach outside it.
"""

import mimetypes
import os
import posixpath
import time
import urllib.parse

from mig.backends import Field, backend
from mig.backends.files import _each_path
from mig.backends.jobs import MAX_MRSL_BYTES, SUBMIT_COLUMNS, _submit_rows
from mig.core import files as F
from mig.errors import ClientError, InvalidArgument, MigError
from mig.render import objects as O

EDIT_LIMIT = 2 * 1024 * 1024
VIEW_LIMIT = 1024 * 1024
MAX_ROWS = 10000
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
TEXT_TYPES = ("application/json", "application/xml", "application/javascript",
              "application/x-sh", "application/x-python", "application/x-tex",
              "application/x-yaml", "application/yaml", "image/svg+xml")
NEWLINES = {"unix": "\n", "windows": "\r\n"}
ACTION_COLUMNS = ("Path", "Result", "Message")


# -- small helpers ----------------------------------------------------------------------
def norm(rel):
    """A home-relative path in one spelling: no leading '/', '.' for the home itself."""
    rel = (rel or ".").replace("\\", "/")
    if rel == "~" or rel.startswith("~/"):
        rel = rel[1:]
    return posixpath.normpath("/" + rel).lstrip("/") or "."


def join(folder, name):
    return norm(posixpath.join(norm(folder), name))


def parent(rel):
    return norm(posixpath.dirname(norm(rel)))


def cgi(name, **query):
    return "/cgi-bin/%s.py" % name + ("?" + urllib.parse.urlencode(query) if query else "")


def download_href(rel):
    return "/cert_redirect/" + urllib.parse.quote(norm(rel), safe="/")


def success(text):
    return {"object_type": "success", "text": str(text)}


def links(pairs):
    return {"object_type": "links", "links": [list(p) for p in pairs]}


def back_to(folder):
    folder = norm(folder)
    return O.link(cgi("fileman", path=folder),
                  "Back to %s" % ("your home" if folder == "." else folder))


def _folder(ctx, rel):
    path = ctx.home.resolve(rel, must_exist=True)
    if not os.path.isdir(path):
        raise ClientError("%s: not a folder" % rel)
    return path


def is_editable(name, size):
    """Cheap guess from the name (no file is opened) for the Edit action."""
    if size > EDIT_LIMIT or name.lower().endswith(IMAGES) or F.is_archive(name):
        return False
    kind = mimetypes.guess_type(name)[0]
    return kind is None or kind.startswith("text/") or kind in TEXT_TYPES


def read_text(home, rel, limit=EDIT_LIMIT):
    """A file's text for the editor, or a clear refusal (too large, binary, not UTF-8)."""
    path = home.resolve(rel, must_exist=True)
    if os.path.isdir(path):
        raise ClientError("%s: is a folder" % rel)
    if not os.path.isfile(path):
        raise ClientError("%s: not a regular file" % rel)
    size = os.path.getsize(path)
    if size > limit:
        raise ClientError("%s is %d bytes; only files up to %d MB can be edited here: "
                          "download it instead" % (rel, size, limit // (1024 * 1024)))
    data = home.read_bytes(rel)
    if b"\x00" in data:
        raise ClientError("%s looks like a binary file (it has NUL bytes) and cannot be "
                          "edited here: download it instead" % rel)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError("%s is not UTF-8 text and cannot be edited here: download it "
                          "instead" % rel) from None


def _when(ts):
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _human(size):
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return ("%d %s" % (size, unit)) if unit == "bytes" else ("%.1f %s" % (size, unit))
        size /= 1024.0
    return str(size)


# -- fileman ------------------------------------------------------------------------------
def _breadcrumbs(rel):
    pairs = [(cgi("fileman", path="."), "Home")]
    if rel != ".":
        parts = rel.split("/")
        for number, part in enumerate(parts, 1):
            pairs.append((cgi("fileman", path="/".join(parts[:number])), part))
    return links(pairs)


def _row(ctx, folder_path, rel_folder, entry):
    name = entry["name"]
    rel = join(rel_folder, name)
    is_dir = os.path.isdir(os.path.join(folder_path, name))
    row = [{"checkbox": "path", "value": rel}]
    if is_dir:
        row += [{"text": name + "/", "href": cgi("fileman", path=rel)}, "", _when(entry["mtime"]),
                "", "", {"text": "Rename", "href": cgi("filemove", path=rel, mode="rename")}, ""]
        return row
    row += [{"text": name, "href": download_href(rel)}, entry["size"], _when(entry["mtime"]),
            {"text": "View", "href": cgi("viewfile", path=rel)},
            {"text": "Edit", "href": cgi("editor", path=rel)}
            if is_editable(name, entry["size"]) else "",
            {"text": "Rename", "href": cgi("filemove", path=rel, mode="rename")},
            {"text": "Submit", "href": cgi("viewfile", path=rel)}
            if name.lower().endswith(".mrsl") else ""]
    return row


@backend("fileman", title="Files", header="Files",
         fields={"path": Field("path", default=(".",), help="the folder to show"),
                 "flags": Field("flags", help="a: show hidden files too")})
def fileman(ctx, args):
    """Your files: browse folders, download, view, edit, upload, copy, move, delete."""
    rel = norm(args["path"])
    path = _folder(ctx, rel)
    show_all = "a" in args["flags"]
    (_folder_path, entries), = ctx.home.listing(path, show_all)
    entries.sort(key=lambda e: (not os.path.isdir(os.path.join(path, e["name"])),
                                e["name"].lower(), e["name"]))
    objects = [O.header("Files in %s" % ("your home" if rel == "." else rel)), _breadcrumbs(rel)]
    if len(entries) > MAX_ROWS:
        objects.append(O.warning("showing the first %d of %d entries; use the shell or ls for "
                                 "the rest" % (MAX_ROWS, len(entries))))
        entries = entries[:MAX_ROWS]
    table = O.table("filelist", ("", "Name", "Size", "Modified (UTC)", "Actions", "", "", ""),
                    [_row(ctx, path, rel, e) for e in entries])
    table["select"] = {"backend": "fileaction", "name": "path",
                       "actions": [("delete", "Delete", "Move the selected files to Trash?"), ("copy", "Copy"), ("move", "Move"),
                                   ("submit", "Submit as jobs")]}
    table["empty"] = "This folder is empty."
    objects.append(table)
    objects.append(links([(cgi("fileman", path=rel, flags="" if show_all else "a"),
                           "Hide hidden files" if show_all else "Show hidden files"),
                          (cgi("editor", path=join(rel, "new.txt")), "New text file"),
                          (cgi("shell"), "Shell")]))
    objects.append({"object_type": "form", "action": "upload", "multipart": True,
                    "progress": True, "submit": "Upload",
                    "fields": [
                        {"name": "dir", "type": "hidden", "value": rel},
                        {"name": "files", "type": "file", "multiple": True,
                         "label": "Upload files",
                         "help": "into %s; existing files are replaced"
                                 % ("your home" if rel == "." else rel)},
                        {"name": "extract", "type": "checkbox",
                         "label": "Unpack archives (.zip, .tar, .tar.gz, .tgz, .tar.bz2)"},
                        {"name": "submit", "type": "checkbox",
                         "label": "Submit .mRSL files as jobs"}]})
    objects.append({"object_type": "form", "action": "mkdir", "submit": "Create folder",
                    "fields": [{"name": "path", "type": "text", "label": "New folder",
                                "value": "" if rel == "." else rel + "/",
                                "help": "a path in your home"}]})
    return O.Result(objects)


# -- copy, move, rename, delete ---------------------------------------------------------------
def destination_form(paths, mode):
    """The form asking where to copy or move paths to (posts to fileaction)."""
    action = "move" if mode == "rename" else mode
    if mode == "rename":
        label, value = "New name", paths[0]
        help_text = "the new path of %s in your home" % paths[0]
    else:
        label, value = "Destination", parent(paths[0])
        help_text = "a folder (the items go into it) or, for one item, a new name"
    fields = [{"name": "action", "type": "hidden", "value": action}]
    fields += [{"name": "path", "type": "hidden", "value": p} for p in paths]
    fields.append({"name": "dst", "type": "text", "label": label, "value": value,
                   "help": help_text})
    return {"object_type": "form", "action": "fileaction", "fields": fields,
            "submit": mode.capitalize()}


@backend("filemove", title="Copy or move", header="Copy or move",
         fields={"path": Field("path", multi=True, required=True),
                 "mode": Field("word", default=("move",), help="copy, move or rename")})
def filemove(ctx, args):
    """Ask for the destination of a copy, move or rename (the form posts to fileaction)."""
    mode = args["mode"]
    if mode not in ("copy", "move", "rename"):
        raise ClientError("unknown mode %r: use copy, move or rename" % mode)
    paths = [norm(p) for p in args["path"]]
    for rel in paths:
        ctx.home.resolve(rel, must_exist=True)
    what = paths[0] if len(paths) == 1 else "%d items" % len(paths)
    return O.Result([O.header("%s %s" % (mode.capitalize(), what)),
                     destination_form(paths, mode), back_to(parent(paths[0]))])


def _delete_one(ctx, rel):
    path = ctx.home.resolve(rel, must_exist=True)
    trash = os.path.join(ctx.home.root, F.TRASH)
    in_trash = path == trash or path.startswith(trash + os.sep)
    ctx.home.remove(rel, recursive=True)
    return "deleted" if in_trash else "moved to Trash"


@backend("fileaction", title="Files", header="Files", state_changing=True,
         fields={"action": Field("word", required=True,
                                 help="delete (to Trash/), copy, move or submit"),
                 "path": Field("path", multi=True, required=True),
                 "dst": Field("path", help="destination folder or name for copy and move")})
def fileaction(ctx, args):
    """Act on selected files: delete (moved to Trash/), copy or move to dst, submit."""
    action, paths = args["action"], [norm(p) for p in args["path"]]
    back = back_to(parent(paths[0]))
    if action == "submit":
        result = ctx.call("submit", {"path": paths})
        return O.Result(result.objects + [back], result.exit_code)
    if action not in ("delete", "copy", "move"):
        raise ClientError("unknown action %r: use delete, copy, move or submit" % action)
    if action != "delete" and not args["dst"]:
        return O.Result([O.header("%s %s" % (action.capitalize(), paths[0] if len(paths) == 1
                                             else "%d items" % len(paths))),
                         destination_form(paths, action), back])
    dst = norm(args["dst"]) if args["dst"] else ""
    if dst and len(paths) > 1 and not os.path.isdir(ctx.home.resolve(dst)):
        raise ClientError("%s: not a folder; several items can only go into a folder" % dst)
    rows, objects, code = [], [], 0
    for rel in paths:
        try:
            if action == "delete":
                rows.append((rel, "ok", _delete_one(ctx, rel)))
            elif action == "copy":
                skipped = []
                target = F.copy_path(ctx.home, rel, dst, recursive=True, skipped=skipped)
                rows.append((rel, "ok", "copied to %s" % target))
                objects += [O.warning("%s: not copied: %s" % s) for s in skipped]
            else:
                rows.append((rel, "ok", "moved to %s" % F.move_path(ctx.home, rel, dst)))
        except MigError as exc:
            rows.append((rel, "failed", exc.message))
            code = code or exc.exit_code
    out = [O.header({"delete": "Delete", "copy": "Copy", "move": "Move"}[action]),
           O.table("fileaction", ACTION_COLUMNS, rows)] + objects
    if dst:
        target_folder = dst if os.path.isdir(ctx.home.resolve(dst)) else parent(dst)
        if target_folder != parent(paths[0]):
            out.append(O.link(cgi("fileman", path=target_folder), "Go to %s" % target_folder))
    out.append(back)
    return O.Result(out, code)


def _each_source(ctx, patterns, force, run):
    """run(rel) over every expansion; MiG-style file_not_found and error objects."""
    return _each_path(ctx, patterns, lambda path: run(ctx.home.relative(path)),
                      missing_ok=force)


def _several_need_folder(ctx, patterns, dst):
    """Several sources (after wildcards) can only go into an existing folder."""
    count = 0
    for pattern in patterns:
        try:
            count += len(ctx.home.expand(pattern))
        except MigError:
            count += 1
    if count > 1 and not os.path.isdir(ctx.home.resolve(dst)):
        raise ClientError("%s: not a folder; several sources can only go into a folder" % dst)


@backend("cp", title="cp", header="cp", state_changing=True,
         fields={"src": Field("path", multi=True, required=True,
                              help="file(s) or folder(s); wildcards allowed"),
                 "dst": Field("path", required=True,
                              help="a folder (sources go into it) or a new name"),
                 "flags": Field("flags", help="r: folders too (recursive), f: no error for "
                                              "missing sources, v: name each copy")})
def cp(ctx, args):
    """Copy files (and folders with r) inside your home."""
    flags, dst = args["flags"], args["dst"]
    _several_need_folder(ctx, args["src"], dst)

    def one(rel):
        skipped = []
        target = F.copy_path(ctx.home, rel, dst, recursive="r" in flags, skipped=skipped)
        out = [O.warning("%s: not copied: %s" % s) for s in skipped]
        return out + ([O.text("%s -> %s" % (rel, target))] if "v" in flags else [])
    objects, code = _each_source(ctx, args["src"], "f" in flags, one)
    return O.Result(objects, code)


@backend("mv", title="mv", header="mv", state_changing=True,
         fields={"src": Field("path", multi=True, required=True,
                              help="file(s) or folder(s); wildcards allowed"),
                 "dst": Field("path", required=True,
                              help="a folder (sources go into it) or a new name"),
                 "flags": Field("flags", help="v: name each move")})
def mv(ctx, args):
    """Move or rename files and folders inside your home."""
    flags, dst = args["flags"], args["dst"]
    _several_need_folder(ctx, args["src"], dst)

    def one(rel):
        target = F.move_path(ctx.home, rel, dst)
        return [O.text("%s -> %s" % (rel, target))] if "v" in flags else []
    objects, code = _each_source(ctx, args["src"], False, one)
    return O.Result(objects, code)


# -- upload ---------------------------------------------------------------------------------
def check_upload_name(name):
    """A plain file name (browsers send the base name), or raise."""
    if name in ("", ".", ".."):
        raise InvalidArgument("invalid file name %r" % name)
    if "/" in name or "\\" in name or "\x00" in name:
        raise InvalidArgument("invalid file name %r: no '/', '\\' or NUL allowed" % name[:80])
    return name


def _truthy(value):
    return str(value).lower() in ("true", "1", "on", "yes")


def _store(ctx, rel, data):
    """Write data to rel through a temporary beside it (a link there is replaced)."""
    final, _tmp = ctx.home.open_for_upload(rel)  # checks: folder exists, no folder in the way
    tmp = os.path.join(os.path.dirname(final), ".upload-%d-%s" % (
        time.time_ns(), os.path.basename(final)[:100]))
    try:
        with open(tmp, "xb") as out:
            out.write(data)
        os.replace(tmp, final)
    except OSError as exc:
        raise ClientError("cannot write %s: %s" % (rel, exc.strerror or exc)) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return final


def _mrsl_item(ctx, rel):
    path = ctx.home.resolve(rel, must_exist=True)
    if os.path.getsize(path) > MAX_MRSL_BYTES:
        return rel, ClientError("%s: larger than 1 MB" % rel)
    with open(path, encoding="utf-8", errors="replace") as handle:
        return rel, handle.read()


@backend("upload", title="Upload Files", header="Upload Files", state_changing=True,
         fields={"dir": Field("path", default=(".",), help="the folder to upload into"),
                 "extract": Field("bool", help="unpack .zip/.tar(.gz/.bz2) archives"),
                 "submit": Field("bool", help="submit uploaded .mRSL files as jobs")})
def upload(ctx, args):
    """Upload files (multipart field 'files', several at once) into a folder."""
    folder = norm(args["dir"])
    _folder(ctx, folder)
    files = [(name, data) for field, name, data in ctx.files if field == "files"]
    if not files:
        raise ClientError("no files were uploaded: send them in the multipart field 'files'")
    limit = ctx.grid.config.max_upload_mb * 1024 * 1024
    total = sum(len(data) for _name, data in files)
    if total > limit:
        raise ClientError("the upload is %d bytes; at most %d MB are allowed"
                          % (total, ctx.grid.config.max_upload_mb))
    extract, submit = _truthy(args["extract"]), _truthy(args["submit"])
    rows, objects, jobs, code = [], [], [], 0
    for name, data in files:
        try:
            rel = join(folder, check_upload_name(name))
            _store(ctx, rel, data)
            message = "stored as %s" % rel
            if extract and F.is_archive(name):
                skipped = []
                written = F.unpack_archive(ctx.home, rel, folder, skipped)
                message = "unpacked %d file%s into %s" % (len(written), "" if len(written) == 1
                                                          else "s", folder)
                objects += [O.warning("%s: not unpacked: %s" % s) for s in skipped]
                if submit:
                    jobs += [_mrsl_item(ctx, w) for w in written if w.lower().endswith(".mrsl")]
            if submit and name.lower().endswith(".mrsl"):
                jobs.append(_mrsl_item(ctx, rel))
            rows.append((name, len(data), "uploaded", message))
        except MigError as exc:
            rows.append((name, len(data), "failed", exc.message))
            code = code or exc.exit_code
    out = [O.header("Upload to %s" % ("your home" if folder == "." else folder)),
           O.table("uploadstatus", ("File", "Size", "Status", "Message"), rows)] + objects
    if jobs:
        job_rows, job_code = _submit_rows(ctx, jobs)
        out.append(O.table("submitstatuslist", SUBMIT_COLUMNS, job_rows))
        code = code or job_code
    out.append(back_to(folder))
    return O.Result(out, code)


# -- view and edit ----------------------------------------------------------------------------
@backend("viewfile", title="View File", header="View File",
         fields={"path": Field("path", required=True)})
def viewfile(ctx, args):
    """Show a file: images inline, text as text, anything else as a download link."""
    rel = norm(args["path"])
    path = ctx.home.resolve(rel, must_exist=True)
    if os.path.isdir(path):
        return O.Result([O.header(rel), O.text("%s is a folder." % rel),
                         O.link(cgi("fileman", path=rel), "Open the folder")])
    if not os.path.isfile(path):
        raise ClientError("%s: not a regular file" % rel)
    name, size = posixpath.basename(rel), os.path.getsize(path)
    objects = [O.header(rel)]
    actions = [(download_href(rel), "Download (%s)" % _human(size))]
    lower = name.lower()
    if lower.endswith(IMAGES):
        objects.append({"object_type": "image", "src": download_href(rel), "alt": name})
    elif lower.endswith(".svg"):
        objects.append(O.warning("SVG images are not shown here because they can carry "
                                 "scripts: download it to look at it."))
    else:
        with open(path, "rb") as handle:
            data = handle.read(VIEW_LIMIT)
        if b"\x00" in data:
            objects.append(O.text("%s is a binary file (%s): download it to use it."
                                  % (name, _human(size))))
        else:
            if size > VIEW_LIMIT:
                objects.append(O.warning("showing the first %s of %s" % (_human(VIEW_LIMIT),
                                                                       _human(size))))
            objects.append(O.verbatim(data.decode("utf-8", "replace")))
            if size <= EDIT_LIMIT:
                actions.append((cgi("editor", path=rel), "Edit"))
    if lower.endswith(".mrsl"):
        objects.append({"object_type": "post_button", "backend": "submit",
                        "fields": {"path": rel}, "text": "Submit this job", "style": ""})
    actions.append((cgi("fileman", path=parent(rel)), "Back to the folder"))
    objects.append(links(actions))
    return O.Result(objects)


@backend("editor", title="Edit File", header="Edit File",
         fields={"path": Field("path", required=True, help="the file (new or existing)")})
def editor(ctx, args):
    """The text editor page for a file (saving posts to editfile)."""
    rel = norm(args["path"])
    path = ctx.home.resolve(rel)
    objects = [O.header("Edit %s" % rel)]
    text, newline = "", "unix"
    if os.path.lexists(path):
        text = read_text(ctx.home, rel)
        if "\r\n" in text:
            newline, text = "windows", text.replace("\r\n", "\n")
    else:
        objects.append(O.text("%s does not exist yet: saving creates it." % rel))
    objects.append({"object_type": "form", "action": "editfile", "submit": "Save",
                    "fields": [
                        {"name": "path", "type": "text", "label": "File", "value": rel,
                         "help": "change it to save a copy under another name"},
                        {"name": "editarea", "type": "textarea", "label": "Contents",
                         "value": text, "rows": 24},
                        {"name": "newline", "type": "select", "label": "Line ends",
                         "value": newline, "options": [("unix", "Unix (LF)"),
                                                       ("windows", "Windows (CR LF)")]},
                        {"name": "submitjob", "type": "checkbox",
                         "label": "Submit the saved file as a job",
                         "value": rel.lower().endswith(".mrsl")}]})
    objects.append(links([(cgi("viewfile", path=rel), "View"),
                          (cgi("fileman", path=parent(rel)), "Back to the folder")]))
    return O.Result(objects)


@backend("editfile", title="Save File", header="Save File", state_changing=True,
         fields={"path": Field("path", required=True),
                 "editarea": Field("text", help="the new contents (empty: an empty file)"),
                 "submitjob": Field("bool", help="also submit the saved file as a job"),
                 "newline": Field("word", default=("unix",), help="unix or windows")})
def editfile(ctx, args):
    """Save text to a file (created or replaced); optionally submit it as a job."""
    rel = norm(args["path"])
    if rel == ".":
        raise ClientError("no file name given")
    newline = NEWLINES.get(args["newline"])
    if newline is None:
        raise ClientError("unknown newline %r: use unix or windows" % args["newline"])
    text = args["editarea"].replace("\r\n", "\n").replace("\r", "\n")
    data = text.replace("\n", newline).encode("utf-8")
    if len(data) > EDIT_LIMIT:
        raise ClientError("the text is %d bytes; at most %d MB can be saved here"
                          % (len(data), EDIT_LIMIT // (1024 * 1024)))
    _store(ctx, rel, data)
    objects = [O.header("Saved %s" % rel), O.text("Saved %d bytes to %s" % (len(data), rel))]
    code = 0
    if _truthy(args["submitjob"]):
        rows, code = _submit_rows(ctx, [(rel, text)])
        objects.append(O.table("submitstatuslist", SUBMIT_COLUMNS, rows))
    objects.append(links([(cgi("editor", path=rel), "Edit again"),
                          (cgi("viewfile", path=rel), "View"),
                          (cgi("fileman", path=parent(rel)), "Back to the folder")]))
    return O.Result(objects, code)
