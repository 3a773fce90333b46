"""Access rights for jobs: which VGrids a job may name.

The VGrid records (mig/core/vgrids.py) say who is in which VGrid; this is
where a submitted job's VGRID list is checked against them, the same way
for every entry point (portal, scripts, sweeps).
"""

from mig.core.keywords import DEFAULT_VGRID
from mig.errors import MrslError


def resolve_job_vgrids(allowed, spec):
    """Expand ANY to the user's VGrids (allowed: Generic and the VGrids the
    user owns or is a member of), default to Generic, and refuse VGrids the
    user is not in."""
    wanted = []
    for name in spec.get("VGRID") or [DEFAULT_VGRID]:
        for vgrid in (allowed if name.upper() in ("ANY", "ALL") else [name]):
            if vgrid not in wanted:
                wanted.append(vgrid)
    refused = [v for v in wanted if v not in allowed]
    if refused:
        raise MrslError("you are not a member of the VGrid(s) %s (yours: %s)"
                        % (", ".join(refused), ", ".join(allowed)), keyword="VGRID")
    spec["VGRID"] = wanted
    return spec
