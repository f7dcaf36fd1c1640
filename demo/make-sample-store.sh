#!/usr/bin/env bash
# Rebuilds the sample store in vaults/ from scratch, encrypted to the
# DEMO-ONLY identity in demo/demo-identity.txt. Run from the repository root:
#   demo/make-sample-store.sh
# The values are fake and public; they exist so that a fresh clone has
# something to list, read and diff.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q
coffer=target/debug/coffer
export COFFER_AGE_KEY="$(cat demo/demo-identity.txt)"
unset COFFER_IDENTITY COFFER_STORE
rm -rf vaults
# The demo key is named explicitly: coffer never makes it a recipient on
# its own, since anyone can read what is encrypted to it.
"$coffer" init --name demo --recipient "$(sed -n 's/^# public key: //p' demo/demo-identity.txt)"
"$coffer" vault create api-keys
"$coffer" vault create database
put() { printf '%s' "$3" | "$coffer" -q create -V "$1" -n "$2"; }
put api-keys stripe-secret-key 'sk_test_DEMO_0000000000000000000000000'
put api-keys sendgrid-api-key 'SG.DEMO-not-a-real-key.0000000000000000'
put api-keys external-service-token 'demo-external-service-token-0000'
# The seed's webhook header refers to this one: { vault: "api-keys", key: "external-api-token" }.
put api-keys external-api-token 'demo-external-api-token-0000'
put database read-replica-password 'demo-replica-password-0000'
put database analytics-connection-string 'postgres://analytics:demo-password-0000@localhost:5432/analytics'
echo "Rebuilt vaults/ (demo values, demo identity)." >&2
