#!/usr/bin/env python3
# Writes the hand-made seed inputs of tests/fuzz/corpus/ and the regression
# inputs of tests/fuzz/regress/ (valid inputs of every format, and one input
# per defect found or reported). Run from the repository root; the files are
# checked in, so this only needs to run again when a format changes.
import os
import struct
import sys
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)))


def put(kind, harness, name, data):
    d = os.path.join(ROOT, kind, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- a minimal CBOR encoder (definite lengths) ---
def head(major, v):
    if v < 24:
        return bytes([major << 5 | v])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if v < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, v)
    raise ValueError(v)


def cbor(x):
    if x is None:
        return b"\xf6"
    if isinstance(x, bool):
        return b"\xf5" if x else b"\xf4"
    if isinstance(x, int):
        return head(0, x) if x >= 0 else head(1, -1 - x)
    if isinstance(x, bytes):
        return head(2, len(x)) + x
    if isinstance(x, str):
        b = x.encode()
        return head(3, len(b)) + b
    if isinstance(x, list):
        return head(4, len(x)) + b"".join(cbor(i) for i in x)
    if isinstance(x, dict):
        return head(5, len(x)) + b"".join(cbor(k) + cbor(v) for k, v in x.items())
    raise TypeError(x)


def frame(item):
    b = cbor(item) if not isinstance(item, bytes) else item
    return struct.pack(">I", len(b)) + b


# --- api_frame: byte streams into one API connection ---
put("corpus", "api_frame", "echo", frame({"op": "echo", "x": [1, -2, "t", b"\x00\x01", True, None]}))
put("corpus", "api_frame", "endpoint-add", frame({
    "op": "endpoint.add", "ifname": "v-web", "ip": "198.18.1.10,2001:db8::10", "name": "web",
    "namespace": "prod", "labels": "app=web,tier=front", "namespace_labels": "env=prod",
    "ports": "http=8080/TCP,dns=53/UDP"}))
put("corpus", "api_frame", "block-add", frame({"op": "block.add", "cidr": "198.18.0.0/15",
                                             "ttl_s": 600, "reason": "scan", "replace": True}))
put("corpus", "api_frame", "two-frames", frame({"op": "fail", "why": "no"}) +
    frame({"op": "block.add", "cidr": "2001:db8::/32"}))
put("corpus", "api_frame", "unknown-op", frame({"op": "nope\x01"}))
put("corpus", "api_frame", "no-op", frame({"cidr": "1.2.3.4"}))
put("corpus", "api_frame", "bad-cbor", frame(b"\xa1\x62op\x7f\x61e\xff"))
put("corpus", "api_frame", "big-header", b"\x04\x00\x00\x00\xa0")
put("corpus", "api_frame", "indefinite", frame(b"\xbf\x62op\x64echo\x61a\x9f\x01\x02\xff\xff"))

# --- endpoint_state ---
def ep(i, ports=None, addrs=None):
    return {"id": i, "ifname": "v-%d" % i, "ifindex": 10 + i, "name": "pod-%d" % i,
            "namespace": "prod", "identity": 256 + i, "created_unix": 1700000000,
            "addrs": addrs or ["198.18.1.%d" % i, "2001:db8::%x" % i],
            "labels": {"app": "web", "tier": "front"},
            "namespace_labels": {"kubernetes.io/metadata.name": "prod", "env": "prod"},
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": 6},
                                                     {"name": "dns", "port": 53, "protocol": 17}]}


put("corpus", "endpoint_state", "two", cbor({"version": 1, "endpoints": [ep(1), ep(2)]}))
put("corpus", "endpoint_state", "empty", cbor({"version": 1, "endpoints": []}))
put("corpus", "endpoint_state", "no-ports", cbor({"version": 1, "endpoints": [ep(3, ports=[])]}))
# Defects from the issue: a heap overflow in ep_from_item (47 named ports of
# 15 characters, port 2^64-1, protocol 58) and a 5-byte file that made the
# agent commit 1 GiB (an array header declaring 2^27 items).
put("regress", "endpoint_state", "ports-overflow-heap", cbor({"version": 1, "endpoints": [
    ep(1, ports=[{"name": "p%014d" % i, "port": 2**64 - 1, "protocol": 58} for i in range(47)])]}))
