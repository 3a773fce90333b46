"""The Files page (fileman): a folder's listing with sorting, the selection
actions, the upload widget, new folders and share links; and the helpers
the other Files backends share (filesearch, fileactions, upload, fileview).

Pages are output objects only (tables, forms, links); every path goes
through the caller's Home, so nothing here can reach outside it.
"""

import os

from mig.backends import Field, backend, truthy
from mig.backends.fileshared import (MAX_ROWS, SCRIPTS, SORT_KEYS, download_href, folder_of,
                                     in_trash, is_editable, links, when)
from mig.backends.filesearch import search_results
from mig.backends.homepaths import join, norm
from mig.backends.portal import page_url
from mig.core import home as H
from mig.core.quota import human_size
from mig.core import sharelinks as S
from mig.render import objects as O


def _breadcrumbs(rel):
    pairs = [(page_url("fileman", path="."), "Home")]
    if rel != ".":
        parts = rel.split("/")
        for number, part in enumerate(parts, 1):
            pairs.append((page_url("fileman", path="/".join(parts[:number])), part))
    return links(pairs)


def _row(ctx, folder_path, rel_folder, entry):
    name = entry["name"]
    rel = join(rel_folder, name)
    is_dir = os.path.isdir(os.path.join(folder_path, name))
    row = [{"checkbox": "path", "value": rel}]
    rename = {"text": "Rename", "href": page_url("filemove", path=rel, mode="rename")}
    if is_dir:
        row += [{"text": name + "/", "href": page_url("fileman", path=rel)}, "",
                when(entry["mtime"]), "", "", "", rename, ""]
        return row
    row += [{"text": name, "href": download_href(rel)}, {"text": human_size(entry["size"])},
            when(entry["mtime"]),
            {"text": "Download", "href": download_href(rel), "download": name},
            {"text": "View", "href": page_url("viewfile", path=rel)},
            {"text": "Edit", "href": page_url("editor", path=rel)}
            if is_editable(name, entry["size"]) else "",
            rename,
            {"text": "Submit", "href": page_url("viewfile", path=rel)}
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
        pairs.append((page_url("fileman", **query), "Sort by %s%s" % (label.lower(), arrow)))
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
    path = folder_of(ctx, rel)
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
    objects.append(links([(page_url("fileman", path=rel, flags="" if show_all else "a"),
                           "Hide hidden files" if show_all else "Show hidden files"),
                          (page_url("editor", path=join(rel, "new.txt")), "New text file"),
                          (page_url("fileman", path=H.TRASH), "Trash"),
                          (page_url("sharedfolders", path="" if rel == "." else rel),
                           "Open this folder to others" if rel != "." else "Shared folders"),
                          (page_url("shell"), "Shell")]))
    objects.append(_upload_form(rel))
    objects.append({"object_type": "form", "action": "mkdir", "submit": "Create folder",
                    "fields": [{"name": "path", "type": "text", "label": "New folder",
                                "value": "" if rel == "." else rel + "/",
                                "help": "a path in your home"}]})
    objects += [O.header("Share links"), _share_table(ctx)]
    return O.Result(objects)
