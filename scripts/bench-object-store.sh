#!/usr/bin/env bash
# Times the category report on a log read from an S3 server on loopback against the same files
# on local disk, as whole processes, and counts the requests the S3 runs make.
#
#   scripts/bench-object-store.sh DATA_DIR [RUNS]
#
# Starts moto's standalone server (pip install 'moto[server]') on a free loopback port, uploads
# DATA_DIR's tree to s3://bench/log/ (boto3, which moto brings), then runs, interleaved RUNS times
# (default 3), each as its own process under /usr/bin/time:
#   (a) wausage --data DATA_DIR            run conversations-by-category -p month=M
#   (b) wausage --data s3://bench/log/     run conversations-by-category -p month=M
# where M is the log's first month. Checks both print the same report, then prints each run's wall
# seconds, peak RSS and (for S3) the requests the server logged during the run, the medians and
# the s3/local ratio. moto keeps objects in its own memory and serves them from Python, so the
# ratio measures wausage against a slow server: a real S3 endpoint is faster, the request count
# is the same.
#
# WAUSAGE picks the binary (default $CARGO_TARGET_DIR or ~/.cache/wausage-target, release/wausage).
set -euo pipefail

usage() {
    echo "usage: $0 DATA_DIR [RUNS]" >&2
    exit 2
}
die() {
    echo "bench-object-store: error: $*" >&2
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
WAUSAGE=${WAUSAGE:-${CARGO_TARGET_DIR:-$HOME/.cache/wausage-target}/release/wausage}
[ -x "$WAUSAGE" ] || die "$WAUSAGE: no wausage binary (cargo build --release, or set WAUSAGE)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get update && apt-get install -y time)"
command -v moto_server >/dev/null || die "moto_server not found (pip install 'moto[server]')"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-object-store.XXXXXX")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" 2>"$WORK/moto.log" >/dev/null &
MOTO=$!
trap 'kill $MOTO 2>/dev/null; rm -rf "$WORK"' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
    sleep 0.2
done

python3 - "$DATA_DIR" <<'PY'
import os, sys, boto3
root = sys.argv[1]
s3 = boto3.client("s3")
s3.create_bucket(Bucket="bench")
n = size = 0
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".parquet"):
            path = os.path.join(d, f)
            s3.upload_file(path, "bench", "log/" + os.path.relpath(path, root))
            n += 1
            size += os.path.getsize(path)
print(f"uploaded {n} files, {size / 1e6:.0f} MB")
PY

MONTH=$("$WAUSAGE" --data "$DATA_DIR" --format csv query \
    "SELECT to_char(min(sent_at), '%Y-%m') FROM messages_raw" | tail -1)
REPORT=(run conversations-by-category -p "month=$MONTH")

run() {
    local name=$1 i=$2 data=$3
    /usr/bin/time -f '%e %M' -o "$WORK/$name.$i.time" "$WAUSAGE" --data "$data" --format csv \
        "${REPORT[@]}" >"$WORK/$name.$i.out" 2>"$WORK/$name.$i.err" ||
        { cat "$WORK/$name.$i.err" >&2; die "$name run $i failed"; }
}
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "data: $DATA_DIR  month: $MONTH  runs: $RUNS  wausage: $WAUSAGE"
printf '%-6s %4s %8s %12s %9s\n' where run wall_s peak_rss_mb requests
for i in $(seq 1 "$RUNS"); do
    run local "$i" "$DATA_DIR"
    before=$(grep -c 'HTTP/1.1"' "$WORK/moto.log" || true)
    run s3 "$i" "s3://bench/log/"
    after=$(grep -c 'HTTP/1.1"' "$WORK/moto.log" || true)
    echo $((after - before)) >"$WORK/s3.$i.requests"
    cmp -s "$WORK/local.$i.out" "$WORK/s3.$i.out" || die "run $i: the reports differ"
    for name in local s3; do
        read -r wall kb <"$WORK/$name.$i.time"
        req=-
        [ "$name" = s3 ] && req=$(cat "$WORK/s3.$i.requests")
        printf '%-6s %4s %8s %12.1f %9s\n' "$name" "$i" "$wall" "$(echo "$kb / 1024" | bc -l)" "$req"
    done
done
lmed=$(for i in $(seq 1 "$RUNS"); do cut -d' ' -f1 "$WORK/local.$i.time"; done | median)
smed=$(for i in $(seq 1 "$RUNS"); do cut -d' ' -f1 "$WORK/s3.$i.time"; done | median)
rmed=$(cat "$WORK"/s3.*.requests | median)
echo "median wall s: local $lmed  s3 $smed  ratio s3/local $(awk -v a="$smed" -v b="$lmed" 'BEGIN { printf "%.2f", a / b }')"
echo "median requests per s3 run: $rmed; the last run's by method:"
grep 'HTTP/1.1"' "$WORK/moto.log" | tail -n "$(cat "$WORK/s3.$RUNS.requests")" |
    grep -oE '"[A-Z]+ ' | tr -d '"' | sort | uniq -c
