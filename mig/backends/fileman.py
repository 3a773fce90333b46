"""The Files pages and their operations: fileman, filemove, viewfile, editor
(GET pages) and upload, fileaction, editfile, cp, mv (POST, state changing).

Pages are output objects only (tables, forms, links); every path goes
through the caller's Home, so nothing here can reach outside it.
"""

import fnmatch
import json
import mimetypes
import os
import posixpath
import time
import urllib.parse

from mig.backends import Field, backend, truthy
from mig.backends.homepaths import each_path, join, norm, parent
from mig.backends.jobs import MAX_MRSL_BYTES, SUBMIT_COLUMNS, _submit_rows
from mig.backends.transfer import UPLOAD_CACHE, _cached
from mig.core import archives as A
from mig.core import home as H
from mig.core import homeops as F
from mig.core import sharelinks as S
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
SORT_KEYS = {"name": "Name", "size": "Size", "date": "Modified"}
ORIGINS = ".origins.json"  # Trash/: where each trashed item came from (for Restore)
SCRIPTS = ["files.js"]  # the file manager's script (upload widget, actions in place)
SEARCH_ENTRIES = 20000  # a search looks at this many names at most ...
SEARCH_HITS = 200  # ... shows this many matches at most ...
SEARCH_BYTES = 256 * 1024 * 1024  # ... reads this much file content at most ...
SEARCH_FILE_BYTES = 16 * 1024 * 1024  # ... skips the content of larger files ...
SEARCH_SECONDS = 10  # ... and stops after this long


# -- small helpers ----------------------------------------------------------------------
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
    if size > EDIT_LIMIT or name.lower().endswith(IMAGES) or A.is_archive(name):
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


def in_trash(rel):
    rel = norm(rel)
    return rel == H.TRASH or rel.startswith(H.TRASH + "/")


def _row(ctx, folder_path, rel_folder, entry):
    name = entry["name"]
    rel = join(rel_folder, name)
    is_dir = os.path.isdir(os.path.join(folder_path, name))
    row = [{"checkbox": "path", "value": rel}]
    rename = {"text": "Rename", "href": cgi("filemove", path=rel, mode="rename")}
    if is_dir:
        row += [{"text": name + "/", "href": cgi("fileman", path=rel)}, "",
                _when(entry["mtime"]), "", "", "", rename, ""]
        return row
    row += [{"text": name, "href": download_href(rel)}, {"text": _human(entry["size"])},
            _when(entry["mtime"]),
            {"text": "Download", "href": download_href(rel), "download": name},
            {"text": "View", "href": cgi("viewfile", path=rel)},
            {"text": "Edit", "href": cgi("editor", path=rel)}
            if is_editable(name, entry["size"]) else "",
            rename,
            {"text": "Submit", "href": cgi("viewfile", path=rel)}
            if name.lower().endswith(".mrsl") else ""]
    return row


def sort_entries(path, entries, key, descending):
    """Folders first, then by name, size or date (ties by name)."""
    def is_dir(entry):
        return os.path.isdir(os.path.join(path, entry["name"]))
    by = {"name": lambda e: (e["name"].lower(), e["name"]),
          "size": lambda e: (e["size"] if not is_dir(e) else 0, e["name"].lower()),
          "date": lambda e: (e["mtime"], e["name"].lower())}[key]
    entries.sort(key=by, reverse=descending)
    entries.sort(key=lambda e: not is_dir(e))  # stable: keeps the order inside each group
    return entries


def _sort_links(rel, key, descending, show_all):
    """'Sort by' links; the current key's link turns the order round."""
    pairs = []
    for name, label in SORT_KEYS.items():
        order = "asc" if name != key or descending else "desc"
        arrow = (" (descending)" if descending else " (ascending)") if name == key else ""
        query = {"path": rel, "sort": name, "order": order}
        if show_all:
            query["flags"] = "a"
        pairs.append((cgi("fileman", **query), "Sort by %s%s" % (label.lower(), arrow)))
    return {"object_type": "links", "links": [list(p) for p in pairs]}


