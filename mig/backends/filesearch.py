"""Search in the Files page: by name (substring or wildcards) and, when asked,
by content, in a folder and below; bounded in names, hits, bytes and time,
and blind to links, pipes and the upload cache."""

import fnmatch
import os
import time

from mig.backends.chunkedupload import UPLOAD_CACHE
from mig.backends.fileshared import (SEARCH_BYTES, SEARCH_ENTRIES, SEARCH_FILE_BYTES, SEARCH_HITS,
                                     SEARCH_SECONDS, back_to, download_href, folder_of, when)
from mig.backends.portal import page_url
from mig.core import home as H
from mig.core import homeops as F
from mig.core.quota import human_size
from mig.render import objects as O


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
    top = folder_of(ctx, rel)
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
                              "href": page_url("fileman", path=found) if is_dir
                              else download_href(found)},
                             "" if is_dir else {"text": human_size(os.lstat(full).st_size)},
                             when(os.lstat(full).st_mtime), where])
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
