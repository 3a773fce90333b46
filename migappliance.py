#!/usr/bin/env python3
"""The MiG appliance: run `python3 migappliance.py serve` to host a grid.

Thin entry point: checks the Python version, puts the checkout (or the
zipapp) on sys.path and hands over to mig.cli.main().  Copied into the
zipapp as __main__.py.
"""

import os
import sys

if sys.version_info < (3, 9):
    sys.exit("the MiG appliance needs Python 3.9 or newer (this is %s)" % sys.version.split()[0])

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from mig.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
