#!/usr/bin/env python3
"""A real Prometheus scraping real upperds, and every dashboard panel proven.

1. `promtool check config` on the shipped docker/prometheus/prometheus.yml.
2. Two upperds on free loopback ports, one per mode (there is no mode switch
   without the admin plane, so both modes get load side by side).
3. Debian's `prometheus` on 127.0.0.1:<free port>, with a config generated
   from the shipped one: the same job and scrape settings, the compose target
   `upperd:9464` replaced by the two loopback metrics addresses, the scrape
   interval lowered to 1s; storage in a temporary directory.
4. Load in both modes (Python sockets): long-lived connections plus a steady
   stream of short echo exchanges, and connections over --max_connections.
5. Waits (bounded) until `up{job="upper"}` is 1 for both targets and rates
   have two samples, then evaluates EVERY PromQL expression of the Grafana
   dashboard through /api/v1/query (Grafana variables replaced by fixed
   values) and fails if any errors or returns an empty result.

Exit codes: 0 pass, 1 fail, 77 skip (prometheus or promtool not installed;
.ci/bootstrap installs Debian's `prometheus`). Every wait is bounded; the
processes and the temporary directory are cleaned up on any exit.

Usage: prometheus_test.py --upperd build/server/upperd [--repo .]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

SKIP = 77
DEADLINE_SECONDS = 150  # the whole test; ctest's TIMEOUT is above it
TEST_SCRAPE_INTERVAL = "1s"
SHIPPED_TARGET = "upperd:9464"
SHIPPED_INTERVAL = "scrape_interval: 5s"

# Grafana's variables and what they become for a plain PromQL query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "5s",
    "$__range": "5m",
    "$instance": ".*",
}

started = time.monotonic()
processes = []
failures = []


def log(message):
    print(f"[prometheus_test {time.monotonic() - started:6.1f}s] {message}",
          flush=True)


def fail(message):
    failures.append(message)
    log(f"FAIL: {message}")


def time_left():
    return DEADLINE_SECONDS - (time.monotonic() - started)


def wait_until(what, predicate, timeout, interval=0.25):
    """Polls predicate() until it returns a truthy value or timeout passes."""
    deadline = time.monotonic() + min(timeout, max(time_left(), 0))
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a server not up yet: retry until the deadline
            last_error = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out waiting for {what}"
                               + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleanup():
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def on_signal(signum, _frame):
    log(f"signal {signum}: cleaning up")
    cleanup()
    sys.exit(1)


class Upperd:
    """A real upperd on free loopback ports; its stderr is collected."""

    def __init__(self, path, mode, extra_args):
        self.mode = mode
        self.lines = []
        self.process = subprocess.Popen(
            [path, "--bind=127.0.0.1", "--data_port=0", "--admin_port=0",
             "--metrics_port=0", "--metrics_bind=127.0.0.1", f"--mode={mode}",
             *extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        processes.append(self.process)
        threading.Thread(target=self._read, daemon=True).start()
        self.data_port = self._port("data")
        self.metrics_port = self._port("metrics")

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def _port(self, service):
        pattern = re.compile(rf"listening service={service} addr=127\.0\.0\.1:(\d+)")

        def find():
            if self.process.poll() is not None:
                raise RuntimeError(f"upperd exited: {self.lines}")
            for line in list(self.lines):
                m = pattern.search(line)
                if m:
                    return int(m.group(1))
            return None
        return wait_until(f"upperd ({self.mode}) {service} port", find, 15)


def exchange(port, payload, hold=False):
    """Sends payload, reads the upper-cased reply; closes unless hold."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(payload)
    reply = b""
    while len(reply) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    if reply != payload.upper():
        raise AssertionError(f"bad reply on port {port}: {reply[:40]!r}")
    if hold:
        return s
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # EOF
    s.close()
    return None


def drive_load(upperds, stop):
    """Short exchanges on every upperd until stop is set (bounded)."""
    payload = b"upper e2e load " * 256
    while not stop.is_set() and time_left() > 0:
        for u in upperds:
            try:
                exchange(u.data_port, payload)
            except Exception as e:  # noqa: BLE001 - reported, never hidden
                if not stop.is_set():  # not the shutdown racing the last one
                    fail(f"load on {u.mode} upperd: {e}")
                return
        time.sleep(0.02)