def _select_actions(rel):
    """The buttons over the listing: Trash has Restore and Delete forever."""
    if in_trash(rel):
        return [("restore", "Restore"),
                ("delete", "Delete forever", "Delete the selected items for good?")]
    return [("delete", "Delete", "Move the selected files to Trash?"), ("copy", "Copy"),
            ("move", "Move"), ("pack", "Pack"), ("unpack", "Unpack"), ("share", "Share"),
            ("submit", "Submit as jobs")]


def _search_form(rel, query, content, show_all):
    hidden = [{"name": "flags", "type": "hidden", "value": "a"}] if show_all else []
    return {"object_type": "form", "method": "get", "action": "fileman", "submit": "Search",
            "fields": hidden + [{"name": "path", "type": "hidden", "value": rel},
                       {"name": "search", "id": "search", "type": "text",
                        "label": "Search", "value": query,
                        "help": "names containing this text (* and ? as wildcards), in "
                                "this folder and below"},
                       {"name": "content", "id": "search-content", "type": "checkbox",
                        "label": "Also search inside files (text, up to 16 MB each)",
                        "value": content}]}


def _upload_form(rel):
    return {"object_type": "form", "action": "upload", "multipart": True,
            "progress": True, "submit": "Upload", "scripts": SCRIPTS,
            "fields": [
                {"name": "dir", "type": "hidden", "value": rel},
                {"name": "files", "type": "file", "multiple": True,
                 "label": "Upload files",
                 "help": "into %s; existing files are replaced; big files are sent in "
                         "parts and a broken upload resumes where it stopped; you can "
                         "also drop files here" % ("your home" if rel == "." else rel)},
                {"name": "extract", "type": "checkbox",
                 "label": "Unpack archives (.zip, .tar, .tar.gz, .tgz, .tar.bz2)"},
                {"name": "submit", "type": "checkbox",
                 "label": "Submit .mRSL files as jobs"}]}


def _share_table(ctx):
    """The user's share links with their addresses and a Revoke button each."""
    rows = []
    for link in S.links(ctx.grid).owned(ctx.user):
        address = S.url(link)
        rows.append([link["path"], S.access_name(link), S.format_expiry(link),
                     {"text": address, "href": address},
                     {"post": "fileaction", "text": "Revoke", "style": "danger",
                      "confirm": "Revoke the share link of %s?" % link["path"],
                      "fields": {"action": "unshare", "path": link["path"],
                                 "share_id": link["share_id"]}}])
    table = O.table("sharelinks", ("Path", "Access", "Expires", "Address", ""), rows)
    table["empty"] = "You have no share links: select files or folders and press Share."
    return table


@backend("fileman", title="Files", header="Files",
         fields={"path": Field("path", default=(".",), help="the folder to show"),
                 "flags": Field("flags", help="a: show hidden files too"),
                 "sort": Field("word", default=("name",), help="name, size or date"),
                 "order": Field("word", default=("asc",), help="asc or desc"),
                 "search": Field("text", help="find names (and with content, text) in "
                                              "this folder and below"),
                 "content": Field("bool", help="search: also look inside files")})
def fileman(ctx, args):
    """Your files: browse, sort, search, download, view, edit, upload, copy, move,
    pack, unpack, share, delete to Trash and restore from it."""
    rel = norm(args["path"])
    path = _folder(ctx, rel)
    show_all = "a" in args["flags"]
    key = args["sort"] if args["sort"] in SORT_KEYS else "name"
    descending = args["order"] == "desc"
    objects = [O.header("Files in %s" % ("your home" if rel == "." else rel)), _breadcrumbs(rel),
               _search_form(rel, args["search"], truthy(args["content"]), show_all)]
    if args["search"]:
        objects += search_results(ctx, rel, args["search"], truthy(args["content"]), show_all)
        return O.Result(objects)
    (_folder_path, entries), = ctx.home.listing(path, show_all)
    sort_entries(path, entries, key, descending)
    objects.append(_sort_links(rel, key, descending, show_all))
    if len(entries) > MAX_ROWS:
        objects.append(O.warning("showing the first %d of %d entries; use the shell or ls for "
                                 "the rest" % (MAX_ROWS, len(entries))))
        entries = entries[:MAX_ROWS]
    table = O.table("filelist", ("", "Name", "Size", "Modified (UTC)", "Actions", "", "", "",
                                 ""),
                    [_row(ctx, path, rel, e) for e in entries])
    table["select"] = {"backend": "fileaction", "name": "path", "actions": _select_actions(rel)}
    table["empty"] = "This folder is empty."
    objects.append(table)
    if rel == H.TRASH and entries:
        objects.append({"object_type": "post_button", "backend": "fileaction",
                        "fields": {"action": "emptytrash", "path": H.TRASH},
                        "text": "Empty the trash", "style": "danger",
                        "confirm": "Delete everything in the trash for good?"})
    objects.append(links([(cgi("fileman", path=rel, flags="" if show_all else "a"),
                           "Hide hidden files" if show_all else "Show hidden files"),
                          (cgi("editor", path=join(rel, "new.txt")), "New text file"),
                          (cgi("fileman", path=H.TRASH), "Trash"),
                          (cgi("shell"), "Shell")]))
    objects.append(_upload_form(rel))
    objects.append({"object_type": "form", "action": "mkdir", "submit": "Create folder",
                    "fields": [{"name": "path", "type": "text", "label": "New folder",
                                "value": "" if rel == "." else rel + "/",
                                "help": "a path in your home"}]})
    objects += [O.header("Share links"), _share_table(ctx)]
    return O.Result(objects)


