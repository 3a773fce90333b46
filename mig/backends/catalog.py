"""Every backend, loaded: the one list of backend modules.

Each module registers its backends in mig.backends.REGISTRY when it is
imported; this module imports them all (the package itself imports none,
so that the modules can import it without a cycle).
"""

from mig.backends import (REGISTRY, accountpages, chunkedupload, fileactions, fileman, fileops,
                          files, filesearch, fileview, inbox, jobpages, jobs, mqueue, pages,
                          people, portal, ranges, resadmin, runtimeenvs, scripts, shares, shell,
                          submitpages, sweeps, upload, vgridcollab, vgridinvites, vgrids,
                          vgridtriggers, visibility)

MODULES = (accountpages, chunkedupload, fileactions, fileman, fileops, files, filesearch, fileview,
           inbox, jobpages, jobs, mqueue, pages, people, portal, ranges, resadmin, runtimeenvs,
           scripts, shares, shell, submitpages, sweeps, upload, vgridcollab, vgridinvites, vgrids,
           vgridtriggers, visibility)


def load_all():
    """Every backend by name (the modules above have registered theirs)."""
    return REGISTRY
