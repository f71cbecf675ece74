#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
# Client for the mTLS tests: mtls_say.py HOST PORT TEXT sends TEXT and a
# newline, half-closes, and prints what came back (exit 1 on a socket error).
import socket, sys
host, port, text = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode() + b"\n"
try:
    c = socket.create_connection((host, port), timeout=2)
    c.sendall(text)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += b
    sys.stdout.write(got.decode(errors="replace").strip())
except OSError as e:
    sys.stderr.write("%s\n" % e)
    sys.exit(1)
