"""The user scripts, one template per operation.

Each entry is rendered into ``mig<name>.sh`` by ``templates/script.sh`` and
into its section of docs/scripts.md.  ``body`` is plain bash run after the
options are parsed (the arguments are in "$@"; option -x is in $MIG_OPT_x);
the functions it calls are in ``templates/miglib.sh``.  ``flags`` are the
options that are also MiG server flags; ``examples`` are command lines
that tests/test_user_scripts.py runs against a live appliance.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    summary: str
    args: str = ""
    options: tuple = ()  # ("-n N", "help"), ...
    flags: str = ""
    min_args: int = 0
    request: str = ""
    body: str = ""
    examples: tuple = ()
    upstream: bool = True  # False: an operation upstream MiG has no script for
    verbose_flag: bool = True  # False: the backend takes no flags, so -v stays local


PATHS = 'mig_post %s "" "${@/#/path=}"'
JOBS = 'mig_post %s "%s" "${@/#/job_id=}"'
SRC_DST = 'sources=("${@:1:$#-1}")\nmig_post %s "" "${sources[@]/#/src=}"%s "dst=${!#}"'

OPS = {
    "ls": Op("List files and folders in your home (wildcards are expanded on the server).",
             "[PATH...]", (("-a", "all: also names starting with a dot"),
                           ("-l", "long listing: mode, size, modification time (UTC)"),
                           ("-r", "recursive")),
             flags="alr", request="POST ls.py: path (default .)",
             body='[ $# -gt 0 ] || set -- .\n' + PATHS % "ls",
             examples=("migls.sh", "migls.sh -l hello.txt")),
    "cat": Op("Print files.", "FILE...", min_args=1, request="POST cat.py: path",
              body=PATHS % "cat", examples=("migcat.sh hello.txt",)),
    "head": Op("Print the first lines of files.", "FILE...",
               (("-n N", "the number of lines (default 20)"),), min_args=1,
               request="POST head.py: lines (raw), path",
               body='mig_number "${MIG_OPT_n:=20}"\n'
                    'mig_post head "&lines=$MIG_OPT_n" "${@/#/path=}"',
               examples=("mighead.sh -n 1 hello.txt",)),
    "tail": Op("Print the last lines of files.", "FILE...",
               (("-n N", "the number of lines (default 20)"),), min_args=1,
               request="POST tail.py: lines (raw), path",
               body='mig_number "${MIG_OPT_n:=20}"\n'
                    'mig_post tail "&lines=$MIG_OPT_n" "${@/#/path=}"',
               examples=("migtail.sh -n 1 hello.txt",)),
    "wc": Op("Count lines, words and bytes of files.", "FILE...",
             (("-b", "bytes"), ("-l", "lines"), ("-w", "words")), flags="blw", min_args=1,
             request="POST wc.py: path", body=PATHS % "wc", examples=("migwc.sh hello.txt",)),
    "stat": Op("Show the status (size, mode, times ...) of files.", "FILE...", min_args=1,
               request="POST statpath.py: path", body=PATHS % "statpath",
               examples=("migstat.sh hello.txt",)),
    "md5sum": Op("Print the MD5 checksums of files.", "FILE...", min_args=1,
                 request="POST chksum.py: hash_algo=md5 (raw), path",
                 body='mig_post chksum "&hash_algo=md5" "${@/#/path=}"',
                 examples=("migmd5sum.sh hello.txt",)),
    "sha1sum": Op("Print the SHA-1 checksums of files.", "FILE...", min_args=1,
                  request="POST chksum.py: hash_algo=sha1 (raw), path",
                  body='mig_post chksum "&hash_algo=sha1" "${@/#/path=}"',
                  examples=("migsha1sum.sh hello.txt",)),
    "grep": Op("Print the lines of files that match a pattern.", "PATTERN FILE...",
               min_args=2, request="POST grep.py: path, pattern",
               body='pattern=$1\nshift\nmig_post grep "" "${@/#/path=}" "pattern=$pattern"',
               examples=("miggrep.sh second hello.txt",)),
    "touch": Op("Create empty files, or update their modification time.", "FILE...",
                min_args=1, request="POST touch.py: path", body=PATHS % "touch",
                examples=("migtouch.sh dir1/empty.txt",)),
    "truncate": Op("Cut files to a size.", "FILE...",
                   (("-n SIZE", "the size in bytes (default 0)"),), min_args=1,
                   request="POST truncate.py: size (raw), path",
                   body='mig_number "${MIG_OPT_n:=0}"\n'
                        'mig_post truncate "&size=$MIG_OPT_n" "${@/#/path=}"',
                   examples=("migtruncate.sh -n 5 dir1/moved.txt",)),
    "mkdir": Op("Make folders.", "FOLDER...", (("-p", "make parents too; no error if it exists"),),
                flags="p", min_args=1, request="POST mkdir.py: path", body=PATHS % "mkdir",
                examples=("migmkdir.sh dir1", "migmkdir.sh -p dir2/sub")),
    "rm": Op("Remove files (they are moved to Trash/ unless -f).", "PATH...",
             (("-f", "force: delete at once, not into Trash/"), ("-r", "recursive: folders too")),
             flags="fr", min_args=1, request="POST rm.py: path", body=PATHS % "rm",
             examples=("migrm.sh dir1/empty.txt", "migrm.sh -r -f dir1")),
    "rmdir": Op("Remove empty folders.", "FOLDER...", (("-p", "parents too"),), flags="p",
                min_args=1, request="POST rmdir.py: path", body=PATHS % "rmdir",
                examples=("migrmdir.sh dir2/sub",)),
    "mv": Op("Move or rename files and folders.", "SRC... DST", min_args=2,
             request="POST mv.py: src, dst", body=SRC_DST % ("mv", ""),
             examples=("migmv.sh dir1/copy.txt dir1/moved.txt",)),
    "cp": Op("Copy files and folders.", "SRC... DST",
             (("-f", "force: overwrite"), ("-r", "recursive: folders too")), flags="fr",
             min_args=2, request="POST cp.py: src, dst", body=SRC_DST % ("cp", ""),
             examples=("migcp.sh hello.txt dir1/copy.txt",)),
    "zip": Op("Pack files and folders into a zip file.", "SRC... DST.zip", min_args=2,
              request="POST zip.py: src, current_dir (empty), dst",
              body=SRC_DST % ("zip", ' "current_dir="'),
              examples=("migzip.sh hello.txt hello.zip",)),
    "unzip": Op("Unpack zip or tar files into a folder.", "SRC... DSTFOLDER", min_args=2,
                request="POST unzip.py: src, dst", body=SRC_DST % ("unzip", ""),
                examples=("migunzip.sh hello.zip unzipped",)),
    "put": Op("Upload local files; end DST with / (or give .) to keep the names.",
              "LOCAL... DST",
              (("-p", "submit uploaded .mRSL files as jobs"),
               ("-x", "unpack uploaded zip/tar files"),
               ("-r", "recursive: upload folders")),
              min_args=2,
              request="CERTPUT /cert_redirect/DST (Content-Type submitmrsl, extractpackage or "
                      "submitandextract with -p/-x); with -r first POST mkdir.py flags=p",
              body='mig_put "$(mig_content_type "$MIG_OPT_p" "$MIG_OPT_x")" "$MIG_OPT_r" "$@"',
              examples=("migput.sh hello.txt .", "migput.sh -p job.mRSL .",
                        "migput.sh -r folder .")),
    "get": Op("Download files (remote wildcards allowed) into a local folder.",
              "REMOTE... LOCALDIR", (("-r", "recursive: folders too"),), flags="r", min_args=2,
              request="POST expand.py: with_dest=true (raw), path; then GET "
                      "/cert_redirect/PATH for each file",
              body='mig_get "$@"',
              examples=("migget.sh job_output/JOBID/JOBID.stdout out",
                        "migget.sh -r folder out")),
    "submit": Op("Submit jobs: mRSL files in your home, or local files with -l.", "MRSL...",
                 (("-l", "the files are local: upload and submit them"),), min_args=1,
                 request="POST submit.py: path; with -l CERTPUT /cert_redirect/NAME "
                         "(Content-Type submitandextract)",
                 body='if [ -n "$MIG_OPT_l" ]; then\n'
                      '    mig_put submitandextract "" "$@" .\n'
                      'else\n'
                      '    ' + PATHS % "submit" + '\nfi',
                 examples=("migsubmit.sh job.mRSL", "migsubmit.sh -l job.mRSL")),
    "status": Op("Show the status of jobs (all jobs when no JOBID is given).", "[JOBID...]",
                 (("-m MAX", "show at most MAX jobs (default 1000000)"),
                  ("-S", "sort by last change")),
                 flags="S", request="POST jobstatus.py: max_jobs (raw), job_id",
                 body='mig_number "${MIG_OPT_m:=1000000}"\n'
                      + JOBS % ("jobstatus", "&max_jobs=$MIG_OPT_m"),
                 examples=("migstatus.sh JOBID", "migstatus.sh -m 1")),
    "cancel": Op("Cancel jobs.", "JOBID...", min_args=1,
                 request="POST jobaction.py: action=cancel (raw), job_id",
                 body=JOBS % ("jobaction", "&action=cancel"), examples=("migcancel.sh JOBID",)),
    "jobaction": Op("Cancel, freeze or thaw jobs.", "ACTION JOBID...", min_args=2,
                    request="POST jobaction.py: action (raw), job_id",
                    body='mig_word "$1"\naction=$1\nshift\n'
                         + JOBS % ("jobaction", "&action=$action"),
                    examples=("migjobaction.sh freeze JOBID", "migjobaction.sh thaw JOBID")),
    "freeze": Op("Freeze queued jobs: they wait until thawed.", "JOBID...", min_args=1,
                 request="POST jobaction.py: action=freeze (raw), job_id",
                 body=JOBS % ("jobaction", "&action=freeze"), examples=("migfreeze.sh JOBID",),
                 upstream=False),
    "thaw": Op("Thaw frozen jobs: they are queued again.", "JOBID...", min_args=1,
               request="POST jobaction.py: action=thaw (raw), job_id",
               body=JOBS % ("jobaction", "&action=thaw"), examples=("migthaw.sh JOBID",),
               upstream=False),
    "resubmit": Op("Submit jobs again as new jobs.", "JOBID...", min_args=1,
                   request="POST resubmit.py: job_id", body=JOBS % ("resubmit", ""),
                   examples=("migresubmit.sh JOBID",)),
    "feasible": Op("Tell per resource whether it can run jobs, and if not why not.",
                   "JOBID...", min_args=1, request="POST jobfeasible.py: job_id",
                   body=JOBS % ("jobfeasible", ""), examples=("migfeasible.sh JOBID",),
                   upstream=False),
    "liveio": Op("Exchange files with a running job: get copies files of your home into "
                 "the job's folder, put copies the job's files (e.g. JOBID.stdout) into your "
                 "home.", "get|put JOBID SRC... DST", min_args=4,
                 request="POST liveio.py: action (raw), src, job_id, dst",
                 body='mig_word "$1"\naction=$1 job=$2\nshift 2\nsources=("${@:1:$#-1}")\n'
                      'mig_post liveio "&action=$action" "${sources[@]/#/src=}" '
                      '"job_id=$job" "dst=${!#}"',
                 examples=("migliveio.sh put JOBID JOBID.stdout live",
                           "migliveio.sh get JOBID hello.txt ."), verbose_flag=False),
    "mqueue": Op("Use message queues: create, remove, send, receive, show, listqueues, "
                 "listmessages.", "ACTION [QUEUE [MESSAGE]]", min_args=1,
                 request="POST mqueue.py: action (raw), queue, msg",
                 body='mig_word "$1"\nmig_post mqueue "&action=$1" "queue=$2" "msg=$3"',
                 examples=("migmqueue.sh create q1", "migmqueue.sh send q1 hello",
                           "migmqueue.sh receive q1"), verbose_flag=False),
    "doc": Op("Show the built-in documentation (the topics when no TOPIC is given).",
              "[TOPIC...]",
              request="POST docs.py: search, show (one request per TOPIC)",
              body='if [ $# -eq 0 ]; then\n'
                   '    mig_post docs "" "search=*" "show="\n'
                   '    exit\n'
                   'fi\n'
                   'status=0\n'
                   'for topic in "$@"; do\n'
                   '    mig_post docs "" "search=" "show=$topic" || status=$?\n'
                   'done\n'
                   'exit $status',
              examples=("migdoc.sh", "migdoc.sh mrsl"), verbose_flag=False),
    "test": Op("Test the scripts against the server in a scratch folder (all operations "
               "when no OP is given); exits non-zero if a test fails.", "[OP...]",
               (("-p PREFIX", "the scratch folder in your home (default migtest-PID); "
                              "it is removed afterwards"),),
               request="the other scripts",
               body='mig_selftest "${MIG_OPT_p:-migtest-$$}" "$@"',
               examples=("migtest.sh",)),
}
