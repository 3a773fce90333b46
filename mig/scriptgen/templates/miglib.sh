# miglib.sh: the shared code of the MiG appliance user scripts (@@version).
#
# Sourced by every migNAME.sh from its own folder; not run by itself.
# Each operation is one curl call in MiG's user-script protocol:
#   POST /cgi-bin/NAME.py  body "_=certauth;output_format=txt&flags=F[&RAW]"
#                          followed by url-encoded NAME=VALUE fields,
#   CERTPUT /cert_redirect/PATH  the file as the body (upload),
#   GET /cert_redirect/PATH      the file (download).
# Exit status of a script: 0 on success, MiG's exit code from the reply's
# "Exit code: N" line (1 if N > 255) or 1 for a failed upload, curl's exit
# code when the request itself failed, 2 for a usage or configuration error.

MIG_SEP='    ::    '  # between source and destination in expand.py replies
unset "${!MIG_OPT_@}" "${!MIG_CONF_@}"
MIG_CONF=~/.mig/miguser.conf
MIG_DIR=$(dirname "${BASH_SOURCE[0]}")
MIG_SERVER=
MIG_FLAGS=
MIG_VERBOSE=
MIG_ARGS=()

mig_die() {  # MESSAGE: a usage or configuration error
    printf '%s: %s\n' "$MIG_SCRIPT" "$1" >&2
    exit 2
}

mig_main() {  # OPTSPEC FLAGS MIN_ARGS ARGS...: options, arguments, configuration
    # FLAGS: the options that are also server flags (sent in flags=)
    local spec="c:s:vVh$1" flags=$2 min=$3 opt OPTIND=1
    shift 3
    while getopts ":$spec" opt; do
        case $opt in
            c) MIG_CONF=$OPTARG ;;
            s) MIG_SERVER=$OPTARG ;;
            v) MIG_VERBOSE=1  # and the server's flag v, where the backend takes flags
               case $flags in *v*) MIG_FLAGS+=v ;; esac ;;
            V) echo "MiG appliance user scripts @@version"; exit 0 ;;
            h) mig_usage; exit 0 ;;
            :) mig_die "option -$OPTARG needs a value (see $MIG_SCRIPT -h)" ;;
            \?) mig_die "unknown option -$OPTARG (see $MIG_SCRIPT -h)" ;;
            *) # MIG_OPT_x holds the value of option -x (1 for a switch)
               printf -v "MIG_OPT_$opt" '%s' "${OPTARG:-1}"
               # server flags are lower case letters: migstatus -S sends s
               case $flags in *"$opt"*) MIG_FLAGS+=$(printf '%s' "$opt" | tr '[:upper:]' '[:lower:]') ;; esac ;;
        esac
        unset OPTARG
    done
    shift $((OPTIND - 1))
    [ $# -ge "$min" ] || { mig_usage | head -n 1 >&2; mig_die "missing arguments"; }
    MIG_ARGS=("$@")
    mig_configure
}

mig_configure() {  # read MIG_CONF: "key value" lines, '#' comments; a key's first line wins
    local key value var
    [ -r "$MIG_CONF" ] || mig_die "cannot read the configuration $MIG_CONF (use -c CONF)"
    while read -r key value || [ -n "$key" ]; do
        case $key in
            migserver|certfile|keyfile|cacertfile|password|token|connect_timeout|max_time) ;;
            *) continue ;;  # comments, blank lines and keys for other clients
        esac
        var=MIG_CONF_$key
        [ -z "${!var+set}" ] || continue
        value=${value/#\~/"$HOME"}
        value=${value//'${HOME}'/"$HOME"}
        printf -v "$var" '%s' "${value//'$HOME'/"$HOME"}"
    done < "$MIG_CONF"
    MIG_SERVER=${MIG_SERVER:-$MIG_CONF_migserver}
    MIG_SERVER=${MIG_SERVER%/}
    [ -n "$MIG_SERVER" ] || mig_die "no migserver in $MIG_CONF (or give -s URL)"
    MIG_CURL=(curl --compressed --location --silent --show-error)
    if [ -z "$MIG_CONF_token" ]; then
        [ -n "$MIG_CONF_certfile" ] && [ -n "$MIG_CONF_keyfile" ] ||
            mig_die "$MIG_CONF needs certfile and keyfile (or a token)"
        MIG_CURL+=(--cert "$MIG_CONF_certfile" --key "$MIG_CONF_keyfile")
    fi
    case $MIG_CONF_cacertfile in
        AUTO) ;;  # curl's own CA bundle
        '') MIG_CURL+=(--insecure)
            echo "$MIG_SCRIPT: warning: no cacertfile in $MIG_CONF:" \
                 "the server is not verified" >&2 ;;
        *) MIG_CURL+=(--cacert "$MIG_CONF_cacertfile") ;;
    esac
    [ -z "$MIG_CONF_connect_timeout" ] || MIG_CURL+=(--connect-timeout "$MIG_CONF_connect_timeout")
    [ -z "$MIG_CONF_max_time" ] || MIG_CURL+=(--max-time "$MIG_CONF_max_time")
    MIG_REPLY=$(mktemp "${TMPDIR:-/tmp}/migreply.XXXXXX") || mig_die "cannot make a temporary file"
    trap 'rm -f "$MIG_REPLY"' EXIT
    [ -z "$MIG_VERBOSE" ] || echo "using configuration in $MIG_CONF for $MIG_SERVER" >&2
}

