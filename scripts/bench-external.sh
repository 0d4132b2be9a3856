#!/usr/bin/env bash
# Times wausage against DuckDB on one plain group-by, as whole processes.
#
#   scripts/bench-external.sh DATA_DIR [RUNS]
#
# Runs, interleaved RUNS times (default 3), each as its own process under /usr/bin/time:
#   (a) wausage --data DATA_DIR --format csv query "$SQL"   (its defaults: one thread per core,
#       16 partitions on up to 16 cores; this is meant for a 2-core machine, as DuckDB gets 2 threads)
#   (b) python3 scripts/duckdb_plain.py DATA_DIR      (DuckDB, threads=2, same query)
# where SQL counts the distinct (account_id, customer_id) pairs of messages_raw. Checks both
# print the same count, then prints each run's wall seconds and peak RSS, the medians and the
# wausage/duckdb ratio of the median wall times.
#
# WAUSAGE picks the binary; default $CARGO_TARGET_DIR/release/wausage, else
# $HOME/.cache/wausage-target/release/wausage (the project's target dir). Build it first with
# `cargo build --release`. DuckDB: pip install -r scripts/requirements-bench.txt.
# Needs /usr/bin/time (Debian: apt-get update && apt-get install -y time).
set -euo pipefail

usage() {
    echo "usage: $0 DATA_DIR [RUNS]" >&2
    exit 2
}
die() {
    echo "bench-external: error: $*" >&2
    exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
DATA_DIR=${1%/}
RUNS=${2:-3}
case $RUNS in
    '' | *[!0-9]*) usage ;;
esac
[ "$RUNS" -ge 1 ] || usage
[ -d "$DATA_DIR" ] || die "$DATA_DIR: not a directory"

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    DEFAULT_WAUSAGE=$CARGO_TARGET_DIR/release/wausage
else
    DEFAULT_WAUSAGE=$HOME/.cache/wausage-target/release/wausage
fi
WAUSAGE=${WAUSAGE:-$DEFAULT_WAUSAGE}
PYTHON=${PYTHON:-python3}

[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get update && apt-get install -y time)"
[ -x "$WAUSAGE" ] || die "$WAUSAGE: no wausage binary (cargo build --release, or set WAUSAGE)"
"$PYTHON" -c 'import duckdb' 2>/dev/null ||
    die "no duckdb module for $PYTHON (pip install -r $HERE/requirements-bench.txt)"

SQL='SELECT count(*) FROM (SELECT account_id, customer_id, count(*) FROM messages_raw GROUP BY 1, 2)'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-external.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# run NAME I CMD...: one timed run; leaves "wall_s peak_kb" in $WORK/NAME.I.time and the
# command's stdout in $WORK/NAME.I.out; prints the count (last non-empty stdout line).
run() {
    local name=$1 i=$2
    shift 2
    if ! /usr/bin/time -f '%e %M' -o "$WORK/$name.$i.time" "$@" \
        >"$WORK/$name.$i.out" 2>"$WORK/$name.$i.err"; then
        echo "bench-external: $name run $i failed:" >&2
        cat "$WORK/$name.$i.err" >&2
        exit 1
    fi
    awk 'NF { last = $0 } END { print last }' "$WORK/$name.$i.out"
}

# median of numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "data: $DATA_DIR  runs: $RUNS  wausage: $WAUSAGE  duckdb: $("$PYTHON" -c 'import duckdb; print(duckdb.__version__)')"
printf '%-8s %4s %10s %12s %s\n' tool run wall_s peak_rss_mb count
for i in $(seq 1 "$RUNS"); do
    w=$(run wausage "$i" "$WAUSAGE" --data "$DATA_DIR" --format csv query "$SQL")
    d=$(run duckdb "$i" "$PYTHON" "$HERE/duckdb_plain.py" "$DATA_DIR")
    [ "$w" = "$d" ] || die "run $i: wausage printed '$w' but duckdb printed '$d'"
    for name in wausage duckdb; do
        read -r wall kb <"$WORK/$name.$i.time"
        printf '%-8s %4s %10s %12s %s\n' "$name" "$i" "$wall" "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')" "$w"
    done
done

wmed=$(for i in $(seq 1 "$RUNS"); do cut -d' ' -f1 "$WORK/wausage.$i.time"; done | median)
dmed=$(for i in $(seq 1 "$RUNS"); do cut -d' ' -f1 "$WORK/duckdb.$i.time"; done | median)
wrss=$(for i in $(seq 1 "$RUNS"); do cut -d' ' -f2 "$WORK/wausage.$i.time"; done | median)
drss=$(for i in $(seq 1 "$RUNS"); do cut -d' ' -f2 "$WORK/duckdb.$i.time"; done | median)
echo "median wall s: wausage $wmed  duckdb $dmed  ratio wausage/duckdb $(awk -v a="$wmed" -v b="$dmed" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
echo "median peak RSS MB: wausage $(awk -v k="$wrss" 'BEGIN { printf "%.1f", k / 1024 }')  duckdb $(awk -v k="$drss" 'BEGIN { printf "%.1f", k / 1024 }')"
