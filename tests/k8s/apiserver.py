#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A small Kubernetes API server for the tests (python3 stdlib only).

It speaks the parts of the real protocol that list-then-watch clients use,
over TLS with a certificate the test makes:

  GET /version, /api, /apis, /api/v1, /apis/<group>/<version>   (discovery)
  GET <collection>[?limit=N&continue=T&fieldSelector=..&labelSelector=..
                  &resourceVersion=RV&resourceVersionMatch=..]     LIST
  GET <collection>?watch=1&resourceVersion=RV&allowWatchBookmarks=true
                  &timeoutSeconds=N[&fieldSelector=..]             WATCH
  GET <collection>/<name>                                           GET

for pods, namespaces, nodes, networking.k8s.io/v1 networkpolicies and
ztagent.io/v1 zerotrustpolicies, cluster-wide and per namespace. Objects
get what the real server adds (uid, resourceVersion, creationTimestamp,
generation, managedFields); lists leave kind/apiVersion out of their items;
one global resourceVersion counter orders every change.

WATCH answers 200 with chunked JSON events, one per line: ADDED, MODIFIED,
DELETED (an object that leaves a field selector is DELETED, one that enters
it ADDED, as the real watch cache does), BOOKMARK every
--bookmark-interval seconds when allowWatchBookmarks=true, and ends cleanly
after timeoutSeconds. A resourceVersion older than the history kept gets,
like the real watch cache, a 200 with one ERROR event (Status code 410,
reason Expired) -- or HTTP 410 with --stale-mode status. An unset or "0"
resourceVersion starts with synthetic ADDED events for every object.

Authentication: "Authorization: Bearer <token>" with the current token, or
a client certificate signed by --client-ca; anything else is 401.

The test drives it through a plain-HTTP control port on 127.0.0.1
(--ctl-port), JSON bodies:

  POST /apply   {"resource": "pods", "object": {...}}     create or update
  POST /apply-many {"resource": "pods", "objects": [...]}   all in one burst
  POST /delete  {"resource": "pods", "namespace": "a", "name": "b"}
  POST /expire-watches   every open watch gets ERROR 410 and ends; history
                         is compacted (a resume from an older RV gets 410)
  POST /drop-watches     every open watch's connection is cut (no last chunk)
  POST /compact          history is dropped up to the current RV
  POST /expire-continue  every continue token given so far is expired (410)
  POST /rotate-token     a new token, written to --token-file (tmp + rename,
                         as the kubelet does); the old one gets 401 from now on
  POST /fail    {"count": N, "status": 500, "path": P}   the next N API requests
                         (to path P only, when given) fail
  POST /set     {"bookmark_interval": S, "stale_mode": "event"|"status",
                 "list_delay": S (before each LIST page)}
  GET  /requests         every API request so far: time, path, query, status,
                         which token (generation) it carried
  GET  /state            rv, object counts, open watches

