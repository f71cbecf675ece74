#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Servers, prober and scenario runner of tests/integration/netpol_conformance.sh.

Modelled on Kubernetes' NetworkPolicy e2e suite (test/e2e/network/netpol):
namespaces x, y, z with pods a, b, c each, every pod serving TCP and UDP
on 80 and 81, every pod probing every pod (81 pairs x 4 port/protocols) after
each policy change, and the observed matrix compared with the expected one.

  netpol.py serve IP                     (in a pod's namespace) the four servers
  netpol.py run TAP_START                (in the root namespace) every scenario,
                                         as TAP lines; the lab comes from the env

The scenarios are data: scenarios.py beside this file.
"""
import ctypes
import os
import selectors
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

NAMESPACES = ["x", "y", "z"]
PODS = ["a", "b", "c"]
PORTS = [("tcp", 80), ("tcp", 81), ("udp", 80), ("udp", 81)]
# Pod addresses: namespace x is 198.19.1.0/24, y 198.19.2.0/24, z 198.19.3.0/24;
# pod a is .10, b .11, c .12 (the benchmarking range 198.18.0.0/15 only).
NS_NET = {"x": 1, "y": 2, "z": 3}
POD_HOST = {"a": 10, "b": 11, "c": 12}
ALL = [f"{n}/{p}" for n in NAMESPACES for p in PODS]


def ip_of(pod):
    ns, name = pod.split("/")
    return f"198.19.{NS_NET[ns]}.{POD_HOST[name]}"


# ---- serve -------------------------------------------------------------


def serve(ip):
    sel = selectors.DefaultSelector()
    for port in (80, 81):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((ip, port))
        t.listen(256)
        t.setblocking(False)
        sel.register(t, selectors.EVENT_READ, "tcp")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((ip, port))
        u.setblocking(False)
        sel.register(u, selectors.EVENT_READ, "udp")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            try:
                if key.data == "tcp":
                    c, _ = s.accept()
                    try:
                        c.sendall(b"ok\n")
                    except OSError:
                        pass
                    c.close()
                else:
                    data, peer = s.recvfrom(2048)
                    s.sendto(b"ok:" + data, peer)
            except (BlockingIOError, ConnectionError):
                pass


# ---- probe -------------------------------------------------------------


def probe_one(dst, port, proto, timeout):
    if proto == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((dst, port))
            return s.recv(3) == b"ok\n"
        except OSError:
            return False
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    token = os.urandom(8).hex().encode()
    end = time.monotonic() + timeout
    try:
        s.connect((dst, port))
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                s.send(token)
            except OSError:
                pass  # ICMP error of an earlier try: keep trying until the deadline
            s.settimeout(min(0.25, left))
            try:
                if s.recv(64) == b"ok:" + token:
                    return True
            except (socket.timeout, OSError):
                pass
    finally:
        s.close()


_libc = None


def enter_netns(fd):
    """Moves the calling thread (only it: network namespaces are per thread) into fd's namespace."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")


# ---- run ---------------------------------------------------------------


class Lab:
    def __init__(self):
        self.lab_id = os.environ["LAB_ID"]
        self.ztctl = [os.environ["ZTCTL_BIN"], "--socket", os.environ["LAB_SOCK"]]
        self.pol_dir = os.environ["POL_DIR"]
        self.here = os.path.dirname(os.path.abspath(__file__))
        self.labels = {}  # pod -> (labels, namespace labels) now registered

    def ctl(self, *args):
        r = subprocess.run(self.ztctl + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ztctl {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    @staticmethod
    def default_labels(pod):
        ns, name = pod.split("/")
        return f"pod={name}", f"ns={ns}"

    def register(self, pod, labels=None, ns_labels=None):
        """(Re-)registers pod's endpoint with these labels (default: pod=<name>, ns=<ns>)."""
        ns, name = pod.split("/")
        dl, dn = self.default_labels(pod)
        labels, ns_labels = labels or dl, ns_labels or dn
        if self.labels.get(pod) == (labels, ns_labels):
            return
        if pod in self.labels:
            self.ctl("endpoint", "del", pod)
        ports = ",".join(f"serve-{p}-{pr}={p}/{pr.upper()}" for pr, p in PORTS)
        self.ctl("endpoint", "add", "--ifname", f"v-{ns}{name}", "--ip", ip_of(pod),
                 "--name", name, "--namespace", ns, "--labels", labels,
                 "--namespace-labels", ns_labels, "--ports", ports)
        self.labels[pod] = (labels, ns_labels)

    def set_policies(self, files):
        """The policy directory holds exactly these files, then a synchronous reload."""
        want = {f"{k}.yaml": v for k, v in files.items()}
        for f in os.listdir(self.pol_dir):
            if f not in want:
                os.unlink(os.path.join(self.pol_dir, f))
        for f, text in want.items():
            tmp = os.path.join(self.pol_dir, "." + f + ".tmp")
            with open(tmp, "w") as fh:
                fh.write(text)
            os.rename(tmp, os.path.join(self.pol_dir, f))
        self.ctl("policy", "reload")

    def probe_matrix(self, cells, timeout):
        """cells: {(src, dst, proto, port)}; returns {cell: bool}. Every probe at once,
        each from a thread that has entered its source pod's network namespace."""
        fds = {}
        try:
            for c in cells:
                if c[0] not in fds:
                    ns, name = c[0].split("/")
                    fds[c[0]] = os.open(f"/var/run/netns/{self.lab_id}-{ns}{name}", os.O_RDONLY)

            def one(c):
                enter_netns(fds[c[0]])
                return c, probe_one(ip_of(c[1]), c[3], c[2], timeout)

            with ThreadPoolExecutor(max_workers=len(cells) or 1) as ex:
                return dict(ex.map(one, sorted(cells)))
        finally:
            for fd in fds.values():
                os.close(fd)


def matches(pat, pod):
    if pat == "*":
        return True
    pns, pname = pat.split("/")
    ns, name = pod.split("/")
    return pns in ("*", ns) and pname in ("*", name)


def port_matches(pat, proto, port):
    if pat == "*":
        return True
    ppr, pp = pat.split("/")
    return ppr in ("*", proto) and pp in ("*", str(port))


def expected(rules):
    """Every pod reaches every pod, then each (src, dst, port, bool) rule in order; loopback always."""
    m = {}
    for s in ALL:
        for d in ALL:
            for proto, port in PORTS:
                v = True
                for rs, rd, rp, rv in rules:
                    if matches(rs, s) and matches(rd, d) and port_matches(rp, proto, port):
                        v = rv
                m[(s, d, proto, port)] = v or s == d
    return m


def render(exp, got, proto, port):
    """Upstream's truth table: '.' reaches, 'X' does not; a wrong cell shows what was seen, bracketed."""
    lines = [f"    {proto.upper()}/{port}  " + " ".join(f"{d:>5}" for d in ALL)]
    for s in ALL:
        row = []
        for d in ALL:
            e, g = exp[(s, d, proto, port)], got[(s, d, proto, port)]
            c = "." if g else "X"
            row.append(f"{'[' + c + ']' if e != g else c:>5}")
        lines.append(f"    {s:>8}  " + " ".join(row))
    return lines


def run(tap_start):
    sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import scenarios

    lab = Lab()
    n = tap_start
    failed = 0
    t_all = time.monotonic()
    timeout = float(os.environ.get("NETPOL_TIMEOUT", "1.0"))
    only = os.environ.get("NETPOL_ONLY", "")
    for pod in ALL:
        lab.register(pod)
    for sc in scenarios.SCENARIOS:
        if only and only not in sc["name"]:
            continue
        # Every scenario starts from no policy and the default labels.
        lab.set_policies({})
        for pod in ALL:
            lab.register(pod)
        for i, step in enumerate(sc["steps"]):
            what = sc["name"] + (f" [step {i + 1}: {step['what']}]" if len(sc["steps"]) > 1 else "")
            try:
                for pod, (labels, ns_labels) in step.get("relabel", {}).items():
                    lab.register(pod, labels, ns_labels)
                if "policies" in step:
                    lab.set_policies(step["policies"])
            except RuntimeError as e:
                n += 1
                failed += 1
                print(f"not ok {n} - {what}\n# {e}", flush=True)
                continue
            exp = expected(step["expect"])
            t0 = time.monotonic()
            got = lab.probe_matrix(set(exp), timeout)
            # A reachable pair that timed out once is probed again (a loaded
            # machine); a pair that should not reach never gets a second chance.
            for _ in range(2):
                retry = {c for c in exp if exp[c] and not got[c]}
                if not retry:
                    break
                got.update(lab.probe_matrix(retry, timeout))
            ms = (time.monotonic() - t0) * 1000
            bad = [c for c in exp if exp[c] != got[c]]
            # `ztctl policy explain` must say what the datapath did (x/a's row and column).
            disagree = []
            if step.get("explain") and not bad:
                def explain(c):
                    return c, lab.ctl("policy", "explain", "--from", c[0], "--to", c[1],
                                      "--port", f"{c[3]}/{c[2].upper()}")

                cells = [c for c in sorted(exp) if c[0] != c[1] and "x/a" in (c[0], c[1]) and
                         (c[2], c[3]) in (("tcp", 80), ("udp", 81))]
                with ThreadPoolExecutor(max_workers=8) as ex:
                    for c, out in ex.map(explain, cells):
                        if (out.split()[0] != "deny") != got[c]:
                            disagree.append(out.strip())
            n += 1
            if bad:
                failed += 1
                print(f"not ok {n} - {what}: {len(bad)} of {len(exp)} probes wrong")
                print(f"#  upstream: {sc['upstream']}")
                print("#  observed: '.' reaches, 'X' does not; [.] or [X]: not what was expected")
                for proto, port in PORTS:
                    if any(c[2] == proto and c[3] == port for c in bad):
                        for line in render(exp, got, proto, port):
                            print("#" + line)
            elif disagree:
                failed += 1
                print(f"not ok {n} - {what}: policy explain disagrees with the datapath")
                for line in disagree[:10]:
                    print(f"#  {line}")
            else:
                print(f"ok {n} - {what} ({len(exp)} probes, {ms:.0f} ms"
                      f"{', explain agrees' if step.get('explain') else ''})")
            sys.stdout.flush()
    print(f"# {n - tap_start} scenario steps in {time.monotonic() - t_all:.1f} s")
    return n, failed


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "serve" and len(sys.argv) == 3:
        serve(sys.argv[2])
    elif cmd == "run" and len(sys.argv) == 3:
        n, failed = run(int(sys.argv[2]))
        print(f"1..{n}")
        sys.exit(1 if failed else 0)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