# -- search -------------------------------------------------------------------------------
def _name_matches(name, query):
    if F.has_wildcards(query):
        return fnmatch.fnmatch(name.lower(), query.lower())
    return query.lower() in name.lower()


def _content_matches(path, needle, budget):
    """Whether the file holds needle (bytes, lower case; ASCII letters match in any case);
    budget[0] is the content still allowed to be read in this search."""
    size = os.path.getsize(path)
    if size > SEARCH_FILE_BYTES or size > budget[0] or not needle:
        return False
    budget[0] -= size
    tail = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1024 * 1024)
            if not block:
                return False
            if b"\x00" in block:
                return False  # a binary file
            if needle in (tail + block).lower():
                return True
            tail = block[-len(needle):]


def search_results(ctx, rel, query, content, show_all):
    """Files and folders below rel whose name (or with content, text) matches query.

    Bounded: at most SEARCH_ENTRIES names, SEARCH_HITS matches, SEARCH_BYTES read
    and SEARCH_SECONDS; links are not followed and the upload cache is skipped."""
    top = _folder(ctx, rel)
    needle = query.encode("utf-8").lower() if content else b""
    budget, seen, rows = [SEARCH_BYTES], 0, []
    deadline = time.monotonic() + SEARCH_SECONDS
    stopped = ""
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if (show_all or not d.startswith("."))
                         and d != UPLOAD_CACHE and not os.path.islink(os.path.join(folder, d)))
        for name in sorted(dirs) + sorted(files):
            seen += 1
            full = os.path.join(folder, name)
            if (not show_all and name.startswith(".")) or name in H.INVISIBLE:
                continue
            where = "name" if _name_matches(name, query) else ""
            if not where and content and name in files and not os.path.islink(full) \
                    and os.path.isfile(full):  # no links, no pipes or devices
                try:
                    where = "content" if _content_matches(full, needle, budget) else ""
                except OSError:
                    where = ""
            if where:
                found = ctx.home.relative(full)
                is_dir = name in dirs
                rows.append([{"text": found + ("/" if is_dir else ""),
                              "href": cgi("fileman", path=found) if is_dir
                              else download_href(found)},
                             "" if is_dir else {"text": _human(os.lstat(full).st_size)},
                             _when(os.lstat(full).st_mtime), where])
            if len(rows) >= SEARCH_HITS or seen >= SEARCH_ENTRIES or \
                    time.monotonic() > deadline:
                stopped = "the search stopped after %d names and %d matches: narrow it down" \
                    % (seen, len(rows))
                break
        if stopped:
            break
    table = O.table("filesearch", ("Path", "Size", "Modified (UTC)", "Matched by"), rows)
    table["empty"] = "Nothing matches."
    where = "your home" if rel == "." else rel
    out = [O.header("Search results"),
           {"object_type": "success" if rows else "warning",
            "text": "%d match%s for %r in %s%s" % (len(rows), "" if len(rows) == 1 else "es",
                                                  query, where,
                                                  " (names and content)" if content else "")},
           table]
    if stopped:
        out.append(O.warning(stopped))
    out.append(back_to(rel))
    return out


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


