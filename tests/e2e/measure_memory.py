#!/usr/bin/env python3
"""Measures what one upperd connection costs a pod, per mode, the way a
memory cgroup charges it: runs the image in a Docker container with a
memory limit, opens N connections (each sends a few bytes and checks the
upper-cased reply, then stays open and idle), and reads the container's
cgroup from the host. Prints one JSON line per run and a per-connection
slope between the two sizes.

usage: measure_memory.py [--image upper:test] [--sizes 1000,3000]
                         [--modes thread,fork] [--port-base 23000]
                         [--busy BYTES] [--payload BYTES]

--busy: each client also sends BYTES and never reads, the worst case of a
slow reader (socket queues and upperd's buffer full).

Needs cgroup v1 (/sys/fs/cgroup/memory/docker/<id>/) as on the machine the
chart's figures come from (docs/deploy.md). On cgroup v1 socket memory is
charged to the cgroup only once memory.kmem.tcp.limit_in_bytes is set, so
the script sets it (to the memory limit) before opening connections:
memory.usage_in_bytes then includes socket buffers as cgroup v2 (what the
kubelet uses on current nodes) always does. Every wait is bounded; the
container is named uniquely and removed by name.
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

CG = "/sys/fs/cgroup"


def sh(*args, check=True):
    r = subprocess.run(args, check=False, capture_output=True, text=True,
                       timeout=120)
    if check and r.returncode:
        raise RuntimeError(f"{args[:3]}... exit {r.returncode}: {r.stderr}")
    return r.stdout.strip()


def read(path):
    with open(path) as f:
        return f.read().strip()


def stat(cid):
    mem = f"{CG}/memory/docker/{cid}"
    s = dict(line.split() for line in read(f"{mem}/memory.stat").splitlines())
    out = {
        "usage": int(read(f"{mem}/memory.usage_in_bytes")),
        "rss": int(s["rss"]),                 # anonymous user memory
        "cache": int(s["cache"]),             # page cache, shmem (the memfd table)
        "mapped_file": int(s["mapped_file"]),
        "kmem": int(read(f"{mem}/memory.kmem.usage_in_bytes")),
        "kmem_tcp": int(read(f"{mem}/memory.kmem.tcp.usage_in_bytes")),
        "tasks": int(read(f"{CG}/pids/docker/{cid}/pids.current")),
    }
    return out


def wait_port(port, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def open_conns(port, n, payload=0):
    """N connections, each checked with one echo of max(payload, a few)
    bytes; returns the sockets."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        msg = b"hello %d\n" % i
        msg += b"x" * max(0, payload - len(msg))
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"connection {i} closed early")
            got += chunk
        if got != msg.upper():
            raise RuntimeError(f"connection {i}: {got!r}")
        socks.append(s)
    return socks


def settle(cid, seconds=3):
    time.sleep(seconds)
    return stat(cid)


def run(image, mode, n, port, busy=0, payload=0):
    name = f"upper-memmeasure-{os.getpid()}-{mode}-{n}"
    try:
        return measure(image, mode, n, port, busy, name, payload)
    finally:
        # Also when `docker run` failed after creating the container.
        sh("docker", "rm", "-f", name, check=False)


def measure(image, mode, n, port, busy, name, payload=0):
    cid = sh("docker", "run", "-d", "--name", name, "--network", "host",
             "--memory", "2g", "--ulimit", "nofile=16384:16384",
             image, "--bind=127.0.0.1", f"--data_port={port}",
             "--admin_bind=127.0.0.1", f"--admin_port={port + 1}",
             "--metrics_bind=127.0.0.1", f"--metrics_port={port + 2}",
             f"--mode={mode}", f"--max_connections={n + 10}",
             "--idle_timeout=0")
    mem = f"{CG}/memory/docker/{cid}"
    with open(f"{mem}/memory.kmem.tcp.limit_in_bytes", "w") as f:
        f.write(str(2 << 30))
    if not wait_port(port):
        raise RuntimeError("upperd did not listen: " +
                           sh("docker", "logs", name, check=False))
    # Let admin and metrics come up and one scrape happen.
    wait_port(port + 2)
    socket.create_connection(("127.0.0.1", port + 2), timeout=5).close()
    base = settle(cid)
    socks = open_conns(port, n, payload)
    if busy:
        # Worst case of a slow reader: each client sends BUSY bytes and
        # reads nothing, so upperd's buffer and both socket queues fill.
        for s in socks:
            s.setblocking(False)
            try:
                s.send(b"x" * busy)
            except BlockingIOError:
                pass
    loaded = settle(cid)
    for s in socks:
        s.close()
    return {"mode": mode, "n": n, "busy": busy, "idle": base,
            "loaded": loaded}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="upper:test")
    ap.add_argument("--sizes", default="1000,3000")
    ap.add_argument("--modes", default="thread,fork")
    ap.add_argument("--port-base", type=int, default=23000)
    ap.add_argument("--payload", type=int, default=0,
                    help="bytes each client echoes once before it idles "
                         "(65536 fills upperd's serve buffer)")
    ap.add_argument("--busy", type=int, default=0,
                    help="bytes each client sends without reading (0: idle)")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = [int(x) for x in a.sizes.split(",")]
    port = a.port_base
    for mode in a.modes.split(","):
        runs = []
        for n in sizes:
            r = run(a.image, mode, n, port, a.busy, a.payload)
            port += 10
            print(json.dumps(r), flush=True)
            runs.append(r)
        lo, hi = runs[0], runs[-1]
        dn = hi["n"] - lo["n"]
        slope = {k: round((hi["loaded"][k] - lo["loaded"][k]) / dn / 1024, 2)
                 for k in hi["loaded"]}
        slope["tasks"] = round((hi["loaded"]["tasks"] - lo["loaded"]["tasks"])
                               / dn, 3)
        per_conn_total = {k: round((hi["loaded"][k] - hi["idle"][k]) /
                                   hi["n"] / 1024, 2) for k in hi["loaded"]}
        print(json.dumps({"mode": mode, "slope_kib_per_conn": slope,
                          f"per_conn_kib_at_{hi['n']}": per_conn_total,
                          "idle_usage_mib": round(
                              hi["idle"]["usage"] / 2**20, 2),
                          "idle_tasks": hi["idle"]["tasks"]}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
