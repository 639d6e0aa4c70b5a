#!/bin/sh
# The image's entrypoint: the first argument picks the role, the rest goes to it.
# Each role `exec`s its command, so the service replaces this shell and gets SIGTERM itself.
# Settings come from the environment only (docs/operators/settings.md; docs/operators/deploying.md).
set -eu

usage() {
    cat >&2 <<'USAGE'
usage: ROLE [ARGS...], where ROLE is one of
  serve        the web service (ivr serve --no-migrate) on 0.0.0.0:$PORT (default 8000),
               behind a buffering proxy named in IVR_TRUSTED_PROXIES;
               $IVR_SERVE_WORKERS processes (default 2) of $IVR_SERVE_THREADS threads (default 8)
  worker       writes tickets from the journal (ivr worker)
  migrate      brings the database schema to the code's (ivr db upgrade), then exits
  ivr ARGS...  any ivr command (ivr check routing_rules.yaml, ivr admins set-password NAME, ...)
USAGE
}

role=${1:-}
[ $# -gt 0 ] && shift

case "$role" in
serve)
    if [ -z "${IVR_TRUSTED_PROXIES:-}" ]; then
        echo "cannot start: IVR_TRUSTED_PROXIES is not set. In a container ivr serve listens on" \
            "0.0.0.0, so name the proxies in front of it (nginx's address, or the network of" \
            "the ingress controller): clients must never reach gunicorn directly." >&2
        exit 1
    fi
    exec ivr serve --no-migrate --host 0.0.0.0 --port "${PORT:-8000}" \
        --workers "${IVR_SERVE_WORKERS:-2}" --threads "${IVR_SERVE_THREADS:-8}" "$@"
    ;;
worker)
    exec ivr worker "$@"
    ;;
migrate)
    exec ivr db upgrade "$@"
    ;;
ivr)
    exec ivr "$@"
    ;;
*)
    if [ -n "$role" ]; then
        echo "unknown role: $role" >&2
    fi
    usage
    exit 64 # EX_USAGE
    ;;
esac