mig_curl_quote() {  # TEXT: TEXT as a double-quoted curl config value
    local text=${1//\\/\\\\}
    printf '"%s"' "${text//\"/\\\"}"
}

mig_secrets() {  # curl config lines for the token and key password (never on the command line)
    [ -z "$MIG_CONF_token" ] ||
        printf 'header = %s\n' "$(mig_curl_quote "Authorization: Bearer $MIG_CONF_token")"
    [ -z "$MIG_CONF_password" ] || printf 'pass = %s\n' "$(mig_curl_quote "$MIG_CONF_password")"
}

mig_curl() {  # CURL_ARGS...: curl with the configured authentication and checks
    "${MIG_CURL[@]}" --config <(mig_secrets) "$@"
}

mig_quote() {  # PATH: percent-encode PATH (as UTF-8 bytes) for a URL
    local LC_ALL=C text=$1 out= char i
    for (( i = 0; i < ${#text}; i++ )); do
        char=${text:i:1}
        case $char in
            [A-Za-z0-9/:_.-]) out+=$char ;;
            *) printf -v char '%%%02X' "'$char"; out+=$char ;;
        esac
    done
    printf '%s' "$out"
}

mig_number() {  # VALUE: a raw (unencoded) field must be a whole number
    [[ $1 =~ ^[0-9]+$ ]] || mig_die "'$1' is not a whole number"
}

mig_word() {  # VALUE: a raw (unencoded) field must be a plain word
    [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || mig_die "'$1' is not a plain word"
}

mig_request() {  # KIND CURL_ARGS...: print the reply (txt or put KIND), return the status
    local kind=$1 http rc=0 first=
    shift
    http=$(mig_curl --output "$MIG_REPLY" --write-out '%{http_code}' "$@") || rc=$?
    cat "$MIG_REPLY"
    IFS= read -r first < "$MIG_REPLY"
    first=${first%$'\r'}
    if [ "$kind" = txt ] && [[ $first =~ ^Exit\ code:\ ([0-9]+) ]]; then
        first=${BASH_REMATCH[1]}
    elif [ "$kind" = put ] && [[ $first =~ ^[01]$ ]]; then
        :
    elif [ $rc -ne 0 ]; then
        return $rc
    else
        echo "$MIG_SCRIPT: unexpected reply from the server (HTTP $http)" >&2
        return 1
    fi
    [ "$first" -ne 0 ] || return $rc
    [ "$first" -gt 255 ] && return 1
    return "$first"
}

mig_post() {  # BACKEND RAW NAME=VALUE...: MiG's POST; RAW is appended to the raw first piece
    local url="$MIG_SERVER/cgi-bin/$1.py" field
    local -a data=(--data "_=certauth;output_format=txt&flags=$MIG_FLAGS$2")
    shift 2
    for field in "$@"; do
        data+=(--data-urlencode "$field")
    done
    mig_request txt "${data[@]}" --url "$url"
}

mig_upload() {  # LOCAL REMOTE [CONTENT_TYPE]: CERTPUT one file
    local -a header=()
    [ -f "$1" ] || { echo "$MIG_SCRIPT: $1: no such local file" >&2; return 2; }
    [ -z "$3" ] || header=(--header "Content-Type: $3")
    mig_request put --upload-file "$1" "${header[@]}" -X CERTPUT \
        --url "$MIG_SERVER/cert_redirect/$(mig_quote "$2")"
}

mig_download() {  # REMOTE LOCAL: GET one file into LOCAL (folders are made)
    mig_curl --fail --create-dirs --output "$2" --url "$MIG_SERVER/cert_redirect/$(mig_quote "$1")"
}

mig_content_type() {  # SUBMIT EXTRACT: the upload Content-Type for migput -p and -x
    case ${1:+p}${2:+x} in
        p) echo submitmrsl ;;
        x) echo extractpackage ;;
        px) echo submitandextract ;;
    esac
}

