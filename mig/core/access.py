"""Access rights, checked in one place: which VGrids a user may use.

Until VGrids arrive every user is a member of Generic only; the functions
here are the seam that the VGrid and access-right features fill in.
"""

from mig.core.keywords import DEFAULT_VGRID
from mig.errors import MrslError


def user_vgrids(user):
    """VGrids the user owns or is a member of, in the user's order."""
    return [DEFAULT_VGRID]


def resolve_job_vgrids(user, spec):
    """Expand ANY, default to Generic, and refuse VGrids the user is not in."""
    allowed = user_vgrids(user)
    wanted = []
    for name in spec.get("VGRID") or [DEFAULT_VGRID]:
        for vgrid in (allowed if name.upper() == "ANY" else [name]):
            if vgrid not in wanted:
                wanted.append(vgrid)
    refused = [v for v in wanted if v not in allowed]
    if refused:
        raise MrslError("you are not a member of the VGrid(s) %s (yours: %s)"
                        % (", ".join(refused), ", ".join(allowed)), keyword="VGRID")
    spec["VGRID"] = wanted
    return spec

