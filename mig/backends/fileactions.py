"""What the Files page does to the files ticked in its list (fileaction:
delete to Trash and restore, copy, move, pack, unpack, share), the copy or
move form (filemove) and MiG's cp and mv."""

import json
import os
import time

from mig.backends import Field, backend
from mig.backends.fileshared import (ACTION_COLUMNS, ORIGINS, back_to, in_trash, store_file)
from mig.backends.homepaths import each_path, join, norm, parent
from mig.backends.portal import page_url
from mig.core import archives as A
from mig.core import home as H
from mig.core import homeops as F
from mig.core import sharelinks as S
from mig.errors import ClientError, MigError
from mig.render import objects as O


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
        store_file(ctx, "%s/%s" % (H.TRASH, ORIGINS), json.dumps(origins).encode("utf-8"))


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
    return O.success(text)


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
            out.append(O.link(page_url("fileman", path=target_folder), "Go to %s" % target_folder))
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