mig_put() {  # CONTENT_TYPE RECURSIVE LOCAL... DST: upload files, folders with RECURSIVE
    local type=$1 recursive=$2 dst folder= into= src file base status=0 i
    shift 2
    dst=${!#}
    local -a sources=("${@:1:$#-1}") dirs=() files=() remotes=()
    [ "$dst" != . ] || dst=
    if [ -z "$dst" ] || [[ $dst == */ ]] || [ $# -gt 2 ] || [ -n "$recursive" ]; then
        into=1 folder=${dst%/}${dst:+/}  # DST is a folder: keep the local names
    fi
    for src in "${sources[@]}"; do
        [ "$src" = / ] || src=${src%/}
        base=$(basename "$src")
        if [ -d "$src" ]; then
            if [ -z "$recursive" ]; then
                echo "$MIG_SCRIPT: $src is a folder: use -r" >&2
                status=2
                continue
            fi
            while IFS= read -r -d '' file; do
                dirs+=("path=$folder$base${file#"$src"}")
            done < <(find "$src" -type d -print0)
            while IFS= read -r -d '' file; do
                files+=("$file") remotes+=("$folder$base${file#"$src"}")
            done < <(find "$src" -type f -print0)
        else
            files+=("$src")
            if [ -n "$into" ]; then remotes+=("$folder$base"); else remotes+=("$dst"); fi
        fi
    done
    if [ ${#dirs[@]} -gt 0 ]; then
        MIG_FLAGS=p mig_post mkdir "" "${dirs[@]}" || status=$?
    fi
    for i in "${!files[@]}"; do
        mig_upload "${files[i]}" "${remotes[i]}" "$type" || status=$?
    done
    return $status
}

mig_get() {  # PATTERN... LOCALDIR: expand each remote pattern, then download each file
    local dest=${!#} pattern line src dst status=0 rc
    for pattern in "${@:1:$#-1}"; do
        rc=0
        mig_post expand "&with_dest=true" "path=$pattern" > /dev/null || rc=$?
        if [ $rc -ne 0 ]; then
            echo "$MIG_SCRIPT: warning: cannot get $pattern:" >&2
            sed -n '/^___/,$p' "$MIG_REPLY" | grep -v -e '^___' -e '^$' >&2
            status=$rc
            continue
        fi
        while IFS= read -r line; do
            case $line in *"$MIG_SEP"*) ;; *) continue ;; esac
            src=${line%%"$MIG_SEP"*} dst=${line#*"$MIG_SEP"}
            if [[ /$dst/ == *'/../'* || $dst == /* ]]; then
                echo "$MIG_SCRIPT: skipping the unsafe name $dst" >&2
                status=1
                continue
            fi
            mig_download "$src" "$dest/$dst" || status=$?
        done < "$MIG_REPLY"
    done
    return $status
}

mig_selftest() {  # PREFIX [OP...]: run the other scripts against the server in folder PREFIX
    local prefix=$1 local_dir op out failed=0 sum
    shift
    local -a common=(-c "$MIG_CONF") ops=("$@")
    [ -z "$MIG_SERVER" ] || common+=(-s "$MIG_SERVER")
    [ ${#ops[@]} -gt 0 ] || ops=(ls cat head tail wc stat md5sum sha1sum grep touch truncate
                                  cp mv zip unzip get rmdir status doc)
    local_dir=$(mktemp -d "${TMPDIR:-/tmp}/migtest.XXXXXX") || mig_die "cannot make a folder"
    trap 'rm -f "$MIG_REPLY"; rm -rf "$local_dir"' EXIT
    printf 'hello grid\nsecond line\n' > "$local_dir/hello.txt"
    sum=$(cksum < "$local_dir/hello.txt")
    step() {  # NAME SCRIPT ARGS...: run one script, quietly unless -v
        local name=$1 script=$2
        shift 2
        if out=$(bash "$MIG_DIR/mig$script.sh" "${common[@]}" "$@" 2>&1); then
            echo "$name test SUCCEEDED"
        else
            echo "$name test FAILED (exit $?)"
            failed=$((failed + 1))
        fi
        [ -z "$MIG_VERBOSE" ] || printf '%s\n' "$out"
    }
    step setup mkdir -p "$prefix/sub"
    step put put "$local_dir/hello.txt" "$prefix/"
    for op in "${ops[@]}"; do
        case $op in
            ls|cat|head|tail|wc|stat|md5sum|sha1sum) step "$op" "$op" "$prefix/hello.txt" ;;
            grep) step grep grep second "$prefix/hello.txt" ;;
            touch) step touch touch "$prefix/empty.txt" ;;
            truncate) step truncate truncate -n 0 "$prefix/empty.txt" ;;
            cp) step cp cp "$prefix/hello.txt" "$prefix/copy.txt" ;;
            mv) step mv mv "$prefix/hello.txt" "$prefix/moved.txt"
                step "mv back" mv "$prefix/moved.txt" "$prefix/hello.txt" ;;
            zip) step zip zip "$prefix/hello.txt" "$prefix/test.zip" ;;
            unzip) step unzip unzip "$prefix/test.zip" "$prefix/unzipped" ;;
            get) step get get "$prefix/hello.txt" "$local_dir/got"
                 [ "$(cksum < "$local_dir/got/hello.txt" 2>/dev/null)" = "$sum" ] ||
                     { echo "get test FAILED (wrong contents)"; failed=$((failed + 1)); } ;;
            rmdir) step rmdir rmdir "$prefix/sub" ;;
            status|doc) step "$op" "$op" ;;
            *) echo "$op test FAILED (no self test for $op)"; failed=$((failed + 1)) ;;
        esac
    done
    step cleanup rm -r -f "$prefix"
    [ $failed -eq 0 ] || { echo "$failed test(s) FAILED" >&2; return 1; }
}
