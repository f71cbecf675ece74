#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
# Echo server for the mTLS tests: mtls_echo.py PORT LOG [4|6]. Echoes each
# connection until its peer half-closes; appends "peer=ADDR" to LOG per
# connection, so a test can see which source address the server was given.
import socket, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
v6 = len(sys.argv) > 3 and sys.argv[3] == "6"
ls = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if v6:
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
ls.bind(("::" if v6 else "0.0.0.0", port))
ls.listen(64)
def serve(c, a):
    with open(log, "a") as f:
        f.write("peer=%s\n" % a[0])
    c.settimeout(10)
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
    except OSError:
        pass
    c.close()
while True:
    c, a = ls.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
