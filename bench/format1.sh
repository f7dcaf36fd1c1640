#!/usr/bin/env bash
# Benchmark, not a test: issue 12's "no read gets slower" goal. `get`,
# `export` and `run -- true` of a vault of N secrets (100, 1,000 and 10,000
# unless given), timed in one run, in interleaved rounds (medians of 21):
#
#   before  format 1, read by the last coffer before format 2 (348047d),
#           built here in a temporary worktree; it made the store;
#   after   the same store upgraded to format 2 (`rekey --upgrade`), read
#           by this checkout's coffer;
#
# and, for information, this checkout's coffer reading the format-1 store.
# The goal: `after` within 5% of `before` (a ratio at most 1.05), or faster.
#
#   bench/format1.sh [N ...]
#
# Needs git, cargo and python3; takes a few minutes (it builds
# the old commit once, in target/format1-baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
baseline=348047d
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 10000)

cargo build --release --quiet --bin coffer
new="$root/target/release/coffer"

tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/old-src" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git -C "$root" worktree add --quiet --detach "$tmp/old-src" "$baseline"
CARGO_TARGET_DIR="$root/target/format1-baseline" \
    cargo build --release --quiet --bin coffer --manifest-path "$tmp/old-src/Cargo.toml"
old="$root/target/format1-baseline/release/coffer"

# A world of its own: nothing of the caller's keys or configuration.
export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state"
unset COFFER_STORE COFFER_IDENTITY VISUAL EDITOR
export USER=bench
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_STATE_HOME"

printf '%s\n' "coffer: reads of format 1 (coffer $baseline) against format 2 (this checkout), medians of 21 interleaved runs"
printf '%-8s %-20s %12s %12s %8s %14s\n' secrets operation "before" "after" "ratio" "new on fmt 1"
for n in "${sizes[@]}"; do
    f1="$tmp/f1-$n" f2="$tmp/f2-$n"
    mkdir -p "$f1"
    (
        cd "$f1"
        "$old" init >/dev/null 2>&1
        "$old" vault create bench --yes >/dev/null 2>&1
        python3 - "$n" >"$tmp/values.env" <<'EOF'
import secrets, sys
for i in range(int(sys.argv[1])):
    print(f"SECRET_{i:05d}={secrets.token_urlsafe(30)}")
EOF
        "$old" import -V bench "$tmp/values.env" >/dev/null 2>&1
    )
    grep -q '^format = 1$' "$f1/vaults/bench/vault.toml"
    cp -a "$f1" "$f2"
    (cd "$f2" && "$new" rekey --upgrade >/dev/null 2>&1)
    grep -q '^format = 2$' "$f2/vaults/bench/vault.toml"
    mid=$(printf 'secret-%05d' $((n / 2)))
    for op in get export run; do
        case $op in
            get) args="get -V bench -n $mid" ;;
            export) args="export -V bench" ;;
            run) args="run -V bench -- true" ;;
        esac
        python3 - "$n" "$op" "$old --store $f1/vaults $args" \
            "$new --store $f2/vaults $args" "$new --store $f1/vaults $args" <<'EOF'
import shlex, statistics, subprocess, sys, time
n, op, cmds = sys.argv[1], sys.argv[2], [shlex.split(c) for c in sys.argv[3:]]
times = [[] for _ in cmds]
# Interleaved rounds (A B C A B C ...), so that the machine's drift
# falls on every command alike; the first three rounds warm up.
for round in range(24):
    for c, t in zip(cmds, times):
        start = time.perf_counter()
        subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if round >= 3:
            t.append(time.perf_counter() - start)
m = [statistics.median(t) * 1000 for t in times]
print(f"{n:<8} {op:<20} {m[0]:9.2f} ms {m[1]:9.2f} ms {m[1] / m[0]:7.2f}x {m[2]:11.2f} ms")
EOF
    done
done
