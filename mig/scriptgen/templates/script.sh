#!/usr/bin/env bash
# @@script: @@summary
#
# A MiG appliance user script (@@version): needs bash, curl and miglib.sh
# from the same folder.  Run "@@script -h" for help.

mig_usage() {
    cat <<'END_OF_HELP'
@@help
END_OF_HELP
}

MIG_SCRIPT=@@script
source "$(dirname "${BASH_SOURCE[0]}")/miglib.sh" || exit 2
mig_main '@@optspec' '@@flags' @@min_args "$@"
set -- "${MIG_ARGS[@]}"

@@body
