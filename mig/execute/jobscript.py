"""The bash script that runs one job's EXECUTE lines on any resource.

One bash session runs the lines in order (cd and variables persist); after
each line its exit code is appended to JOBID.status as ``<command> <code>``
(single quotes shown as backticks, as MiG does), and ``$?`` is restored
before the next line.  An EXIT trap records the line that ended the shell
(``exit 3``), so the status file is complete even then.
"""

import re
import shlex

def _env_value(value):
    """Double-quoted so that $VAR still expands, as in MiG; quotes escaped."""
    return '"%s"' % re.sub(r'(["\\`])', r"\\\1", value)


def job_script(job_id, spec, exe_unit_id="", enforce_memory=True, re_values=None):
    """Return the job script text for a spec whose +JOBID+/+JOBNAME+ are expanded.
    re_values: the resource's {runtime environment: {VARIABLE: value}}; the
    variables of each environment the job asks for are exported before the
    job's own ENVIRONMENT (which may use them)."""
    name = spec.get("JOBNAME") or ""
    lines = [
        "#!/bin/bash",
        "# MiG appliance job script for %s" % job_id,
        # The job's folder is the script's folder; no subshell (it runs per job).
        "case $0 in */*.job) cd \"${0%/*}\" || exit 1;; esac",
        "__mig_status=\"$PWD/%s.status\"" % job_id,
        ": > \"$__mig_status\"",
    ]
    exports = {"MIG_JOBID": job_id, "MIG_JOBNAME": name,
               "MIG_JOBCPUTIME": str(spec["CPUTIME"]), "MIG_JOBNODECOUNT": str(spec["NODECOUNT"]),
               "MIG_JOBCPUCOUNT": str(spec["CPUCOUNT"]), "MIG_JOBMEMORY": str(spec["MEMORY"]),
               "MIG_JOBDISK": str(spec["DISK"]), "MIG_EXEUNIT": exe_unit_id}
    for key, value in exports.items():
        lines.append("export %s=%s" % (key, shlex.quote(value)))
    lines.append("export MIG_JOBDIR=\"$PWD\"")
    if enforce_memory:
        lines.append("ulimit -v %d 2>/dev/null || echo \"system: ulimit 1\" >> \"$__mig_status\""
                     % ((int(spec["MEMORY"]) + 16) * 1024))
    for runtimeenv in spec.get("RUNTIMEENVIRONMENT", []):
        for key, value in sorted((re_values or {}).get(runtimeenv, {}).items()):
            lines.append("export %s=%s || echo \"system: set runtime environments 1\" >> "
                         "\"$__mig_status\"" % (key, _env_value(value)))
    for key, value in spec.get("ENVIRONMENT", []):
        lines.append("export %s=%s || echo \"system: set environments 1\" >> \"$__mig_status\""
                     % (key, _env_value(value)))
    lines += [
        "__mig_cur=''",
        "__mig_ret() { return \"$1\"; }",
        "__mig_exit() { __mig_rc=$?; if [ -n \"$__mig_cur\" ]; then "
        "printf '%s %d\\n' \"$__mig_cur\" \"$__mig_rc\" >> \"$__mig_status\"; fi; }",
        "trap __mig_exit EXIT",
        "__mig_rc=0",
        "{",
    ]
    for command in spec["EXECUTE"]:
        shown = command.replace("'", "`")
        lines += [
            "__mig_cur=%s" % shlex.quote(shown),
            "__mig_ret $__mig_rc",
            command,
            "__mig_rc=$?",
            "printf '%s %d\\n' \"$__mig_cur\" \"$__mig_rc\" >> \"$__mig_status\"",
            "__mig_cur=''",
        ]
    lines += [
        "} > %s.stdout 2> %s.stderr" % (job_id, job_id),
        "exit 0",
        "",
    ]
    return "\n".join(lines)


def parse_status(text):
    """JOBID.status text -> [(command, exit_code)] (system lines included)."""
    results = []
    for line in text.splitlines():
        command, _, code = line.rstrip().rpartition(" ")
        if command and code.lstrip("-").isdigit():
            results.append((command, int(code)))
    return results