def _origins(ctx):
    """Trash/.origins.json as {name in Trash: where it was}; {} when missing or damaged."""
    try:
        with open(ctx.home.resolve("%s/%s" % (H.TRASH, ORIGINS)), encoding="utf-8") as handle:
            found = json.load(handle)
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError, MigError):
        return {}


def _save_origins(ctx, origins):
    path = ctx.home.resolve("%s/%s" % (H.TRASH, ORIGINS))
    if os.path.isdir(os.path.dirname(path)):
        _store(ctx, "%s/%s" % (H.TRASH, ORIGINS), json.dumps(origins).encode("utf-8"))


def _trash_names(ctx):
    trash = os.path.join(ctx.home.root, H.TRASH)
    return set(os.listdir(trash)) if os.path.isdir(trash) else set()


def _delete_one(ctx, rel):
    """Move rel to Trash (remembering where it was) or, in Trash, delete it for good."""
    ctx.home.resolve(rel, must_exist=True)
    if in_trash(rel):
        ctx.home.remove(rel, recursive=True)
        origins = _origins(ctx)
        if origins.pop(rel.partition("/")[2], None) is not None:
            _save_origins(ctx, origins)
        return "deleted"
    before = _trash_names(ctx)
    ctx.home.remove(rel, recursive=True)
    new = _trash_names(ctx) - before - {ORIGINS}
    if len(new) == 1:
        origins = _origins(ctx)
        origins[new.pop()] = rel
        _save_origins(ctx, origins)
    return "moved to Trash"


def _restore_one(ctx, rel):
    """Move an item of Trash back to where it was deleted from (parents made again)."""
    if not in_trash(rel) or rel == H.TRASH or rel.count("/") != 1:
        raise ClientError("%s: only items directly in %s can be restored" % (rel, H.TRASH))
    name = rel.split("/", 1)[1]
    origins = _origins(ctx)
    target = norm(origins.get(name, name))
    if os.path.lexists(ctx.home.resolve(target)):
        raise ClientError("%s exists already: rename or move it first" % target)
    ctx.home.mkdir(parent(target), parents=True)
    F.move_path(ctx.home, rel, target)
    if origins.pop(name, None) is not None:
        _save_origins(ctx, origins)
    return "restored to %s" % target


def _empty_trash(ctx):
    """Delete everything in Trash for good: [(name, result, message)]."""
    rows = []
    for name in sorted(_trash_names(ctx)):
        rel = "%s/%s" % (H.TRASH, name)
        try:
            ctx.home.remove(rel, recursive=True)
            if name != ORIGINS:
                rows.append((rel, "ok", "deleted"))
        except MigError as exc:
            rows.append((rel, "failed", exc.message))
    return rows or [(H.TRASH, "ok", "the trash was empty already")]


def _pack(ctx, paths, dst):
    """Pack paths into the archive dst (default: a dated .zip beside them)."""
    folder = parent(paths[0])
    name = dst or "archive-%s.zip" % time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = norm(name if "/" in name else join(folder, name))
    if "." in paths:
        raise ClientError("your entire home cannot be packed")
    if any(target == p or target.startswith(p + "/") for p in paths):
        raise ClientError("%s would be inside what it packs" % target)
    skipped = []
    A.pack_archive(ctx.home, paths, target, skipped)
    rows = [(rel, "ok", "packed into %s" % target) for rel in paths]
    return rows, [O.warning("%s: not packed: %s" % item) for item in skipped]


def _unpack_one(ctx, rel, objects):
    if not A.is_archive(rel):
        raise ClientError("%s is not an archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, "
                          ".tar.xz)" % rel)
    skipped = []
    written = A.unpack_archive(ctx.home, rel, parent(rel), skipped)
    objects += [O.warning("%s: not unpacked: %s" % item) for item in skipped]
    return "unpacked %d file%s into %s" % (len(written), "" if len(written) == 1 else "s",
                                           "your home" if parent(rel) == "." else parent(rel))


def _share_one(ctx, rel):
    link = S.links(ctx.grid).create(ctx.user, rel, True, False, S.parse_expire(""))
    return "read-only share link %s (%s)" % (S.url(link), S.format_expiry(link))


