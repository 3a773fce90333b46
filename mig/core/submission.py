"""The one path from job text to a job spec that may be queued.

Parsing, the VGrid rights and the runtime environment check happen here,
for single submissions, uploads and every job a sweep makes alike.
"""

from mig.core import access, jobspec
from mig.errors import MrslError


def prepare(user_vgrids, text, known_runtimeenvs, job_retries):
    """mRSL or JSON text -> a checked spec, or MrslError naming what is wrong.
    user_vgrids: the VGrids of the submitting user (VGridDB.user_vgrids)."""
    spec = jobspec.parse_job(text, job_retries)
    access.resolve_job_vgrids(list(user_vgrids), spec)
    unknown = [re for re in spec["RUNTIMEENVIRONMENT"] if re not in known_runtimeenvs]
    if unknown:
        raise MrslError("runtime environment(s) %s do not exist on this grid (known: %s)"
                        % (", ".join(unknown), ", ".join(sorted(known_runtimeenvs)) or "none"),
                        keyword="RUNTIMEENVIRONMENT")
    return spec
