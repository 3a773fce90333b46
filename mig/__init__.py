"""The MiG appliance: a Minimum intrusion Grid in one stdlib-only Python package."""

__version__ = "0.1.0"
