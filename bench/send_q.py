#!/usr/bin/env python3
"""Server-side Send-Q held by clients that never read (issue 15).

Starts upperd (--send_timeout given), opens N connections that each send
until nothing more goes out and never read, then sums the Send-Q of upperd's
side of those connections (ss -tn, local port = the data port) while the
send timeout has not fired yet, and again after it has. Bounded: every wait
has a deadline; upperd is stopped with SIGTERM (SIGKILL after 30 s).

  bench/send_q.py --upperd build/server/upperd --clients 300 --send_timeout 10s
"""
import argparse
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time


def start_upperd(binary, mode, send_timeout, clients):
    proc = subprocess.Popen(
        [binary, "--bind=127.0.0.1", "--data_port=0", "--admin_port=0",
         "--metrics_port=0", "--metrics_bind=127.0.0.1", f"--mode={mode}",
         f"--send_timeout={send_timeout}", "--idle_timeout=600s",
         f"--max_connections={clients + 10}"],
        stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"listening service=data addr=\S+:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    sys.exit("upperd did not start")


def stall(sock, limit=256 << 20, quiet=0.3):
    """Sends without reading until nothing goes out for `quiet` seconds."""
    sock.setblocking(False)
    chunk = b"abcdefghijklmnopqrstuvwxyz" * 2520
    sent, last = 0, time.time()
    while sent < limit and time.time() - last < quiet:
        try:
            sent += sock.send(chunk)
            last = time.time()
        except BlockingIOError:
            select.select([], [sock], [], 0.05)
    return sent


def send_q(port):
    out = subprocess.run(["ss", "-tnH", "state", "established",
                          f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    total, count = 0, 0
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            total += int(fields[1])  # Recv-Q Send-Q Local Peer
            count += 1
    return total, count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upperd", required=True)
    ap.add_argument("--mode", default="thread")
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--send_timeout", default="10s")
    args = ap.parse_args()
    timeout_s = float(args.send_timeout.rstrip("s"))
    proc, port = start_upperd(args.upperd, args.mode, args.send_timeout,
                              args.clients)
    socks, sent = [], 0
    try:
        t0 = time.time()
        for _ in range(args.clients):
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
            sent += stall(s, quiet=0.05)
        filled = time.time() - t0
        before, n_before = send_q(port)
        print(f"mode={args.mode} clients={args.clients} "
              f"send_timeout={args.send_timeout} client_bytes_sent={sent} "
              f"fill_seconds={filled:.1f}")
        print(f"before: connections={n_before} send_q_bytes={before} "
              f"({before / 2**20:.1f} MiB)")
        # Every connection's send has waited since its client stalled.
        deadline = time.time() + timeout_s + 30
        after, n_after = before, n_before
        while time.time() < deadline:
            time.sleep(0.5)
            after, n_after = send_q(port)
            if n_after == 0:
                break
        print(f"after: connections={n_after} send_q_bytes={after} "
              f"({after / 2**20:.1f} MiB) "
              f"at {time.time() - t0:.1f}s")
    finally:
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        for line in err.splitlines():
            if " stopped " in line:
                print(line)


if __name__ == "__main__":
    main()
