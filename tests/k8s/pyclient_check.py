#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Checks the test API server with the official Python client (Debian's
python3-kubernetes), so the server cannot drift from what real clients
expect: typed LIST with limit/continue, WATCH from the list's
resourceVersion with bookmarks, and a 410 (ERROR event) that the client
turns into ApiException(410), after which it lists again.

  pyclient_check.py URL CA TOKEN_FILE CTL_URL

Prints TAP-ish lines "PASS what" / "FAIL what"; exits 1 on any FAIL.
"""
import json
import sys
import threading
import time
import urllib.request

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

url, ca, token_file, ctl_url = sys.argv[1:5]
failed = False


def check(ok, what):
    global failed
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failed = failed or not ok


def ctl(path, body=None):
    req = urllib.request.Request(ctl_url + path, data=json.dumps(body or {}).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def pod(name, ns="pyns", node="node-1", ip=None, labels=None):
    o = {"metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "py"}},
         "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]},
         "status": {"phase": "Running"}}
    if ip:
        o["status"]["podIP"] = ip
        o["status"]["podIPs"] = [{"ip": ip}]
    return {"resource": "pods", "object": o}


cfg = client.Configuration()
cfg.host = url
cfg.ssl_ca_cert = ca
with open(token_file) as f:
    cfg.api_key = {"authorization": "Bearer " + f.read().strip()}
api = client.CoreV1Api(client.ApiClient(cfg))

for i in range(5):
    ctl("/apply", pod(f"py-{i}", ip=f"198.18.7.{i + 1}"))

# LIST in pages of 2: typed objects, continue tokens, one consistent resourceVersion.
names, cont, rvs, pages = [], None, set(), 0
while True:
    kw = {"limit": 2, "namespace": "pyns"}
    if cont:
        kw["_continue"] = cont
    lst = api.list_namespaced_pod(**kw)
    pages += 1
    rvs.add(lst.metadata.resource_version)
    names += [p.metadata.name for p in lst.items]
    check(all(isinstance(p, client.V1Pod) for p in lst.items), f"page {pages}: items are V1Pod")
    cont = lst.metadata._continue
    if not cont:
        break
check(names == [f"py-{i}" for i in range(5)], f"list in pages returns every pod once: {names}")
check(pages == 3, f"5 pods at limit=2 take 3 pages (got {pages})")
check(len(rvs) == 1, f"every page carries the list's resourceVersion ({rvs})")
list_rv = rvs.pop()
first = api.list_namespaced_pod(namespace="pyns", limit=1)
check(first.items[0].status.pod_ip == "198.18.7.1", "status.podIP decodes")

# WATCH from the list's resourceVersion, with bookmarks.
ctl("/set", {"bookmark_interval": 0.3})


def changes():
    time.sleep(0.5)
    ctl("/apply", pod("py-5", ip="198.18.7.6"))
    ctl("/apply", pod("py-0", ip="198.18.7.1", labels={"app": "py", "v": "2"}))
    ctl("/delete", {"resource": "pods", "namespace": "pyns", "name": "py-1"})


threading.Thread(target=changes).start()
seen, bookmarks = [], 0
w = watch.Watch()
for ev in w.stream(api.list_namespaced_pod, namespace="pyns", resource_version=list_rv,
                   allow_watch_bookmarks=True, timeout_seconds=3):
    if ev["type"] == "BOOKMARK":
        bookmarks += 1
        continue
    seen.append((ev["type"], ev["object"].metadata.name))
    if isinstance(ev["object"], client.V1Pod) and ev["type"] == "MODIFIED":
        check(ev["object"].metadata.labels.get("v") == "2", "MODIFIED carries the new labels")
check(seen == [("ADDED", "py-5"), ("MODIFIED", "py-0"), ("DELETED", "py-1")],
      f"watch from the list's resourceVersion sees exactly the changes after it: {seen}")
check(bookmarks >= 1, f"bookmarks arrive when allowed ({bookmarks})")

# 410 mid-stream: the client raises ApiException(410); a relist recovers.
def expire():
    time.sleep(0.7)
    ctl("/apply", pod("py-6"))  # the history moves past rv, then is dropped
    ctl("/expire-watches")


rv = api.list_namespaced_pod(namespace="pyns").metadata.resource_version
threading.Thread(target=expire).start()
got = None
try:
    for ev in watch.Watch().stream(api.list_namespaced_pod, namespace="pyns",
                                   resource_version=rv, timeout_seconds=5):
        pass
except ApiException as e:
    got = e.status
check(got == 410, f"an ERROR event with code 410 raises ApiException(410) (got {got})")
# A resume from the old resourceVersion is 410 as well (the history is gone).
got = None
try:
    for ev in watch.Watch().stream(api.list_namespaced_pod, namespace="pyns",
                                   resource_version=rv, timeout_seconds=2):
        pass
except ApiException as e:
    got = e.status
check(got == 410, f"watching from a compacted resourceVersion is 410 (got {got})")
lst = api.list_namespaced_pod(namespace="pyns")
check(sorted(p.metadata.name for p in lst.items) ==
      ["py-0", "py-2", "py-3", "py-4", "py-5", "py-6"],
      "a relist after 410 has the current state")

# A stale token is refused.
cfg2 = client.Configuration()
cfg2.host = url
cfg2.ssl_ca_cert = ca
cfg2.api_key = {"authorization": "Bearer not-the-token"}
got = None
try:
    client.CoreV1Api(client.ApiClient(cfg2)).list_namespaced_pod(namespace="pyns")
except ApiException as e:
    got = e.status
check(got == 401, f"a wrong token gets 401 (got {got})")

# NetworkPolicy through its typed API.
ctl("/apply", {"resource": "networkpolicies", "object": {
    "metadata": {"name": "py-np", "namespace": "pyns"},
    "spec": {"podSelector": {"matchLabels": {"app": "py"}}, "policyTypes": ["Ingress"],
             "ingress": [{"ports": [{"protocol": "TCP", "port": 80}]}]}}})
nps = client.NetworkingV1Api(client.ApiClient(cfg)).list_namespaced_network_policy("pyns")
check(len(nps.items) == 1 and nps.items[0].spec.ingress[0].ports[0].port == 80,
      "NetworkPolicy lists as V1NetworkPolicy")
# The CRD's objects through the custom-objects API.
ctl("/apply", {"resource": "zerotrustpolicies", "object": {
    "metadata": {"name": "py-ztp", "namespace": "pyns"},
    "spec": {"podSelector": {}, "ingress": [{"action": "deny", "ports": [{"port": 22}]}]}}})
co = client.CustomObjectsApi(client.ApiClient(cfg)).list_namespaced_custom_object(
    "ztagent.io", "v1", "pyns", "zerotrustpolicies")
check([o["metadata"]["name"] for o in co["items"]] == ["py-ztp"],
      "ZeroTrustPolicy lists through the custom-objects API")

sys.exit(1 if failed else 0)
