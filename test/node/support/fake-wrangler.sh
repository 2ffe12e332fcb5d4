#!/bin/sh
# A stand-in for wrangler in the deploy tests (R2C_WRANGLER_BIN): it logs each call as a JSON line
# to FAKE_WRANGLER_LOG (with the secrets a `deploy --secrets-file` would set) and answers as a
# logged-in wrangler would. FAKE_WRANGLER_SECRETS lists the secrets the Workers already have, as
# `config:NAME,NAME` words (one per config path); FAKE_WRANGLER_NO_SUBDOMAIN makes `deploy` fail
# as it does on an account without one.
# POSIX sh, not Node: the tests start it about eighty-five times, and each start of Node costs
# about 0.09 CPU-seconds (8 for the file), one of sh a few milliseconds.
set -eu
set -f

config=""
secrets_file=""
logged=""
previous=""
for arg in "$@"; do
	if [ "$previous" = "-c" ] && [ -z "$config" ]; then config=$arg; fi
	if [ "$previous" = "--secrets-file" ]; then secrets_file=$arg; fi
	previous=$arg
	# A JSON string: a backslash or a double quote is escaped (the arguments hold no control characters).
	case $arg in *[\\\"]*) arg=$(printf '%s' "$arg" | sed 's/[\\"]/\\&/g') ;; esac
	logged="$logged${logged:+,}\"$arg\""
done
command=${1:-}
sub=${2:-}
# `deploy --secrets-file F` and `secret bulk F` both set the secrets a JSON file holds (one line).
if [ "$command" = secret ] && [ "$sub" = bulk ]; then secrets_file=${3:-}; fi
secrets=null
if [ -n "$secrets_file" ]; then secrets=$(cat "$secrets_file"); fi
printf '{"args":[%s],"secrets":%s}\n' "$logged" "$secrets" >>"${FAKE_WRANGLER_LOG:-/dev/null}"

case "$command $sub" in
"whoami ")
	echo "You are logged in with an API Token."
	;;
"d1 list")
	echo '[{"name":"r2-captions","uuid":"00000000-0000-0000-0000-000000000000"}]'
	;;
"secret list")
	names=""
	for entry in ${FAKE_WRANGLER_SECRETS:-}; do
		case $entry in "$config:"*) names=${entry#"$config:"} ;; esac
	done
	list=""
	IFS=,
	for name in $names; do list="$list${list:+,}{\"name\":\"$name\",\"type\":\"secret_text\"}"; done
	echo "[$list]"
	;;
deploy\ *)
	if [ -n "${FAKE_WRANGLER_NO_SUBDOMAIN:-}" ]; then
		echo "✘ [ERROR] You need to register a workers.dev subdomain before publishing to workers.dev" >&2
		exit 1
	fi
	printf 'Deployed %s\n  https://%s.team.workers.dev\n' "$config" "$(printf '%s' "$config" | sed 's/[^A-Za-z0-9_][^A-Za-z0-9_]*/-/g')"
	;;
esac