put("regress", "endpoint_state", "array-header-1gib", bytes.fromhex("9a08000000"))
put("regress", "endpoint_state", "map-header-huge", bytes.fromhex("bb00000010000000000000"))
put("regress", "endpoint_state", "address-with-commas", cbor({"version": 1, "endpoints": [
    ep(1, addrs=["198.18.1.1,198.18.1.2,198.18.1.3"])]}))

# --- endpoint_spec: ifname, name, namespace, addrs, labels, ns labels, ports ---
put("corpus", "endpoint_spec", "full",
    "v-web\nweb-1\nprod\n198.18.1.9,2001:db8::9\napp=web,version=v2\nenv=prod\nhttp=8080/TCP,dns=53/UDP")
put("corpus", "endpoint_spec", "minimal", "v-x\n\n\n198.18.1.2")
put("corpus", "endpoint_spec", "sctp", "v-y\ny\nns\n198.18.1.3/32\nk=v\n\nsig=9/SCTP")

# --- spool_segment ---
def rec(i, v6=False):
    fam = 10 if v6 else 2
    alen = 16 if v6 else 4
    return [bytes(range(i, i + 16)), fam, i % 2, 0, 0x12, 0x3ff,
            bytes([198, 18, 0, i] + [0] * (alen - 4)), bytes([198, 18, 1, i] + [0] * (alen - 4)),
            40000 + i, 443, 0x3f000000, 1000 * i, 2000, 10, 6, 4, 1500, 1700000000000000,
            1700000001500000, 1700000002000000, 256, 257, 1,
            b"tcp", b"", b"allowed", b"", b"prod/allow-web", b"prod/web", b"prod/db",
            b"node-1", b"v-web", b"egress"]


def segment(recs, count=None, ulen=None, payload=None):
    raw = head(4, len(recs)) + b"".join(cbor(r) for r in recs)
    comp = payload if payload is not None else zlib.compress(raw, 1)
    h = b"ZTSPOOL1" + struct.pack(">III", count if count is not None else len(recs),
                                  ulen if ulen is not None else len(raw), len(comp))
    h += struct.pack(">I", zlib.crc32(comp))
    h += struct.pack(">I", zlib.crc32(h))
    return h + comp


# Byte 0: 0 = the segment as is, 1 = CRCs made right, 2 = count + CBOR payload.
put("corpus", "spool_segment", "one", b"\x00" + segment([rec(1)]))
put("corpus", "spool_segment", "three-mixed", b"\x00" + segment([rec(1), rec(2, True), rec(3)]))
put("corpus", "spool_segment", "crc-fixed", b"\x01" + segment([rec(4)]))
put("corpus", "spool_segment", "payload-two", b"\x02" + struct.pack(">I", 2) +
    head(4, 2) + cbor(rec(5)) + cbor(rec(6, True)))
# The 37-byte segment: a header that asks for ~5 GB before inflating.
put("regress", "spool_segment", "header-asks-5gb", b"\x00" + segment([], count=1000000, ulen=4096000000,
                                                         payload=zlib.compress(b"\x80", 9)))
put("regress", "spool_segment", "header-understates", b"\x00" +
    segment([rec(1), rec(2)], ulen=10))

# --- audit_journal: byte 0 bit 0 = 8-byte cursor follows ---
def jrec(kind, actor, subject, detail, t=1700000000000000):
    body = struct.pack("<Q", t) + b"".join(struct.pack("<I", len(f)) + f for f in
                                           (kind, actor, subject, detail))
    ln = 8 + len(body)
    crc = zlib.crc32(body)
    return struct.pack("<II", ln, crc) + body


r1 = jrec(b"policy.applied", b"agent", b"gen=2", b'{"sha256":"ab"}')
r2 = jrec(b"block.add", b"ztctl", b"198.18.0.0/15", b'{"ttl_s":60}')
put("corpus", "audit_journal", "two-records", b"\x00" + r1 + r2)
put("corpus", "audit_journal", "cursor-at-second", b"\x01" + struct.pack("<Q", len(r1)) + r1 + r2)
put("corpus", "audit_journal", "torn-tail", b"\x00" + r1 + r2[:20])
put("corpus", "audit_journal", "empty", b"\x00")
put("corpus", "audit_journal", "crc-fixed", b"\x02" + r1 + r2)
# A record whose CRC holds but whose field lengths do not (the writer
# thread's decoder; not reachable without a database, kept for a pure one).
bad_fields = struct.pack("<Q", 1) + struct.pack("<I", 4) + b"kind" + struct.pack("<I", 0xffff) + b"x" * 16
put("corpus", "audit_journal", "crc-ok-fields-bad", b"\x00" + r1 +
    struct.pack("<II", 8 + len(bad_fields), zlib.crc32(bad_fields)) + bad_fields)
