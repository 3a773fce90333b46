"""Viewing a file in the browser (viewfile: text, images, a download for the
rest) and editing a text file (editor, editfile)."""

import os
import posixpath

from mig.backends import Field, backend, truthy
from mig.backends.fileshared import (EDIT_LIMIT, IMAGES, NEWLINES, VIEW_LIMIT, download_href, links,
                                     read_text, store_file)
from mig.backends.homepaths import norm, parent
from mig.backends.jobs import SUBMIT_COLUMNS, _submit_rows
from mig.backends.portal import page_url
from mig.core.quota import human_size
from mig.errors import ClientError
from mig.render import objects as O


@backend("viewfile", title="View File", header="View File",
         fields={"path": Field("path", required=True)})
def viewfile(ctx, args):
    """Show a file: images inline, text as text, anything else as a download link."""
    rel = norm(args["path"])
    path = ctx.home.resolve(rel, must_exist=True)
    if os.path.isdir(path):
        return O.Result([O.header(rel), O.text("%s is a folder." % rel),
                         O.link(page_url("fileman", path=rel), "Open the folder")])
    if not os.path.isfile(path):
        raise ClientError("%s: not a regular file" % rel)
    name, size = posixpath.basename(rel), os.path.getsize(path)
    objects = [O.header(rel)]
    actions = [(download_href(rel), "Download (%s)" % human_size(size))]
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
                                  % (name, human_size(size))))
        else:
            if size > VIEW_LIMIT:
                objects.append(O.warning("showing the first %s of %s" % (human_size(VIEW_LIMIT),
                                                                       human_size(size))))
            objects.append(O.verbatim(data.decode("utf-8", "replace")))
            if size <= EDIT_LIMIT:
                actions.append((page_url("editor", path=rel), "Edit"))
    if lower.endswith(".mrsl"):
        objects.append({"object_type": "post_button", "backend": "submit",
                        "fields": {"path": rel}, "text": "Submit this job", "style": ""})
    actions.append((page_url("fileman", path=parent(rel)), "Back to the folder"))
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
    objects.append(links([(page_url("viewfile", path=rel), "View"),
                          (page_url("fileman", path=parent(rel)), "Back to the folder")]))
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
    store_file(ctx, rel, data)
    objects = [O.header("Saved %s" % rel), O.text("Saved %d bytes to %s" % (len(data), rel))]
    code = 0
    if truthy(args["submitjob"]):
        rows, code = _submit_rows(ctx, [(rel, text)])
        objects.append(O.table("submitstatuslist", SUBMIT_COLUMNS, rows))
    objects.append(links([(page_url("editor", path=rel), "Edit again"),
                          (page_url("viewfile", path=rel), "View"),
                          (page_url("fileman", path=parent(rel)), "Back to the folder")]))
    return O.Result(objects, code)
