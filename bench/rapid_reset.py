#!/usr/bin/env python3
"""Data-plane throughput while the admin port is under HTTP/2 rapid reset.

Debian's gRPC 1.51.1 is unpatched for CVE-2023-44487: a peer with no token
can send HEADERS + RST_STREAM(CANCEL) pairs on one connection and make the
admin plane's threads spend CPU on every pair, with no GOAWAY. This measures
what that costs the data plane, the figure docs/guarantees.md quotes.

Per repetition, per --admin_nice value (10: the default, every gRPC thread
at nice 10; 0: the admin plane at the data plane's priority), one upperd
(thread mode, loopback) serves `upper-bench pingpong` (16 connections, 64 B)
for --seconds under three conditions, in an order that rotates with the
repetition (so drift hits them alike):
  base    nothing else runs;
  burn    a Python busy loop runs at nice 0: what the attack client's own
          CPU costs the box (client, server and attacker share 2 cores here,
          where a real attacker is elsewhere), without touching upperd;
  attack  tests/integration/h2_attack.py rapid_reset on the admin port
          (one connection, no token, as fast as it can, under ulimit -v).
Printed and written (--out, markdown): medians over repetitions of
ops/s, the ratios attack/base and attack/burn (each paired within a
repetition), the pairs the attacker got through, and the CPU upperd's gRPC
threads (every thread not named "upperd") spent per pair.

Every process is ours, on 127.0.0.1, bounded in time; nothing is left
running (SIGKILL by pid at the end of each run).

  bench/rapid_reset.py --build-dir build --reps 5 --seconds 3
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upperd_proc import stop_upperd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATTACK = os.path.join(ROOT, "tests", "integration", "h2_attack.py")
PYTHON = "/usr/bin/python3"
ATTACKER_ADDRESS_SPACE_KIB = 512 * 1024
TICKS = os.sysconf("SC_CLK_TCK")
# Pairs per attack run: each costs upperd ~15 KiB until gRPC works it off
# (gRPC 1.51 queues a call per HEADERS, unbounded), so 30,000 is ~450 MiB;
# sent in well under a second, worked off over the next seconds, while
# pingpong runs.
PAIRS = 30000


def task_cpu(pid):
    """(gRPC threads' CPU s, upperd-named threads' CPU s) of `pid`."""
    grpc = own = 0.0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return grpc, own
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        if comm == "upperd":
            own += cpu
        else:
            grpc += cpu
    return grpc, own


class Upperd:
    def __init__(self, build_dir, nice, log_path):
        self.log_path = log_path
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [os.path.join(build_dir, "server", "upperd"), "--data_port=0",
                 "--bind=127.0.0.1", "--mode=thread", "--idle_timeout=0",
                 "--admin_port=0", "--metrics_port=0",
                 "--metrics_bind=127.0.0.1", "--admin_nice=%d" % nice],
                stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(log_path, errors="replace") as f:
                text = f.read()
            data = re.search(r"service=data addr=127\.0\.0\.1:(\d+)", text)
            admin = re.search(r"service=admin addr=127\.0\.0\.1:(\d+)", text)
            metrics = re.search(r"service=metrics addr=", text)
            if data and admin and metrics:
                self.data_port = int(data.group(1))
                self.admin_port = int(admin.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("upperd did not start: " + open(log_path).read())

    def stop(self):
        stop_upperd(self.proc)


def pingpong(build_dir, port, seconds):
    out = subprocess.run(
        [os.path.join(build_dir, "bench", "upper-bench"), "pingpong",
         "--addr=127.0.0.1:%d" % port, "--connections=16", "--size=64",
         "--seconds=%g" % seconds],
        capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError("upper-bench failed: " + out.stderr)
    return json.loads(out.stdout)["ops_per_s"]


def start_attack(port, seconds):
    cmd = ("ulimit -v %d && exec '%s' '%s' rapid_reset --port=%d "
           "--count=%d --seconds=%g" % (
               ATTACKER_ADDRESS_SPACE_KIB, PYTHON, ATTACK, port, PAIRS, seconds))
    proc = subprocess.Popen(["/bin/bash", "-c", cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise RuntimeError("attack did not start: " + proc.stderr.read())
    return proc


def start_burn(seconds):
    return subprocess.Popen(
        [PYTHON, "-c", "import time\nend = time.monotonic() + %g\n"
         "while time.monotonic() < end: pass\nprint('pairs=0')" % seconds],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def one_run(args, nice, condition, rep):
    upperd = Upperd(args.build_dir, nice,
                    os.path.join(args.workdir, "upperd-%d.log" % nice))
    side = None
    try:
        time.sleep(0.3)  # gRPC's threads settle
        grpc0, own0 = task_cpu(upperd.proc.pid)
        if condition == "attack":
            side = start_attack(upperd.admin_port, args.seconds + 1.5)
        elif condition == "burn":
            side = start_burn(args.seconds + 1.5)
        time.sleep(0.1)
        ops = pingpong(args.build_dir, upperd.data_port, args.seconds)
        grpc1, own1 = task_cpu(upperd.proc.pid)
        pairs, verdict = 0, ""
        if side is not None:
            out, err = side.communicate(timeout=args.seconds + 30)
            verdict = out.strip().splitlines()[-1] if out.strip() else err
            m = re.search(r"pairs=(\d+)", verdict)
            pairs = int(m.group(1)) if m else 0
        alive = upperd.proc.poll() is None
        return {"rep": rep, "admin_nice": nice, "condition": condition,
                "ops_per_s": ops, "grpc_cpu_s": grpc1 - grpc0,
                "data_cpu_s": own1 - own0, "pairs": pairs,
                "verdict": verdict, "upperd_alive": alive}
    finally:
        if side is not None and side.poll() is None:
            side.kill()
            side.wait(timeout=10)
        upperd.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", "--build_dir", dest="build_dir",
                        default=os.path.join(ROOT, "build"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--nices", default="10,0")
    parser.add_argument("--workdir", default="/tmp/upper-rapid-reset-bench")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    nices = [int(n) for n in args.nices.split(",")]
    conditions = ["base", "burn", "attack"]
    runs = []
    load_before = os.getloadavg()
    for rep in range(args.reps):
        order = conditions[rep % 3:] + conditions[:rep % 3]
        for nice in nices:
            for condition in order:
                r = one_run(args, nice, condition, rep)
                runs.append(r)
                print(json.dumps(r), flush=True)
    load_after = os.getloadavg()

    def pick(nice, condition, key):
        return [r[key] for r in runs
                if r["admin_nice"] == nice and r["condition"] == condition]

    def paired_ratio(nice, num, den):
        by_rep = {}
        for r in runs:
            if r["admin_nice"] == nice:
                by_rep.setdefault(r["rep"], {})[r["condition"]] = r
        return statistics.median(
            v[num]["ops_per_s"] / v[den]["ops_per_s"]
            for v in by_rep.values() if num in v and den in v)

    lines = [
        "| --admin_nice | base ops/s | burn ops/s | attack ops/s | "
        "attack/base | attack/burn | pairs sent | gRPC threads' CPU s | "
        "gRPC CPU per pair |",
        "|---|---|---|---|---|---|---|---|---|"]
    for nice in nices:
        pairs = statistics.median(pick(nice, "attack", "pairs"))
        cpu = statistics.median(pick(nice, "attack", "grpc_cpu_s"))
        per_pair = statistics.median(
            r["grpc_cpu_s"] / r["pairs"] for r in runs
            if r["admin_nice"] == nice and r["condition"] == "attack" and
            r["pairs"] > 0)
        lines.append(
            "| %d | %s | %s | %s | **%.2fx** | **%.2fx** | %s | %.2f | "
            "%.1f us |" % (
                nice,
                "{:,.0f}".format(statistics.median(pick(nice, "base",
                                                        "ops_per_s"))),
                "{:,.0f}".format(statistics.median(pick(nice, "burn",
                                                        "ops_per_s"))),
                "{:,.0f}".format(statistics.median(pick(nice, "attack",
                                                        "ops_per_s"))),
                paired_ratio(nice, "attack", "base"),
                paired_ratio(nice, "attack", "burn"),
                "{:,.0f}".format(pairs), cpu, per_pair * 1e6))
    header = (
        "%s UTC. %d repetitions of %g s, upperd --mode=thread, "
        "upper-bench pingpong 16 x 64 B; load average %.2f/%.2f/%.2f "
        "before, %.2f/%.2f/%.2f after; every upperd alive after its run: "
        "%s; every attack verdict: %s." % (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime()), args.reps,
            args.seconds, *load_before, *load_after,
            all(r["upperd_alive"] for r in runs),
            sorted({re.sub(r"pairs=\d+ frames=\d+ seconds=[\d.]+ rate=\d+ ",
                           "", r["verdict"])
                    for r in runs if r["condition"] == "attack"})))
    text = header + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0 if all(r["upperd_alive"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
