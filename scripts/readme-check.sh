#!/usr/bin/env bash
# readme-check.sh [README]: run the README's walk-through as written.
#
# Every ```sh block of the README is run, in order, in one bash session in an
# empty temporary directory, with the checkout's bin/quantpack first on PATH
# (build it first: `make readme-check` does). A command must exit 0 unless its
# line ends in a comment "# exit N", which makes N the expected status. A
# block right after a line "<!-- readme-check: skip ... -->" is not run
# (setup such as `make build`, which this script runs after).
#
# Blocks that use $FIXTURES need the developers' fixtures (../shared/fixtures
# beside the checkout, or $FIXTURES): without them those blocks are skipped
# with a note, and fail under QUANTPACK_CI=1, like the Go tests.
#
# Exit status: 0 when every command did what the README says, 1 otherwise
# (the failing command, its line number and its output are printed).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
readme=${1:-$root/README.md}
bin=${QUANTPACK_BIN:-$root/bin/quantpack} # QUANTPACK_BIN: another build (the script's own test)
if [[ ! -x $bin ]]; then
	echo "readme-check: $bin not built; run make build (or make readme-check)" >&2
	exit 1
fi
if ! command -v jq >/dev/null; then
	echo "readme-check: the README pipes JSON through jq; install jq" >&2
	exit 1
fi
export ONNXRUNTIME_SHARED_LIBRARY_PATH=${ONNXRUNTIME_SHARED_LIBRARY_PATH:-$root/third_party/ort/libonnxruntime.so.1}
fixtures=${FIXTURES:-$root/../shared/fixtures}
have_fixtures=1
if [[ ! -d $fixtures/trained ]]; then
	have_fixtures=0
	if [[ ${QUANTPACK_CI:-} == 1 ]]; then
		echo "readme-check: fixtures not found at $fixtures (QUANTPACK_CI=1)" >&2
		exit 1
	fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/readme-check.XXXXXX")
gen=$work/.readme-check/run.sh
mkdir -p "$work/.readme-check"
trap 'rm -rf "$work"' EXIT

# Turn the README into one script: each command is followed by a check of
# its exit status against the expected one. awk reads the blocks; commands
# are copied verbatim (a line ending in "\" continues on the next one).
awk -v have_fixtures="$have_fixtures" '
function flush_block(   i) {
	if (nblock == 0) return
	if (uses_fixtures && have_fixtures == 0) {
		printf "echo \"readme-check: skipped the block at README line %d: no fixtures\"\n", block_line
	} else {
		for (i = 1; i <= nblock; i++) print block[i]
	}
	nblock = 0; uses_fixtures = 0
}
function emit(cmd, line,   want, shown) {
	want = 0
	if (match(cmd, /#[ \t]*exit[ \t]+[0-9]+[ \t]*$/)) {
		want = substr(cmd, RSTART, RLENGTH); gsub(/[^0-9]/, "", want)
	}
	if (cmd ~ /\$FIXTURES|\$\{FIXTURES/) uses_fixtures = 1
	shown = cmd; gsub(/\047/, "\047\\\047\047", shown)
	block[++nblock] = sprintf("__qp_start %d %d \047%s\047\n{\n%s\n} >\"$__qp_out\" 2>&1\n__qp_end $?", line, want, shown, cmd)
}
/^<!-- readme-check: skip/ { skip = 1; next }
/^```sh[ \t]*$/ && !inblock { inblock = 1; run = !skip; skip = 0; block_line = NR; next }
/^```/ && inblock { inblock = 0; if (run) flush_block(); next }
/^```/ { skip = 0; next }
inblock && run {
	line = $0
	if (cont != "") { cmd = cont "\n" line } else { cmd = line; cmd_line = NR }
	if (line ~ /\\$/) { cont = cmd; next }
	cont = ""
	if (cmd ~ /^[ \t]*(#|$)/) next
	emit(cmd, cmd_line)
}
' "$readme" >"$gen.body" || exit 1
if ! grep -q __qp_start "$gen.body"; then
	echo "readme-check: no \`\`\`sh commands found in $readme" >&2
	exit 1
fi

cat >"$gen" <<'EOF'
__qp_n=0
__qp_out=$__qp_dir/out
__qp_start() { __qp_line=$1 __qp_want=$2 __qp_cmd=$3 __qp_t0=$SECONDS; }
__qp_end() {
	local rc=$1
	__qp_n=$((__qp_n + 1))
	if [[ $rc != "$__qp_want" ]]; then
		printf 'readme-check: README line %d: exit %d, the README expects %d:\n  %s\noutput:\n' \
			"$__qp_line" "$rc" "$__qp_want" "$__qp_cmd" >&2
		sed 's/^/  | /' "$__qp_out" | tail -n 40 >&2
		exit 1
	fi
	printf '%4ds  line %-4d exit %d  %s\n' $((SECONDS - __qp_t0)) "$__qp_line" "$rc" "${__qp_cmd%%$'\n'*}"
}
EOF
cat "$gen.body" >>"$gen"
echo 'echo "readme-check: $__qp_n commands of '"${readme##*/}"' ran as documented in $SECONDS s"' >>"$gen"

cd "$work" || exit 1
PATH="$(dirname "$bin"):$PATH" FIXTURES="$fixtures" __qp_dir="$work/.readme-check" bash "$gen"