def _unshare(ctx, share_id):
    link = S.links(ctx.grid).delete(ctx.user, share_id)
    return [(link["path"], "ok", "share link %s revoked" % link["share_id"])]


ACTIONS = ("delete", "copy", "move", "pack", "unpack", "share", "unshare", "restore",
           "emptytrash", "submit")


def _each_selected(ctx, action, paths, dst):
    """Run a per-item action over paths: (rows, extra objects, exit code)."""
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
            elif action == "move":
                rows.append((rel, "ok", "moved to %s" % F.move_path(ctx.home, rel, dst)))
            elif action == "restore":
                rows.append((rel, "ok", _restore_one(ctx, rel)))
            elif action == "unpack":
                rows.append((rel, "ok", _unpack_one(ctx, rel, objects)))
            else:
                rows.append((rel, "ok", _share_one(ctx, rel)))
        except MigError as exc:
            rows.append((rel, "failed", exc.message))
            code = code or exc.exit_code
    return rows, objects, code


def _outcome(rows):
    """One sentence for the result: what worked and what failed."""
    done = [r for r in rows if r[1] == "ok"]
    failed = [r for r in rows if r[1] != "ok"]
    parts = ["%s: %s" % (r[0], r[2]) for r in done[:5]]
    if len(done) > 5:
        parts.append("and %d more" % (len(done) - 5))
    text = "; ".join(parts)
    if failed:
        return O.error("%d failed: %s" % (len(failed), "; ".join(
            "%s: %s" % (r[0], r[2]) for r in failed[:5])) + ("; done: " + text if text else ""))
    return success(text)


@backend("fileaction", title="Files", header="Files", state_changing=True,
         fields={"action": Field("word", required=True,
                                 help="delete (to Trash/; in Trash for good), copy, move, "
                                      "pack, unpack, share, unshare, restore (from Trash), "
                                      "emptytrash or submit"),
                 "path": Field("path", multi=True, required=True,
                               help="the files and folders to act on"),
                 "dst": Field("path", help="copy, move: the destination folder or name; "
                                           "pack: the archive's name"),
                 "share_id": Field("word", help="unshare: the link to revoke")})
def fileaction(ctx, args):
    """Act on selected files: delete (moved to Trash/), copy or move to dst, pack into
    the archive dst, unpack archives beside themselves, share read-only, restore from
    Trash, empty the trash, submit as jobs."""
    action, paths = args["action"], [norm(p) for p in args["path"]]
    back = back_to(parent(paths[0]))
    if action == "submit":
        result = ctx.call("submit", {"path": paths})
        return O.Result(result.objects + [back], result.exit_code)
    if action not in ACTIONS:
        raise ClientError("unknown action %r: use %s" % (action, ", ".join(ACTIONS)))
    if action in ("copy", "move") and not args["dst"]:
        return O.Result([O.header("%s %s" % (action.capitalize(), paths[0] if len(paths) == 1
                                             else "%d items" % len(paths))),
                         destination_form(paths, action), back])
    dst = norm(args["dst"]) if args["dst"] and action in ("copy", "move") else ""
    if dst and len(paths) > 1 and not os.path.isdir(ctx.home.resolve(dst)):
        raise ClientError("%s: not a folder; several items can only go into a folder" % dst)
    objects, code = [], 0
    if action == "pack":
        rows, objects = _pack(ctx, paths, args["dst"])
    elif action == "emptytrash":
        rows = _empty_trash(ctx)
    elif action == "unshare":
        if not args["share_id"]:
            raise ClientError("unshare needs the share_id of the link")
        rows = _unshare(ctx, args["share_id"])
    else:
        rows, objects, code = _each_selected(ctx, action, paths, dst)
    titles = {"delete": "Delete", "copy": "Copy", "move": "Move", "pack": "Pack",
              "unpack": "Unpack", "share": "Share", "unshare": "Revoke share link",
              "restore": "Restore", "emptytrash": "Empty the trash"}
    out = [O.header(titles[action]), _outcome(rows),
           O.table("fileaction", ACTION_COLUMNS, rows)] + objects
    if dst:
        target_folder = dst if os.path.isdir(ctx.home.resolve(dst)) else parent(dst)
        if target_folder != parent(paths[0]):
            out.append(O.link(cgi("fileman", path=target_folder), "Go to %s" % target_folder))
    out.append(back)
    return O.Result(out, code)