def http_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def query(prometheus, expr):
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        return http_json(url)
    except urllib.error.HTTPError as e:  # 400/422: the error is in the body
        return json.load(e)


def scrape_value(metrics_port, series):
    """The value of one series in upperd's own /metrics, or None."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                timeout=10) as response:
        for line in response.read().decode().splitlines():
            name, _, value = line.rpartition(" ")
            if name == series:
                return float(value)
    return None


def dashboard_expressions(dashboard):
    """Every `expr` of every panel target, rows and nested panels included."""
    found = []

    def walk(node, title):
        if isinstance(node, dict):
            title = node.get("title", title)
            if isinstance(node.get("expr"), str):
                found.append((title, node["expr"]))
            for value in node.values():
                walk(value, title)
        elif isinstance(node, list):
            for value in node:
                walk(value, title)
    walk(dashboard.get("panels", []), "")
    return found


def substitute(expr):
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
    return expr


def generate_config(shipped_text, targets):
    if SHIPPED_TARGET not in shipped_text:
        raise AssertionError(f"shipped config has no target {SHIPPED_TARGET}")
    if SHIPPED_INTERVAL not in shipped_text:
        raise AssertionError(f"shipped config has no '{SHIPPED_INTERVAL}'")
    text = shipped_text.replace(f'"{SHIPPED_TARGET}"',
                                ", ".join(f'"{t}"' for t in targets))
    text = text.replace(SHIPPED_INTERVAL, f"scrape_interval: {TEST_SCRAPE_INTERVAL}")
    # The timeout may not exceed the (now shorter) interval.
    return re.sub(r"scrape_timeout: \S+", "scrape_timeout: 1s", text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upperd", required=True)
    parser.add_argument("--repo", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    shipped_config = os.path.join(repo, "docker/prometheus/prometheus.yml")
    dashboard_path = os.path.join(repo, "docker/grafana/dashboards/upper.json")
    datasource_path = os.path.join(repo, "docker/grafana/provisioning/datasources/prometheus.yml")

    prometheus_bin = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if not prometheus_bin or not promtool:
        log("SKIP: prometheus/promtool not installed (Debian package prometheus)")
        return SKIP

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # 1. The shipped config is valid as it is.
    check = subprocess.run([promtool, "check", "config", shipped_config],
                           capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        fail(f"promtool check config {shipped_config}:\n{check.stdout}{check.stderr}")
    else:
        log("promtool check config: shipped config OK")

    # The dashboard is JSON, its panels use the provisioned datasource.
    with open(dashboard_path, encoding="utf-8") as f:
        dashboard = json.load(f)
    with open(datasource_path, encoding="utf-8") as f:
        datasource_text = f.read()
    if "uid: prometheus" not in datasource_text:
        fail("datasource provisioning does not define uid prometheus")
    for panel in dashboard["panels"]:
        uid = panel.get("datasource", {}).get("uid")
        if uid not in ("prometheus", "${datasource}"):
            fail(f"panel {panel.get('title')!r} uses datasource uid {uid!r}")

    work = tempfile.mkdtemp(prefix="upper_prometheus_test_")
    held = []
    stop_load = threading.Event()
    load = None
    try:
        # 2. Two upperds, one per mode; a small limit so refusals happen.
        upperds = [Upperd(args.upperd, mode, ["--max_connections=8"])
                   for mode in ("fork", "thread")]
        targets = [f"127.0.0.1:{u.metrics_port}" for u in upperds]
        log(f"upperd fork data={upperds[0].data_port} metrics={upperds[0].metrics_port}; "
            f"thread data={upperds[1].data_port} metrics={upperds[1].metrics_port}")

        # 3. Prometheus from a config generated from the shipped one.
        with open(shipped_config, encoding="utf-8") as f:
            config_text = generate_config(f.read(), targets)
        config_path = os.path.join(work, "prometheus.yml")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(config_text)
        check = subprocess.run([promtool, "check", "config", config_path],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            fail(f"generated config invalid:\n{check.stdout}{check.stderr}\n{config_text}")
            return 1
        port = free_loopback_port()
        prometheus = f"http://127.0.0.1:{port}"
        prometheus_log = open(os.path.join(work, "prometheus.log"), "w")
        processes.append(subprocess.Popen(
            [prometheus_bin, f"--config.file={config_path}",
             f"--storage.tsdb.path={os.path.join(work, 'data')}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=prometheus_log, stderr=subprocess.STDOUT))
        wait_until("Prometheus ready", lambda: urllib.request.urlopen(
            f"{prometheus}/-/ready", timeout=2).status == 200, 60)
        log(f"prometheus ready on {prometheus}")

        # 4. Load in both modes: 3 held connections each, over-limit
        # connections, and a steady stream of exchanges.
        for u in upperds:
            for _ in range(3):
                held.append(exchange(u.data_port, b"held open", hold=True))
            # 3 + 6 open at once > 8: at least one is refused (limit).
            over = [socket.create_connection(("127.0.0.1", u.data_port), timeout=10)
                    for _ in range(6)]
            refused = 'upper_connections_rejected_total{reason="limit"}'
            wait_until(f"{u.mode} upperd refusing over the limit",
                       lambda: scrape_value(u.metrics_port, refused) >= 1, 30)
            for s in over:
                s.close()
            # The load below must not race the burst for the last slots.
            active = f'upper_connections_active{{mode="{u.mode}"}}'
            wait_until(f"{u.mode} upperd back to 3 active",
                       lambda: scrape_value(u.metrics_port, active) == 3, 30)
        load = threading.Thread(target=drive_load, args=(upperds, stop_load), daemon=True)
        load.start()

        # 5. Both targets up, and enough samples for rate().
        def targets_up():
            result = query(prometheus, 'up{job="upper"} == 1')["data"]["result"]
            return len(result) == len(targets)
        wait_until("both targets up", targets_up, 60)
        log("both targets up")
        wait_until("two samples of load for rate()", lambda: query(
            prometheus, 'sum by (mode) (rate(upper_connections_accepted_total[30s])) > 0'
        )["data"]["result"].__len__() == 2, 60)

        expressions = dashboard_expressions(dashboard)
        if len(expressions) < 10:
            fail(f"only {len(expressions)} expressions found in the dashboard")
        for title, expr in expressions:
            promql = substitute(expr)
            if "$" in promql:
                fail(f"{title!r}: unknown Grafana variable left in {promql!r}")
                continue
            reply = query(prometheus, promql)
            if reply.get("status") != "success":
                fail(f"{title!r}: {promql!r}: {reply.get('errorType')}: {reply.get('error')}")
            elif not reply["data"]["result"]:
                fail(f"{title!r}: {promql!r}: empty result")
            else:
                result = reply["data"]["result"]
                series = len(result) if isinstance(result, list) else 1
                log(f"ok  {series:2d} series  {title}: {promql}")
        log(f"{len(expressions)} dashboard expressions evaluated")

        # Query variables: label_values(metric, label) must find the label.
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            definition = variable.get("definition", "")
            m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", definition)
            if not m:
                fail(f"variable {variable['name']}: cannot check {definition!r}")
                continue
            result = query(prometheus, m.group(1))["data"]["result"]
            values = {r["metric"].get(m.group(2)) for r in result} - {None}
            if len(values) != len(targets):
                fail(f"variable {variable['name']}: {definition} gave {values}")
            else:
                log(f"ok  variable {variable['name']}: {sorted(values)}")
    except Exception as e:  # noqa: BLE001 - any error fails the test, with its cause
        fail(f"{type(e).__name__}: {e}")
    finally:
        stop_load.set()
        if load is not None:
            load.join(timeout=15)  # before the upperds stop under it
        for s in held:
            s.close()
        cleanup()
        if failures:
            log_path = os.path.join(work, "prometheus.log")
            if os.path.exists(log_path):
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    log("prometheus log:\n" + f.read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)

    if failures:
        log(f"{len(failures)} failure(s)")
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