With --state FILE the objects, the resourceVersion and the token survive a
restart (as etcd does); the history does not (as the watch cache's does
not), so a client resuming from an older resourceVersion gets 410.
"""
import argparse
import base64
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

RESOURCES = {
    # plural: (group, version, kind, namespaced)
    "pods": ("", "v1", "Pod", True),
    "namespaces": ("", "v1", "Namespace", False),
    "networkpolicies": ("networking.k8s.io", "v1", "NetworkPolicy", True),
    "zerotrustpolicies": ("ztagent.io", "v1", "ZeroTrustPolicy", True),
    "nodes": ("", "v1", "Node", False),
}

SHORT = {"pods": ["po"], "namespaces": ["ns"], "networkpolicies": ["netpol"],
         "zerotrustpolicies": ["ztp"], "nodes": ["no"]}

# Field selectors the real server supports for these resources (a subset).
FIELDS = {
    "pods": {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
             "spec.serviceAccountName"},
    "namespaces": {"metadata.name", "status.phase"},
    "networkpolicies": {"metadata.name", "metadata.namespace"},
    "zerotrustpolicies": {"metadata.name", "metadata.namespace"},
    "nodes": {"metadata.name", "spec.unschedulable"},
}

CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the "
    "provided token results in an inconsistent list - objects that were created, modified, "
    "or deleted between the time the first chunk was returned and now may show up in the "
    "list.")


def parse_bool(v):
    # Go's strconv.ParseBool, as the real server reads watch= and friends.
    return v in ("1", "t", "T", "TRUE", "true", "True")


def api_version(plural):
    g, v, _, _ = RESOURCES[plural]
    return f"{g}/{v}" if g else v


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def field_of(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    return cur if isinstance(cur, str) else json.dumps(cur)


class SelectorError(Exception):
    pass


def parse_field_selector(plural, s):
    reqs = []
    for term in filter(None, (s or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            op = "!="
        elif "==" in term:
            k, v = term.split("==", 1)
            op = "="
        elif "=" in term:
            k, v = term.split("=", 1)
            op = "="
        else:
            raise SelectorError(f'invalid selector: \'{s}\'; can\'t understand \'{term}\'')
        if k not in FIELDS[plural]:
            raise SelectorError(f'field label not supported: {k}')
        reqs.append((k, op, v))
    return reqs


def parse_label_selector(s):
    reqs = []
    for term in filter(None, (s or "").split(",")):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            reqs.append((k.strip(), "!=", v.strip()))
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            reqs.append((k.strip(), "=", v.strip()))
        elif term.startswith("!"):
            reqs.append((term[1:].strip(), "!", None))
        else:
            reqs.append((term, "exists", None))
    return reqs


def matches(obj, fsel, lsel):
    if obj is None:
        return False
    for k, op, v in fsel:
        have = field_of(obj, k)
        if (have == v) != (op == "="):
            return False
    labels = obj.get("metadata", {}).get("labels") or {}
    for k, op, v in lsel:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


class Store:
    def __init__(self, state_file):
        self.cond = threading.Condition(threading.RLock())
        self.rv = 1
        self.objects = {p: {} for p in RESOURCES}
        self.history = []  # (rv, plural, type, obj, prev)
        self.compacted = 1  # a watch from an RV below this is 410
        self.snapshots = {}  # continue id -> (rv, items)
        self.epoch = 0  # bumped by expire/drop: open watches act on it
        self.epoch_action = None
        self.token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        self.token_gen = 1
        self.state_file = state_file
        self.watches = 0
        if state_file and os.path.exists(state_file):
            with open(state_file) as f:
                st = json.load(f)
            self.rv = st["rv"]
            self.objects = {p: {tuple(k.split("/", 1)): o
                                for k, o in st["objects"].get(p, {}).items()}
                            for p in RESOURCES}
            self.token = st["token"]
            self.token_gen = st["token_gen"]
            # A restarted watch cache starts at the current RV: older ones are gone.
            self.compacted = self.rv

    def save(self):
        if not self.state_file:
            return
        st = {"rv": self.rv, "token": self.token, "token_gen": self.token_gen,
              "objects": {p: {"/".join(k): o for k, o in objs.items()}
                          for p, objs in self.objects.items()}}
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.replace(tmp, self.state_file)

    def apply(self, plural, obj):
        _, _, kind, namespaced = RESOURCES[plural]
        md = obj.setdefault("metadata", {})
        name = md.get("name")
        if not name:
            raise ValueError("metadata.name is required")
        ns = md.get("namespace", "default") if namespaced else ""
        if namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        key = (ns, name)
        with self.cond:
            prev = self.objects[plural].get(key)
            self.rv += 1
            obj["kind"] = kind
            obj["apiVersion"] = api_version(plural)
            if prev:
                md["uid"] = prev["metadata"]["uid"]
                md["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
                md["generation"] = prev["metadata"].get("generation", 1) + 1
            else:
                md.setdefault("uid", str(uuid.uuid4()))
                md["creationTimestamp"] = now_iso()
                md["generation"] = 1
            md["resourceVersion"] = str(self.rv)
            # What a server-side apply leaves, so clients meet realistic objects.
            md["managedFields"] = [{
                "manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": api_version(plural), "time": now_iso(),
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}}},
                             "f:spec": {"f:containers": {'k:{"name":"main"}': {
                                 ".": {}, "f:image": {}, "f:name": {}}}}}}]
            self.objects[plural][key] = obj
            self.history.append((self.rv, plural, "MODIFIED" if prev else "ADDED", obj, prev))
            self.save()
            self.cond.notify_all()
            return obj

    def delete(self, plural, ns, name):
        _, _, _, namespaced = RESOURCES[plural]
        key = (ns if namespaced else "", name)
        with self.cond:
            prev = self.objects[plural].pop(key, None)
            if prev is None:
                return None
            self.rv += 1
            gone = json.loads(json.dumps(prev))
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self.history.append((self.rv, plural, "DELETED", gone, prev))
            self.save()
            self.cond.notify_all()
            return gone

    def compact(self):
        with self.cond:
            self.history = []
            self.compacted = self.rv
            self.cond.notify_all()

    def poke(self, action):
        with self.cond:
            self.epoch += 1
            self.epoch_action = action
            if action == "expire":
                self.history = []
                self.compacted = self.rv
            self.cond.notify_all()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_handler(store, opts, log, log_lock):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ztagent-test-apiserver/1"

        def log_message(self, fmt, *args):
            if opts.verbose:
                sys.stderr.write("apiserver: " + fmt % args + "\n")

        def setup(self):
            super().setup()
            self.handshake_failed = False
            # The TLS handshake in this thread, not in the accept loop.
            if isinstance(self.connection, ssl.SSLSocket):
                try:
                    self.connection.settimeout(10)
                    self.connection.do_handshake()
                    self.connection.settimeout(None)
                except (ssl.SSLError, OSError) as e:
                    self.handshake_failed = True
                    if opts.verbose:
                        sys.stderr.write(f"apiserver: TLS handshake failed: {e}\n")

        def handle(self):
            if not self.handshake_failed:
                super().handle()

        # ---- helpers
        def send_json(self, code, obj, extra=None):
            body = (json.dumps(obj) + "\n").encode()
            self.status_sent = code
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def send_status(self, code, reason, message, details=None):
            self.send_json(code, status_obj(code, reason, message, details))

        def record(self, auth, q):
            # Logged when the request comes (a watch may last long); its
            # status is filled in once it is sent.
            entry = {"t": time.time(), "path": urlsplit(self.path).path,
                     "query": {k: v[0] for k, v in q.items()}, "status": None, "auth": auth,
                     "end": None}
            with log_lock:
                log.append(entry)
            return entry

        def authenticate(self):
            h = self.headers.get("Authorization", "")
            if h.startswith("Bearer "):
                tok = h[7:].strip()
                with store.cond:
                    if tok == store.token:
                        return f"token-{store.token_gen}"
                return None
            if isinstance(self.connection, ssl.SSLSocket):
                cert = self.connection.getpeercert()
                if cert:
                    for rdn in cert.get("subject", ()):
                        for k, v in rdn:
                            if k == "commonName":
                                return f"cert-{v}"
            return None

        # ---- routing
        def do_GET(self):
            self.status_sent = 0
            u = urlsplit(self.path)
            q = parse_qs(u.query, keep_blank_values=True)
            auth = self.authenticate()
            entry = self.entry = self.record(auth, q)
            try:
                if auth is None:
                    self.send_status(401, "Unauthorized", "Unauthorized")
                    return
                with store.cond:
                    fail = opts.fail_next
                    if fail["count"] > 0 and fail["path"] in ("", urlsplit(self.path).path):
                        fail["count"] -= 1
                        code = fail["status"]
                        self.send_status(code, "InternalError" if code >= 500 else "BadRequest",
                                         f"injected failure ({code})")
                        return
                self.route(u.path, q)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
                self.close_connection = True
            finally:
                with log_lock:
                    entry["status"] = self.status_sent
                    entry["end"] = time.time()

        def route(self, path, q):
            parts = [p for p in path.split("/") if p]
            if path == "/version":
                return self.send_json(200, {"major": "1", "minor": "30",
                                            "gitVersion": "v1.30.0-ztagent-test",
                                            "platform": "linux/amd64"})
            if path == "/api":
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [
                                                {"clientCIDR": "0.0.0.0/0",
                                                 "serverAddress": "127.0.0.1"}]})
            if path == "/apis":
                groups = []
                for g, v in (("networking.k8s.io", "v1"), ("ztagent.io", "v1")):
                    gv = {"groupVersion": f"{g}/{v}", "version": v}
                    groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                            "groups": groups})
            if parts[:1] == ["api"] and len(parts) >= 2:
                group, version, rest = "", parts[1], parts[2:]
            elif parts[:1] == ["apis"] and len(parts) >= 3:
                group, version, rest = parts[1], parts[2], parts[3:]
            else:
                return self.send_status(404, "NotFound", "the server could not find the "
                                        "requested resource")
            gv = f"{group}/{version}" if group else version
            mine = [p for p, (g, v, _, _) in RESOURCES.items() if g == group and v == version]
            if not mine:
                return self.send_status(404, "NotFound", "the server could not find the "
                                        "requested resource")
            if not rest:
                res = []
                for p in mine:
                    _, _, kind, namespaced = RESOURCES[p]
                    res.append({"name": p, "singularName": kind.lower(),
                                "namespaced": namespaced, "kind": kind,
                                "verbs": ["get", "list", "watch"],
                                "shortNames": SHORT.get(p, [])})
                return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                            "groupVersion": gv, "resources": res})
            ns = None
            if rest[0] == "namespaces" and len(rest) >= 3:
                ns, rest = rest[1], rest[2:]
            plural = rest[0]
            if plural not in mine or len(rest) > 2:
                return self.send_status(404, "NotFound", "the server could not find the "
                                        "requested resource")
            namespaced = RESOURCES[plural][3]
            if ns is not None and not namespaced:
                return self.send_status(404, "NotFound", "not namespaced")
            if len(rest) == 2:
                return self.get_one(plural, ns or "", rest[1])
            if parse_bool(q.get("watch", [""])[0]):
                return self.watch(plural, ns, q)
            return self.list(plural, ns, q)

        def get_one(self, plural, ns, name):
            obj = store.objects[plural].get((ns if RESOURCES[plural][3] else "", name))
            if obj is None:
                return self.send_status(404, "NotFound",
                                        f'{plural} "{name}" not found',
                                        {"name": name, "kind": plural})
            return self.send_json(200, obj)

        def selectors(self, plural, q):
            try:
                return (parse_field_selector(plural, q.get("fieldSelector", [""])[0]),
                        parse_label_selector(q.get("labelSelector", [""])[0]))
            except SelectorError as e:
                self.send_status(400, "BadRequest", str(e))
                return None

        # ---- LIST
        def list(self, plural, ns, q):
            if opts.list_delay:
                time.sleep(opts.list_delay)
            sel = self.selectors(plural, q)
            if sel is None:
                return
            fsel, lsel = sel
            limit = int(q.get("limit", ["0"])[0] or 0)
            cont = q.get("continue", [""])[0]
            rvq = q.get("resourceVersion", [""])[0]
            match = q.get("resourceVersionMatch", [""])[0]
            with store.cond:
                if cont:
                    try:
                        tok = json.loads(base64.b64decode(cont))
                        snap = store.snapshots.get(tok["id"])
                    except (ValueError, KeyError, TypeError):
                        return self.send_status(400, "BadRequest", "invalid continue token")
                    if snap is None:
                        return self.send_status(410, "Expired", CONTINUE_TOO_OLD)
                    rv, items, start = snap[0], snap[1], tok["start"]
                    sid = tok["id"]
                else:
                    if rvq not in ("", "0"):
                        try:
                            want = int(rvq)
                        except ValueError:
                            return self.send_status(400, "BadRequest",
                                                    f"invalid resource version: {rvq}")
                        if want > store.rv:
                            return self.send_status(504, "Timeout",
                                                    "Too large resource version: "
                                                    f"{want}, current: {store.rv}")
                        if match == "Exact" and want != store.rv:
                            return self.send_status(410, "Expired",
                                                    f"too old resource version: {want} "
                                                    f"({store.rv})")
                    rv = store.rv
                    items = [o for (k_ns, _), o in sorted(store.objects[plural].items())
                             if (ns is None or k_ns == ns) and matches(o, fsel, lsel)]
                    items = json.loads(json.dumps(items))
                    start = 0
                    sid = None
                page = items[start:start + limit] if limit > 0 else items[start:]
                meta = {"resourceVersion": str(rv)}
                nxt = start + len(page)
                if nxt < len(items):
                    if sid is None:
                        sid = uuid.uuid4().hex
                        store.snapshots[sid] = (rv, items)
                    meta["continue"] = base64.b64encode(json.dumps(
                        {"v": "meta.k8s.io/v1", "rv": rv, "id": sid, "start": nxt}
                    ).encode()).decode()
                    meta["remainingItemCount"] = len(items) - nxt
            out = []
            for o in page:
                o = dict(o)
                o.pop("kind", None)
                o.pop("apiVersion", None)
                out.append(o)
            kind = RESOURCES[plural][2]
            return self.send_json(200, {"kind": kind + "List", "apiVersion": api_version(plural),
                                        "metadata": meta, "items": out})

        # ---- WATCH
        def chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def event(self, typ, obj):
            self.chunk((json.dumps({"type": typ, "object": obj}) + "\n").encode())

        def bookmark(self, plural, rv):
            g, v, kind, _ = RESOURCES[plural]
            obj = {"kind": kind, "apiVersion": api_version(plural),
                   "metadata": {"resourceVersion": str(rv), "creationTimestamp": None}}
            if plural == "pods":
                obj["spec"] = {"containers": None}
                obj["status"] = {}
            elif plural == "namespaces":
                obj["spec"] = {}
                obj["status"] = {}
            else:
                obj["spec"] = {}
            self.event("BOOKMARK", obj)

        def watch(self, plural, ns, q):
            sel = self.selectors(plural, q)
            if sel is None:
                return
            fsel, lsel = sel
            rvq = q.get("resourceVersion", [""])[0]
            bookmarks = parse_bool(q.get("allowWatchBookmarks", [""])[0])
            timeout = int(q.get("timeoutSeconds", ["0"])[0] or 0) or 1800
            deadline = time.monotonic() + timeout

            def visible(o):
                return o is not None and (ns is None or o["metadata"].get("namespace", "") == ns) \
                    and matches(o, fsel, lsel)

            initial = []
            with store.cond:
                if rvq in ("", "0"):
                    since = store.rv
                    initial = [json.loads(json.dumps(o)) for _, o in
                               sorted(store.objects[plural].items()) if visible(o)]
                else:
                    try:
                        since = int(rvq)
                    except ValueError:
                        return self.send_status(400, "BadRequest",
                                                f"invalid resource version: {rvq}")
                    if since > store.rv:
                        return self.send_status(504, "Timeout", "Too large resource version: "
                                                f"{since}, current: {store.rv}")
                    stale = since < store.compacted
                    if stale and opts.stale_mode == "status":
                        return self.send_status(410, "Expired", f"too old resource version: "
                                                f"{since} ({store.compacted})")
                epoch = store.epoch
                store.watches += 1
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.status_sent = 200
                with log_lock:
                    self.entry["status"] = 200
                if rvq not in ("", "0") and stale:
                    self.event("ERROR", status_obj(410, "Expired", f"too old resource version: "
                                                   f"{since} ({store.compacted})"))
                    self.chunk(b"")
                    return
                for o in initial:
                    self.event("ADDED", o)
                last_bm = time.monotonic()
                while True:
                    send = []
                    with store.cond:
                        while True:
                            if store.epoch != epoch:
                                action = store.epoch_action
                                break
                            send = [h for h in store.history if h[0] > since and h[1] == plural]
                            now = time.monotonic()
                            if send or now >= deadline:
                                action = None
                                break
                            if bookmarks and now - last_bm >= opts.bookmark_interval:
                                action = "bookmark"
                                break
                            wait = deadline - now
                            if bookmarks:
                                wait = min(wait, opts.bookmark_interval - (now - last_bm))
                            store.cond.wait(max(wait, 0.01))
                        cur_rv = store.rv
                        compacted = store.compacted
                    if action == "expire":
                        self.event("ERROR", status_obj(410, "Expired",
                                                       f"too old resource version: {since} "
                                                       f"({compacted})"))
                        self.chunk(b"")
                        return
                    if action == "drop":
                        # Cut the connection: no terminating chunk.
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                    if action == "bookmark":
                        self.bookmark(plural, cur_rv)
                        last_bm = time.monotonic()
                        continue
                    if not send:
                        self.chunk(b"")  # timeoutSeconds: a clean end
                        return
                    for rv, _, typ, obj, prev in send:
                        since = rv
                        now_in, was_in = visible(obj), visible(prev)
                        if typ == "DELETED":
                            if was_in:
                                self.event("DELETED", obj)
                        elif now_in and was_in:
                            self.event("MODIFIED", obj)
                        elif now_in:
                            self.event("ADDED", obj)
                        elif was_in:
                            # It left the selection: DELETED, at this version.
                            gone = json.loads(json.dumps(prev))
                            gone["metadata"]["resourceVersion"] = str(rv)
                            self.event("DELETED", gone)
            finally:
                with store.cond:
                    store.watches -= 1

    return H


def make_ctl_handler(store, opts, log, log_lock):
    class C(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def reply(self, code, obj):
            body = (json.dumps(obj) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/requests":
                with log_lock:
                    return self.reply(200, list(log))
            if self.path == "/state":
                with store.cond:
                    return self.reply(200, {"rv": store.rv, "watches": store.watches,
                                            "compacted": store.compacted,
                                            "token_gen": store.token_gen,
                                            "objects": {p: len(o) for p, o in
                                                        store.objects.items()}})
            return self.reply(404, {"error": "no such control"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0") or 0)
            try:
                body = json.loads(self.rfile.read(n) or b"{}")
            except ValueError as e:
                return self.reply(400, {"error": str(e)})
            try:
                return self.control(self.path, body)
            except (KeyError, ValueError, TypeError) as e:
                return self.reply(400, {"error": f"{type(e).__name__}: {e}"})

        def control(self, path, body):
            if path == "/apply":
                obj = store.apply(body["resource"], body["object"])
                return self.reply(200, obj)
            if path == "/apply-many":
                # One burst: every object applied under one lock hold.
                with store.cond:
                    for o in body["objects"]:
                        store.apply(body["resource"], o)
                return self.reply(200, {"rv": store.rv})
            if path == "/delete":
                gone = store.delete(body["resource"], body.get("namespace", ""), body["name"])
                return self.reply(200 if gone else 404, gone or {"error": "not found"})
            if path == "/expire-watches":
                store.poke("expire")
                return self.reply(200, {"rv": store.rv})
            if path == "/drop-watches":
                store.poke("drop")
                return self.reply(200, {"rv": store.rv})
            if path == "/compact":
                store.compact()
                return self.reply(200, {"rv": store.rv})
            if path == "/expire-continue":
                with store.cond:
                    store.snapshots.clear()
                return self.reply(200, {})
            if path == "/rotate-token":
                with store.cond:
                    store.token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
                    store.token_gen += 1
                    write_token(opts.token_file, store.token)
                    store.save()
                    return self.reply(200, {"token_gen": store.token_gen})
            if path == "/fail":
                with store.cond:
                    opts.fail_next["count"] = int(body.get("count", 1))
                    opts.fail_next["status"] = int(body.get("status", 500))
                    opts.fail_next["path"] = str(body.get("path", ""))
                return self.reply(200, opts.fail_next)
            if path == "/set":
                if "bookmark_interval" in body:
                    opts.bookmark_interval = float(body["bookmark_interval"])
                if "list_delay" in body:
                    opts.list_delay = float(body["list_delay"])
                if "stale_mode" in body:
                    if body["stale_mode"] not in ("event", "status"):
                        raise ValueError("stale_mode: event or status")
                    opts.stale_mode = body["stale_mode"]
                with store.cond:
                    store.cond.notify_all()
                return self.reply(200, {"bookmark_interval": opts.bookmark_interval,
                                        "stale_mode": opts.stale_mode})
            return self.reply(404, {"error": "no such control"})

    return C


def write_token(path, token):
    if not path:
        return
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--address", default="127.0.0.1",
                    help="the API's listening address (the control port stays on 127.0.0.1)")
    ap.add_argument("--ctl-port", type=int, default=0)
    ap.add_argument("--port-file", help="writes 'PORT CTL_PORT' here once listening")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", help="accept client certificates signed by this CA")
    ap.add_argument("--token-file", help="the current token is written here (and at rotation)")
    ap.add_argument("--state", help="objects, resourceVersion and token survive restarts here")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--stale-mode", choices=("event", "status"), default="event")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args()
    opts.fail_next = {"count": 0, "status": 500, "path": ""}
    opts.list_delay = 0.0

    store = Store(opts.state)
    write_token(opts.token_file, store.token)
    store.save()
    log, log_lock = [], threading.Lock()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(opts.cert, opts.key)
    if opts.client_ca:
        ctx.load_verify_locations(opts.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    api = Server((opts.address, opts.port), make_handler(store, opts, log, log_lock))
    api.socket = ctx.wrap_socket(api.socket, server_side=True, do_handshake_on_connect=False)
    ctl = Server(("127.0.0.1", opts.ctl_port), make_ctl_handler(store, opts, log, log_lock))
    if opts.port_file:
        tmp = opts.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{api.server_address[1]} {ctl.server_address[1]}\n")
        os.replace(tmp, opts.port_file)
    # SIGTERM ends at once, open watches cut like a crashed server's.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=ctl.serve_forever, daemon=True).start()
    api.serve_forever()


if __name__ == "__main__":
    main()