def _each_source(ctx, patterns, force, run):
    """run(rel) over every expansion; MiG-style file_not_found and error objects."""
    return each_path(ctx, patterns, lambda path: run(ctx.home.relative(path)),
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


def _place_cached(ctx, key, rel):
    """Move a finished chunked upload (.upload-cache/KEY) to rel (replacing a file)."""
    _rel, src = _cached(ctx.home, check_upload_name(key))  # a regular file in the cache
    final, _tmp = ctx.home.open_for_upload(rel)  # checks: folder exists, no folder in the way
    try:
        os.replace(src, final)
    except OSError as exc:
        raise ClientError("cannot write %s: %s" % (rel, exc.strerror or exc)) from None


def _incoming(ctx, args):
    """[(name, size, store(rel))]: the multipart parts in 'files', or the chunked
    uploads named in 'cached' (with their final names in 'filename')."""
    if args["cached"]:
        if len(args["cached"]) != len(args["filename"]):
            raise ClientError("give one filename for each cached upload")
        out = []
        for key, name in zip(args["cached"], args["filename"]):
            path = ctx.home.resolve("%s/%s" % (UPLOAD_CACHE, check_upload_name(key)))
            size = os.path.getsize(path) if os.path.isfile(path) else 0
            out.append((name, size, lambda rel, key=key: _place_cached(ctx, key, rel)))
        return out
    files = [(name, data) for field, name, data in ctx.files if field == "files"]
    if not files:
        raise ClientError("no files were uploaded: send them in the multipart field 'files'")
    limit = ctx.grid.config.max_upload_mb * 1024 * 1024
    total = sum(len(data) for _name, data in files)
    if total > limit:
        raise ClientError("the upload is %d bytes; at most %d MB are allowed"
                          % (total, ctx.grid.config.max_upload_mb))
    return [(name, len(data), lambda rel, data=data: _store(ctx, rel, data))
            for name, data in files]


@backend("upload", title="Upload Files", header="Upload Files", state_changing=True,
         fields={"dir": Field("path", default=(".",), help="the folder to upload into"),
                 "extract": Field("bool", help="unpack .zip/.tar(.gz/.bz2) archives"),
                 "submit": Field("bool", help="submit uploaded .mRSL files as jobs"),
                 "cached": Field("path", multi=True,
                                 help="instead of files: the names of finished chunked "
                                      "uploads in .upload-cache (see uploadchunked)"),
                 "filename": Field("path", multi=True,
                                   help="with cached: the file name each one gets")})
def upload(ctx, args):
    """Upload files (multipart field 'files', several at once, or finished chunked
    uploads named in 'cached') into a folder."""
    folder = norm(args["dir"])
    _folder(ctx, folder)
    extract, submit = truthy(args["extract"]), truthy(args["submit"])
    rows, objects, jobs, code = [], [], [], 0
    for name, size, store in _incoming(ctx, args):
        try:
            rel = join(folder, check_upload_name(name))
            store(rel)
            message = "stored as %s" % rel
            if extract and A.is_archive(name):
                skipped = []
                written = A.unpack_archive(ctx.home, rel, folder, skipped)
                message = "unpacked %d file%s into %s" % (len(written), "" if len(written) == 1
                                                          else "s", folder)
                objects += [O.warning("%s: not unpacked: %s" % s) for s in skipped]
                if submit:
                    jobs += [_mrsl_item(ctx, w) for w in written if w.lower().endswith(".mrsl")]
            if submit and name.lower().endswith(".mrsl"):
                jobs.append(_mrsl_item(ctx, rel))
            rows.append((name, size, "uploaded", message))
        except MigError as exc:
            rows.append((name, size, "failed", exc.message))
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
    if truthy(args["submitjob"]):
        rows, code = _submit_rows(ctx, [(rel, text)])
        objects.append(O.table("submitstatuslist", SUBMIT_COLUMNS, rows))
    objects.append(links([(cgi("editor", path=rel), "Edit again"),
                          (cgi("viewfile", path=rel), "View"),
                          (cgi("fileman", path=parent(rel)), "Back to the folder")]))
    return O.Result(objects, code)
