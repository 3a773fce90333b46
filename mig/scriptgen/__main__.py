"""python -m mig.scriptgen docs [--check] [DOCS_DIR]
python -m mig.scriptgen write DIR [--server URL] [--user NAME]

docs: (re)write DOCS_DIR/scripts.md (default docs), or with --check exit 1
if it is out of date.  write: put the scripts, miglib.sh and a miguser.conf
into DIR, e.g. to try them without a server-side download.
"""

import argparse
import os
import sys

from mig import scriptgen
from mig.scriptgen import docs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mig.scriptgen",
                                     description="MiG user scripts and their docs")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("docs", help="write or check docs/scripts.md")
    doc.add_argument("docs_dir", nargs="?", default="docs")
    doc.add_argument("--check", action="store_true")
    out = sub.add_parser("write", help="write the scripts into a folder")
    out.add_argument("dir")
    out.add_argument("--server", default="https://localhost:8443")
    out.add_argument("--user", default="user")
    args = parser.parse_args(argv)
    if args.command == "docs":
        if args.check:
            if docs.check(args.docs_dir):
                print("out of date: %s (run python -m mig.scriptgen docs %s)"
                      % (os.path.join(args.docs_dir, docs.NAME), args.docs_dir))
                return 1
            return 0
        if docs.write(args.docs_dir):
            print("wrote %s" % os.path.join(args.docs_dir, docs.NAME))
        return 0
    os.makedirs(args.dir, exist_ok=True)
    for name, text in scriptgen.scripts(args.server, args.user).items():
        path = os.path.join(args.dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o755 if name.endswith(".sh") and name != scriptgen.LIB else 0o644)
    print("wrote %d files into %s" % (len(scriptgen.names()), args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
