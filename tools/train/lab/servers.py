#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Services of the training lab (tools/train/lab_traffic.sh), one per invocation.

  servers.py web ADDR            HTTP/1.1 on ADDR:80: GET / (2 kB), /big?n=BYTES,
                                 POST /upload; and on ADDR:8080 /login with HTTP
                                 basic auth (admin / correct-horse): a real login
                                 service for brute-force clients, legitimate or not
  servers.py pop3 ADDR           POP3 on ADDR:110 (USER/PASS/STAT/QUIT), same account
  servers.py sink                on 0.0.0.0: HTTP :80 (uploads, downloads), a TCP
                                 sink :9000 that reads and discards, and a DNS-style
                                 UDP responder :53 that answers every query
Threads per connection, so slow clients hold what they hold (as on a real server).
Only ever bound inside the lab's namespaces (198.18.0.0/15).
"""
import base64
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER, PASSWORD = "admin", "correct-horse"
PAGE = b"<html><body>" + b"lab page " * 220 + b"</body></html>\n"


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # long idle keep-alives are part of the benign traffic

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="text/html"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if self.path.startswith("/big"):
            n = 1 << 20
            if "n=" in self.path:
                try:
                    n = max(0, min(int(self.path.split("n=", 1)[1]), 256 << 20))
                except ValueError:
                    pass
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"z" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        self.send(200, PAGE)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        while n > 0:
            b = self.rfile.read(min(n, 1 << 20))
            if not b:
                break
            n -= len(b)
        self.send(200, b"stored\n", "text/plain")


class Login(Quiet):
    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        ok = False
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                ok = (u, p) == (USER, PASSWORD)
            except Exception:
                ok = False
        if ok:
            self.send(200, b"welcome\n", "text/plain")
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="lab"')
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"unauthorized\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # clients that hang up mid-response (wrk, ab, attacks) are expected


def serve(addr, port, handler):
    srv = Server((addr, port), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return t


class Pop3(socketserver.StreamRequestHandler):
    timeout = 120

    def handle(self):
        user = None
        self.wfile.write(b"+OK lab POP3 ready\r\n")
        for raw in self.rfile:
            line = raw.decode(errors="replace").strip()
            cmd, _, arg = line.partition(" ")
            cmd = cmd.upper()
            if cmd == "USER":
                user = arg
                self.wfile.write(b"+OK\r\n")
            elif cmd == "PASS":
                if (user, arg) == (USER, PASSWORD):
                    self.wfile.write(b"+OK logged in\r\n")
                else:
                    self.wfile.write(b"-ERR authentication failed\r\n")
            elif cmd == "STAT":
                self.wfile.write(b"+OK 2 4096\r\n")
            elif cmd == "CAPA":
                self.wfile.write(b"+OK\r\nUSER\r\n.\r\n")
            elif cmd == "QUIT":
                self.wfile.write(b"+OK bye\r\n")
                return
            else:
                self.wfile.write(b"-ERR unknown command\r\n")


class ThreadingTCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass


class Discard(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(120)
        try:
            while self.request.recv(1 << 20):
                pass
        except OSError:
            pass


def dns_responder(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    while True:
        q, peer = s.recvfrom(4096)
        if len(q) < 12:
            continue
        # The query back with QR set and one A record: enough for any client.
        ans = q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:]
        ans += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc6\x12\x00\x14"
        s.sendto(ans, peer)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    what = sys.argv[1]
    if what == "web":
        addr = sys.argv[2]
        serve(addr, 80, Quiet)
        serve(addr, 8080, Login).join()
    elif what == "pop3":
        ThreadingTCP((sys.argv[2], 110), Pop3).serve_forever()
    elif what == "sink":
        serve("0.0.0.0", 80, Quiet)
        threading.Thread(target=ThreadingTCP(("0.0.0.0", 9000), Discard).serve_forever,
                         daemon=True).start()
        dns_responder(53)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