# A cursor inside the first record: the open walks from there, finds no
# record and cuts the journal at the cursor, destroying both whole records.
put("regress", "audit_journal", "cursor-mid-record-cuts-whole-records",
    b"\x01" + struct.pack("<Q", 10) + r1 + r2)

# --- block_import ---
put("corpus", "block_import", "feed",
    "# threat feed\n198.18.0.7\n198.18.0.0/24  # a /24\n\n2001:db8:bad::/48\r\n  203.0.113.9/32\t\n"
    "not-a-cidr\n10.0.0.0/33\n")
put("corpus", "block_import", "no-newline-at-end", "198.18.0.1\n198.18.0.2")
put("corpus", "block_import", "long-line", "198.18.0.1\n" + "9" * 300 + "\n198.18.0.3\n")
# The defect: a NUL byte made the reader skip the next line.
put("regress", "block_import", "nul-swallows-next-line", b"198.18.0.1\x00junk\n198.18.0.2\n198.18.0.3\n")

# --- cidr, duration ---
for i, s in enumerate(["198.18.0.0/15", "2001:db8::/32", "198.18.0.7/24", "::ffff:198.18.0.1",
                       "0.0.0.0/0", "::/0", "127.0.0.1:9470", "[::1]:9470", "fe80::1%eth0"]):
    put("corpus", "cidr", "seed-%d" % i, s)
for i, s in enumerate(["500ms", "1h30m", "2d", "10", "0s", "18446744073s", "1GiB", "64KiB",
                       "1h1m1s1ms"]):
    put("corpus", "duration", "seed-%d" % i, s)

# --- config ---
put("corpus", "config", "readme", """node: node-1
bpffs: /sys/fs/bpf/ztagent
api_socket: /run/ztagent/api.sock
log_level: info
xdp:
  interfaces: [eth0]
  mode: native
  malformed: drop
""")
put("corpus", "config", "full", """node: lab-node
bpffs: /tmp/bpffs/ztagent
api_socket: /tmp/api.sock
log_level: debug
state_dir: /tmp/state
policy:
  dir: /tmp/policies
  default: deny
  conntrack_max: 4096
database:
  url: "host=/tmp dbname=zt"
  spool_dir: /tmp/spool
  spool_max_bytes: 64MiB
  retention_months: 3
flows:
  active_timeout: 30s
metrics:
  listen: "[::1]:9470"
xdp:
  interfaces: [uplink0, eth1]
  mode: generic
  malformed: pass
  blocklist_max: 65536
  allowlist_max: 1024
  event_sample: 10
  event_rate: 100
  ringbuf_bytes: 1MiB
  expiry_interval: 200ms
""")
# The defect: a \\0 escape truncated the value ("web\\0-evil" read as "web").
put("regress", "config", "nul-escape-in-value", 'node: "web\\0-evil"\n')

# --- policy ---
put("corpus", "policy", "networkpolicy", """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: prod}}
          podSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}
        - ipBlock: {cidr: 198.18.0.0/15, except: [198.18.1.0/24]}
      ports: [{protocol: TCP, port: 5432}, {protocol: UDP, port: 53, endPort: 60}, {port: http}]
  egress:
    - to: [{podSelector: {}}]
""")
put("corpus", "policy", "zerotrust", """apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata:
  name: protect-db
  namespace: data
spec:
  podSelector:
    matchLabels: {app: db}
  mode: audit
  ingress:
    - action: deny
      from:
        - namespaceSelector:
            matchLabels: {env: sandbox}
        - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}
      ports:
        - {protocol: TCP, port: 5432}
    - action: allow
      from:
        - podSelector: {matchLabels: {app: web}}
      ports:
        - {port: 5432}
      requireTLS: true
      requireMutualAuth: true
  egress:
    - action: deny
      to: [{ipBlock: {cidr: 2001:db8::/32}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec:
  podSelector: {}
""")
print("seeds written under", ROOT)
