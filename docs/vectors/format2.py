#!/usr/bin/env python3
"""Computes the format-2 test vectors of docs/format.md independently of
coffer: Python's standard library only (Bech32, HKDF-SHA256, HMAC-SHA256
and the length-prefixed MAC messages are written out here from the spec).

    python3 docs/vectors/format2.py > docs/vectors/format2.json

The Rust tests compare coffer's own computation with format2.json. The
public keys are inputs (made by age-keygen), not derived here.
"""
import hashlib
import hmac
import json
import struct

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

# The keyring, newest first: epoch 2 is current.
KEYS = [
    ("AGE-SECRET-KEY-1FKFEW342NDPUV0F6U2FCXH244ZHPZRNQVP0KQYX2F08PUTQJA6PSVWEFPU",
     "age1gq637wjv24g7rujv3p9e6vgnnspjf9kra78cgdk5hzdj6khr259s29msj8"),
    ("AGE-SECRET-KEY-1XW32UD02RCR39Z7KTTMVE6EKN0VFK3H3AKCK496SRAQ9PVCWE0KS6M7CDD",
     "age197mww0xzl28pu9cr5dshxw8y9ef483er0esu3j6pvwugcrm8uscsaznvl2"),
]
VAULT = "api-keys"
CREATED = "2026-01-01T00:00:00.000Z"
RECIPIENTS = [("alice", "age14u7hx9g8n65fd6gw5hmk6nmg8ee39gjk8l903762ag79sc2p75hq5ym553")]
# name, epoch, created, updated, digest input, rotation (since, removed) or None
SECRETS = [
    ("sendgrid-api-key", 1, CREATED, "2026-01-01T12:00:00.000Z",
     b"example ciphertext 1", ("2026-01-03T00:00:00.000Z", ["bob"])),
    ("stripe-secret-key", 2, CREATED, "2026-01-04T03:04:05.678Z",
     b"example ciphertext", None),
]


def bech32_data(s):
    """The data bytes of a Bech32 string (checksum verified)."""
    s = s.lower()
    hrp, data = s[: s.rindex("1")], s[s.rindex("1") + 1 :]
    values = [CHARSET.index(c) for c in data]
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    assert chk == 1, "bad checksum"
    acc, bits, out = 0, 0, []
    for v in values[:-6]:
        acc, bits = (acc << 5) | v, bits + 5
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def hkdf_sha256(ikm, info, length=32):
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    t, okm, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]


def field(b):
    return struct.pack(">Q", len(b)) + b


def count(n):
    return struct.pack(">Q", n)


def main():
    current_secret, current_public = KEYS[0]
    epoch = len(KEYS)
    raw = bech32_data(current_secret)
    assert len(raw) == 32
    k = hkdf_sha256(raw, b"coffer.v1 manifest mac key")
    rm = field(b"coffer.v2 recipients") + field(VAULT.encode()) + field(current_public.encode())
    rm += count(epoch) + field(CREATED.encode()) + count(len(RECIPIENTS))
    for name, key in sorted(RECIPIENTS):
        rm += field(name.encode()) + field(key.encode())
    out = {
        "vault": VAULT,
        "epoch": epoch,
        "public_key": current_public,
        "mac_key": k.hex(),
        "recipients_message": rm.hex(),
        "recipients_mac": hmac.new(k, rm, hashlib.sha256).hexdigest(),
        "secrets": [],
    }
    lines = [
        "# coffer vault manifest: written by coffer, see docs/format.md",
        "format = 2",
        f'created = "{CREATED}"',
        f'public-key = "{current_public}"',
        f"epoch = {epoch}",
        f'recipients-mac = "{out["recipients_mac"]}"',
        "",
        "[recipients]",
    ] + [f'{n} = "{k_}"' for n, k_ in sorted(RECIPIENTS)]
    for name, e, created, updated, content, rotation in sorted(SECRETS):
        digest = hashlib.sha256(content).digest()
        m = field(b"coffer.v2 secret") + field(VAULT.encode()) + field(name.encode())
        m += field(digest) + count(e) + field(created.encode()) + field(updated.encode())
        if rotation is None:
            m += count(0)
        else:
            since, removed = rotation
            m += count(1) + field(since.encode()) + count(len(removed))
            for r in removed:
                m += field(r.encode())
        mac = hmac.new(k, m, hashlib.sha256).hexdigest()
        out["secrets"].append({"name": name, "message": m.hex(), "mac": mac})
        lines += ["", f"[secrets.{name}]", f'created = "{created}"', f'updated = "{updated}"',
                  f'digest = "sha256:{digest.hex()}"', f"epoch = {e}", f'mac = "{mac}"']
        if rotation is not None:
            lines += [f'rotate-since = "{rotation[0]}"',
                      "rotate-removed = [" + ", ".join(f'"{r}"' for r in rotation[1]) + "]"]
    out["manifest"] = "\n".join(lines) + "\n"
    print(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
