#!/usr/bin/python3
"""A small kubelet emulator: runs the pod of a `helm template` render under
the real Docker engine the way a kubelet (with containerd) would, probes it,
loads it and deletes it, and prints one line per check:

    PASS: <what>      FAIL: <what>      INFO: <note>      END

tests/e2e/pod_test.sh turns those lines into e2e_pass/e2e_fail. Everything
about the pod is read from the rendered YAML (the one Deployment, its
Services, Secrets and ConfigMaps), nothing from values.yaml, so chart value
names can change freely.

What a kubelet does and how it is mapped here:
- image: the test image replaces the rendered reference (said in an INFO
  line); command -> --entrypoint + the rest, args as given, both with
  Kubernetes' $(VAR) expansion; env exactly as rendered (value, fieldRef,
  secretKeyRef, configMapKeyRef, resourceFieldRef, envFrom);
- service links: for every Service of the render with a cluster IP the
  Docker-link variables of pkg/kubelet/envvars (FromServices,
  makeLinkVariables) unless enableServiceLinks is false, and always the
  `kubernetes` Service's; the container's own env wins over them;
- securityContext: --user uid:gid, fsGroup and supplementalGroups as
  --group-add, runAsNonRoot verified, readOnlyRootFilesystem -> --read-only,
  capabilities -> --cap-drop/--cap-add, allowPrivilegeEscalation: false ->
  no-new-privileges, seccomp RuntimeDefault -> Docker's default profile
  (Unconfined or unset -> seccomp=unconfined, as the kubelet's default);
- resources: limits.memory -> --memory (and --memory-swap, no swap),
  limits.cpu -> --cpus, requests.cpu -> --cpu-shares (the kubelet's
  milli*1024/1000); --pids-limit = maxConnections + a constant for upperd's
  own tasks (Kubernetes has no per-pod field; nodes set podPidsLimit);
  --ulimit nofile=1024:524288 (containerd 2.x);
- secret/configMap volumes written like the kubelet's atomic writer
  (..data symlink, items, mode, root:fsGroup, group-readable) and mounted
  read-only; emptyDir as a writable directory; /dev/termination-log;
- probes: readiness and liveness exactly on the kubelet's schedule (a tick
  every periodSeconds from the container start, ticks before
  initialDelaySeconds skipped, timeoutSeconds, success/failureThreshold);
  grpc probes call grpc.health.v1.Health/Check on the pod IP with a raw
  unary call (no generated stubs needed): SERVING only is success.
  Liveness stops once the pod is deleted, readiness goes on;
- deletion: preStop (exec via docker exec, the sleep action by sleeping,
  httpGet), then the image's stop signal (SIGTERM), SIGKILL only when
  terminationGracePeriodSeconds, counted from the start of the deletion,
  have passed (at least 2 s after preStop, as the kubelet);
- the emulated Service sends new connections only to Ready pods that are
  not terminating.

Every network connection goes to a pod IP on the test's own Docker network.
Every loop is bounded in time; the load client runs as a child process with
limits on its memory, CPU time and run time.
"""

import argparse
import base64
import http.client
import json
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import yaml

OUT_LOCK = threading.Lock()


def out(kind, msg):
    with OUT_LOCK:
        print(f"{kind}: {msg}" if kind != "END" else "END", flush=True)


def check(ok, msg):
    out("PASS" if ok else "FAIL", msg)
    return ok


def info(msg):
    out("INFO", msg)


def log(msg):
    """Details for the log only (stderr)."""
    with OUT_LOCK:
        print(f"[kubelet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,
              flush=True)


def docker(*args, timeout=60, check_rc=True, input=None):
    r = subprocess.run(["docker", *args], capture_output=True, text=True,
                       timeout=timeout, input=input)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}...: {r.stderr.strip()}")
    return r


# ---- quantities --------------------------------------------------------------

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
           "Ei": 2**60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "P": 10**15, "E": 10**18, "m": 10**-3, "": 1}


def quantity(q):
    """A Kubernetes resource quantity as a float ("512Mi", "100m", "1e3")."""
    s = str(q).strip()
    m = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([KMGTPE]i|[kmMGTPE]?)", s)
    if not m:
        raise ValueError(f"bad quantity {q!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def mib(n):
    return f"{n / 2**20:.1f} MiB"


# ---- $(VAR) expansion (k8s.io/kubernetes third_party/forked/golang/expansion)


def expand(s, env):
    out_, i = [], 0
    while i < len(s):
        if s[i] == "$" and i + 1 < len(s):
            n = s[i + 1]
            if n == "$":
                out_.append("$")
                i += 2
                continue
            if n == "(":
                j = s.find(")", i + 2)
                if j != -1:
                    name = s[i + 2:j]
                    out_.append(env[name] if name in env else s[i:j + 1])
                    i = j + 1
                    continue
        out_.append(s[i])
        i += 1
    return "".join(out_)


# ---- service links (pkg/kubelet/envvars/envvars.go) --------------------------


def env_name(s):
    return s.replace("-", "_").upper()


def link_vars(name, cluster_ip, ports):
    """FromServices + makeLinkVariables for one Service, in the kubelet's
    order. ports: [{name, port, protocol}]."""
    if not cluster_ip or cluster_ip == "None" or not ports:
        return []
    host = f"[{cluster_ip}]" if ":" in cluster_ip else cluster_ip  # JoinHostPort
    p = env_name(name)
    res = [(p + "_SERVICE_HOST", cluster_ip),
           (p + "_SERVICE_PORT", str(ports[0]["port"]))]
    for sp in ports:
        if sp.get("name"):
            res.append((p + "_SERVICE_PORT_" + env_name(sp["name"]), str(sp["port"])))
    for i, sp in enumerate(ports):
        proto = sp.get("protocol") or "TCP"
        url = f"{proto.lower()}://{host}:{sp['port']}"
        if i == 0:
            res.append((p + "_PORT", url))
        pp = f"{p}_PORT_{sp['port']}_{proto.upper()}"
        res += [(pp, url), (pp + "_PROTO", proto.lower()),
                (pp + "_PORT", str(sp["port"])), (pp + "_ADDR", cluster_ip)]
    return res


KUBERNETES_SERVICE = ("kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])


# ---- gRPC health -----------------------------------------------------------

SERVING, NOT_SERVING = 1, 2


def grpc_health(addr, timeout, service=""):
    """grpc.health.v1.Health/Check on addr (host:port) as the kubelet's gRPC
    probe does (a new insecure connection each time). Returns (status or
    None, detail). The request is HealthCheckRequest{service}; the reply's
    field 1 (varint) is the status."""
    import grpc  # Debian's python3-grpcio; imported late so --help works without it
    req = b""
    if service:
        sb = service.encode()
        req = b"\x0a" + _varint(len(sb)) + sb
    try:
        with grpc.insecure_channel(addr, options=[
                ("grpc.primary_user_agent", "kube-probe/1.33"),
                ("grpc.enable_retries", 0)]) as ch:
            call = ch.unary_unary("/grpc.health.v1.Health/Check",
                                  request_serializer=None,
                                  response_deserializer=None)
            resp = call(req, timeout=timeout, wait_for_ready=False)
    except grpc.RpcError as e:
        return None, f"rpc error: {e.code().name} {e.details()}"
    except Exception as e:  # noqa: BLE001 - a probe failure, whatever it is
        return None, f"error: {e}"
    status = _read_status(resp)
    return status, {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING",
                    3: "SERVICE_UNKNOWN", None: "unparsable reply"}.get(status, str(status))


def _varint(n):
    b = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n:
            b.append(x | 0x80)
        else:
            b.append(x)
            return bytes(b)


def _read_status(buf):
    i, status = 0, 0  # proto3: an absent field is 0 (UNKNOWN)
    try:
        while i < len(buf):
            key = buf[i]
            i += 1
            if key == 0x08:
                v, shift = 0, 0
                while True:
                    c = buf[i]
                    i += 1
                    v |= (c & 0x7F) << shift
                    shift += 7
                    if not c & 0x80:
                        break
                status = v
            else:
                return None
    except IndexError:
        return None
    return status


# ---- the render ----------------------------------------------------------------


class Render:
    def __init__(self, path, service_links):
        docs = [d for d in yaml.safe_load_all(open(path)) if d]
        deps = [d for d in docs if d.get("kind") == "Deployment"]
        if len(deps) != 1:
            raise RuntimeError(f"{path}: expected one Deployment, found {len(deps)}")
        self.deployment = deps[0]
        self.namespace = self.deployment["metadata"].get("namespace", "default")
        self.services = [d for d in docs if d.get("kind") == "Service"]
        self.secrets = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Secret"}
        self.configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
        self.pod = self.deployment["spec"]["template"]
        self.spec = self.pod["spec"]
        if len(self.spec["containers"]) != 1:
            raise RuntimeError("the emulator runs single-container pods only")
        if self.spec.get("initContainers"):
            raise RuntimeError("initContainers are not emulated")
        self.container = self.spec["containers"][0]
        # Cluster IPs: the rendered one if any, else one per Service in
        # render order from 10.96.0.10 (the kubernetes Service is 10.96.0.1).
        self.cluster_ips = {}
        nxt = 10
        for s in self.services:
            ip = s["spec"].get("clusterIP")
            if not ip:
                ip = f"10.96.0.{nxt}"
                nxt += 1
            self.cluster_ips[s["metadata"]["name"]] = ip
        rendered = self.spec.get("enableServiceLinks", True)
        self.service_links = {"pod": rendered, "on": True, "off": False}[service_links]
        self.service_links_rendered = rendered

    def args(self):
        return list(self.container.get("args") or [])

    def flag(self, name):
        """The value of --name=VALUE (or --name VALUE) in the rendered
        command/args, or None."""
        argv = list(self.container.get("command") or []) + self.args()
        for i, a in enumerate(argv):
            if a.startswith(f"--{name}="):
                return a.split("=", 1)[1]
            if a == f"--{name}" and i + 1 < len(argv):
                return argv[i + 1]
        return None

    def service_env(self):
        env = link_vars(*KUBERNETES_SERVICE)
        if self.service_links:
            for s in self.services:
                name = s["metadata"]["name"]
                env += link_vars(name, self.cluster_ips[name], s["spec"].get("ports") or [])
        return env

    def grace(self):
        return int(self.spec.get("terminationGracePeriodSeconds", 30))

    def container_port(self, port):
        """A probe's port: a number or the name of a container port."""
        if isinstance(port, int):
            return port
        for p in self.container.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        return int(port)

    def data_port(self):
        ports = self.container.get("ports") or []
        for p in ports:
            if p.get("name") == "data":
                return int(p["containerPort"])
        return int(self.flag("data_port") or 9999)


# ---- a pod -----------------------------------------------------------------------


class Prober(threading.Thread):
    """One probe of one container on the kubelet's schedule."""

    def __init__(self, pod, kind, probe):
        super().__init__(daemon=True, name=f"{pod.name}-{kind}")
        self.pod, self.kind, self.probe = pod, kind, probe
        self.period = int(probe.get("periodSeconds", 10))
        self.timeout = int(probe.get("timeoutSeconds", 1))
        self.delay = int(probe.get("initialDelaySeconds", 0))
        self.fail_threshold = int(probe.get("failureThreshold", 3))
        self.ok_threshold = int(probe.get("successThreshold", 1))
        # Readiness starts as failure, liveness as success.
        self.result = kind == "liveness"
        self.successes = self.failures = 0
        self.history = []  # (seconds since container start, ok, detail)
        self.tripped = False  # liveness: failureThreshold reached
        self.stop = threading.Event()
        self.changed = threading.Condition()

    def run(self):
        start = self.pod.started_at
        k = 0
        while not self.stop.is_set():
            tick = start + k * self.period
            k += 1
            if self.stop.wait(max(0.0, tick - time.monotonic())):
                return
            if time.monotonic() - start < self.delay:
                continue
            if self.kind == "liveness" and self.pod.deleted_at is not None:
                return  # the kubelet stops liveness probing on deletion
            if not self.pod.running():
                continue
            ok, detail = self.pod.run_probe(self.probe, self.timeout)
            t = time.monotonic() - start
            with self.changed:
                self.history.append((t, ok, detail))
                if ok:
                    self.successes, self.failures = self.successes + 1, 0
                    if self.successes >= self.ok_threshold:
                        self.result = True
                else:
                    self.successes, self.failures = 0, self.failures + 1
                    if self.failures >= self.fail_threshold:
                        self.result = False
                        if self.kind == "liveness" and not self.tripped:
                            self.tripped = True
                            log(f"{self.pod.name}: liveness failed {self.failures}x "
                                f"({detail}): the kubelet would restart the container")
                self.changed.notify_all()
            log(f"{self.pod.name} {self.kind} probe at {t:.1f}s: {'ok' if ok else 'FAIL'} {detail}")


class Pod:
    def __init__(self, kube, name, ip):
        self.kube, self.r = kube, kube.render
        self.name, self.ip = name, ip
        self.container = f"{kube.prefix}-{name}"
        self.started_at = None
        self.deleted_at = None
        self.exit_code = None
        self.exited_at = None
        self.killed = False
        self.probers = {}
        self.waiter = None
        self.cid = None
        self.env = {}

    # -- docker run ----------------------------------------------------------
    def build_env(self):
        r, c = self.r, self.r.container
        field = {"metadata.name": self.name, "metadata.namespace": r.namespace,
                 "metadata.uid": f"00000000-0000-0000-0000-{abs(hash(self.name)) % 10**12:012d}",
                 "spec.nodeName": "emulated-node", "spec.serviceAccountName":
                     r.spec.get("serviceAccountName", "default"),
                 "status.podIP": self.ip, "status.hostIP": self.kube.gateway,
                 "status.podIPs": self.ip, "status.hostIPs": self.kube.gateway}
        service_env = dict(r.service_env())
        env = {}

        def mapping():
            m = dict(service_env)
            m.update(env)
            return m

        for ef in c.get("envFrom") or []:
            prefix = ef.get("prefix", "")
            if "secretRef" in ef:
                data = {k: base64.b64decode(v).decode() for k, v in
                        (r.secrets[ef["secretRef"]["name"]].get("data") or {}).items()}
            else:
                data = dict(r.configmaps[ef["configMapRef"]["name"]].get("data") or {})
            for k, v in data.items():
                env[prefix + k] = v
        for e in c.get("env") or []:
            if "value" in e or "valueFrom" not in e:
                env[e["name"]] = expand(str(e.get("value", "")), mapping())
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[e["name"]] = field[vf["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                env[e["name"]] = base64.b64decode(r.secrets[ref["name"]]["data"][ref["key"]]).decode()
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                env[e["name"]] = r.configmaps[ref["name"]]["data"][ref["key"]]
            elif "resourceFieldRef" in vf:
                ref = vf["resourceFieldRef"]
                kind, res = ref["resource"].split(".", 1)
                val = quantity((c.get("resources") or {}).get(kind, {}).get(res, 0))
                div = quantity(ref.get("divisor", "1"))
                env[e["name"]] = str(int(-(-val // div)))
            else:
                raise RuntimeError(f"env {e['name']}: unsupported valueFrom {vf}")
        for k, v in service_env.items():  # the container's own env wins
            env.setdefault(k, v)
        return env

    def docker_run_argv(self):
        c, spec = self.r.container, self.r.spec
        env = self.env = self.build_env()
        argv = ["run", "-d", "--name", self.container, "--hostname", self.name[:63],
                "--network", self.kube.network, "--ip", self.ip,
                "--label", f"upper-pod-test={self.kube.prefix}",
                "--restart", "no", "--log-driver", "json-file"]
        # securityContext
        psc, csc = spec.get("securityContext") or {}, c.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        image_user = self.kube.image_user
        if uid is None:
            u = image_user.split(":")[0] if image_user else "0"
            if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) and not u.isdigit():
                raise RuntimeError(f"runAsNonRoot: image user {image_user!r} is not numeric "
                                   "(the kubelet refuses to start it)")
            uid = int(u) if u.isdigit() else None
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) and uid == 0:
            raise RuntimeError("runAsNonRoot but the container would run as uid 0")
        if uid is not None:
            argv += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
        groups = list(psc.get("supplementalGroups") or [])
        if psc.get("fsGroup") is not None:
            groups.insert(0, psc["fsGroup"])
        for g in groups:
            argv += ["--group-add", str(g)]
        if csc.get("privileged"):
            argv.append("--privileged")
        if csc.get("readOnlyRootFilesystem"):
            argv.append("--read-only")
        caps = csc.get("capabilities") or {}
        for cap in caps.get("drop") or []:
            argv += ["--cap-drop", cap]
        for cap in caps.get("add") or []:
            argv += ["--cap-add", cap]
        if csc.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp in (None, "Unconfined"):
            argv += ["--security-opt", "seccomp=unconfined"]
        elif seccomp != "RuntimeDefault":
            raise RuntimeError(f"seccompProfile {seccomp} is not emulated")
        # resources
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        if "memory" in limits:
            mem = int(quantity(limits["memory"]))
            argv += ["--memory", str(mem), "--memory-swap", str(mem)]
        if "cpu" in limits:
            argv += ["--cpus", f"{quantity(limits['cpu']):g}"]
        req_cpu = requests.get("cpu", limits.get("cpu"))
        if req_cpu is not None:
            argv += ["--cpu-shares", str(max(2, int(quantity(req_cpu) * 1000) * 1024 // 1000))]
        if self.kube.pids_limit > 0:
            argv += ["--pids-limit", str(self.kube.pids_limit)]
        argv += ["--ulimit", f"nofile={self.kube.nofile}"]
        # volumes
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        for vm in c.get("volumeMounts") or []:
            v = vols[vm["name"]]
            if vm.get("subPath") or vm.get("subPathExpr"):
                raise RuntimeError("subPath mounts are not emulated")
            src, ro = self.make_volume(v, psc.get("fsGroup"))
            ro = ro or vm.get("readOnly", False)
            argv += ["--mount", f"type=bind,source={src},target={vm['mountPath']}"
                     + (",readonly" if ro else "")]
        tl = os.path.join(self.kube.workdir, f"{self.name}-termination-log")
        open(tl, "w").close()
        os.chmod(tl, 0o666)
        argv += ["--mount", f"type=bind,source={tl},target="
                 f"{c.get('terminationMessagePath', '/dev/termination-log')}"]
        if c.get("workingDir"):
            argv += ["-w", c["workingDir"]]
        for k, v in env.items():
            argv += ["-e", f"{k}={v}"]
        # command and args, with $(VAR) expansion against the final env
        command = [expand(a, env) for a in c.get("command") or []]
        args = [expand(a, env) for a in c.get("args") or []]
        if command:
            argv += ["--entrypoint", command[0]]
        argv.append(self.kube.image)
        argv += command[1:] + args
        return argv

    def make_volume(self, v, fs_group):
        """Writes a volume's files like the kubelet's atomic writer; returns
        (host dir, always read-only)."""
        base = os.path.join(self.kube.workdir, f"{self.name}-vol-{v['name']}")
        os.makedirs(base)
        if "emptyDir" in v:
            os.chmod(base, 0o777)
            return base, False
        if "secret" in v:
            sv = v["secret"]
            raw = self.r.secrets[sv["secretName"]].get("data") or {}
            data = {k: base64.b64decode(x) for k, x in raw.items()}
        elif "configMap" in v:
            sv = v["configMap"]
            data = {k: x.encode() for k, x in (self.r.configmaps[sv["name"]].get("data") or {}).items()}
        else:
            raise RuntimeError(f"volume {v['name']}: only secret, configMap and emptyDir are emulated")
        mode = int(sv.get("defaultMode", 0o644))
        items = sv.get("items") or [{"key": k, "path": k} for k in data]
        ts = os.path.join(base, time.strftime("..%Y_%m_%d_%H_%M_%S.000000001"))
        os.makedirs(ts)
        tops = set()
        for it in items:
            dst = os.path.join(ts, it["path"])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(data[it["key"]])
            m = int(it.get("mode", mode))
            tops.add(it["path"].split("/")[0])
            if fs_group is not None:  # SetVolumeOwnership: group fsGroup, read-only mask 0440
                os.chown(dst, 0, int(fs_group))
                m |= 0o440
            os.chmod(dst, m)
        os.symlink(os.path.basename(ts), os.path.join(base, "..data"))
        for t in tops:
            os.symlink(os.path.join("..data", t), os.path.join(base, t))
        for d in (base, ts):
            if fs_group is not None:
                os.chown(d, 0, int(fs_group))
                os.chmod(d, 0o2755)
            else:
                os.chmod(d, 0o755)
        return base, True

    def start(self):
        argv = self.docker_run_argv()
        log(f"{self.name}: docker " + " ".join(
            a if not a.startswith("UPPER_TOKEN") else "..." for a in argv))
        self.cid = docker(*argv).stdout.strip()
        self.started_at = time.monotonic()
        self.waiter = threading.Thread(target=self._wait, daemon=True)
        self.waiter.start()
        for kind in ("readiness", "liveness", "startup"):
            p = self.r.container.get(f"{kind}Probe")
            if kind == "startup" and p:
                raise RuntimeError("startupProbe is not emulated")
            if p:
                self.probers[kind] = Prober(self, kind, p)
                self.probers[kind].start()

    def _wait(self):
        r = subprocess.run(["docker", "wait", self.container], capture_output=True, text=True)
        self.exited_at = time.monotonic()
        try:
            self.exit_code = int(r.stdout.strip())
        except ValueError:
            self.exit_code = -1

    def running(self):
        return self.started_at is not None and self.exited_at is None

    def ready(self):
        p = self.probers.get("readiness")
        return self.running() and (p.result if p else True)

    def serving(self):
        """An endpoint of the Service: Ready and not terminating."""
        return self.ready() and self.deleted_at is None

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            if not self.running():
                return False
            time.sleep(0.1)
        return False

    def liveness_tripped(self):
        p = self.probers.get("liveness")
        return bool(p and p.tripped)

    def run_probe(self, probe, timeout):
        if "grpc" in probe:
            port = self.r.container_port(probe["grpc"]["port"])
            st, detail = grpc_health(f"{self.ip}:{port}", timeout, probe["grpc"].get("service", ""))
            return st == SERVING, detail
        if "tcpSocket" in probe:
            try:
                socket.create_connection((self.ip, self.r.container_port(probe["tcpSocket"]["port"])),
                                         timeout=timeout).close()
                return True, "connected"
            except OSError as e:
                return False, str(e)
        if "httpGet" in probe:
            return self.http_get(probe["httpGet"], timeout)
        if "exec" in probe:
            try:
                rc = docker("exec", self.container, *probe["exec"]["command"], timeout=timeout,
                            check_rc=False).returncode
            except subprocess.TimeoutExpired:
                return False, "timeout"
            return rc == 0, f"exit {rc}"
        raise RuntimeError(f"unsupported probe {probe}")

    def http_get(self, h, timeout):
        try:
            conn = http.client.HTTPConnection(self.ip, self.r.container_port(h["port"]), timeout=timeout)
            conn.request("GET", h.get("path", "/"), headers={"User-Agent": "kube-probe/1.33"})
            st = conn.getresponse().status
            conn.close()
            return 200 <= st < 400, f"HTTP {st}"
        except OSError as e:
            return False, str(e)

    def health(self, timeout=2.0):
        port = self.r.container_port(self.r.container["readinessProbe"]["grpc"]["port"])
        return grpc_health(f"{self.ip}:{port}", timeout)

    # -- deletion ------------------------------------------------------------
    def delete(self, on_signal=None):
        """The kubelet's killContainer: preStop, the stop signal, SIGKILL
        after the grace period. Returns a dict of what happened."""
        grace = self.r.grace()
        self.deleted_at = t0 = time.monotonic()
        res = {"grace": grace, "prestop": None}
        hook = ((self.r.container.get("lifecycle") or {}).get("preStop"))
        if hook and self.running():
            h0 = time.monotonic()
            if "exec" in hook:
                try:
                    rc = docker("exec", self.container, *hook["exec"]["command"],
                                timeout=grace, check_rc=False).returncode
                    res["prestop"] = f"exec {hook['exec']['command']} -> exit {rc}"
                except subprocess.TimeoutExpired:
                    res["prestop"] = "exec timed out at the grace period"
            elif "sleep" in hook:
                time.sleep(min(grace, int(hook["sleep"]["seconds"])))
                res["prestop"] = f"sleep action {hook['sleep']['seconds']} s"
            elif "httpGet" in hook:
                res["prestop"] = "httpGet " + str(self.http_get(hook["httpGet"], grace))
            else:
                raise RuntimeError(f"unsupported preStop {hook}")
            res["prestop_s"] = time.monotonic() - h0
        remaining = max(2.0, grace - (time.monotonic() - t0))  # minimumGracePeriodInSeconds
        res["signal_at"] = time.monotonic() - t0
        if self.running():
            docker("kill", "-s", self.kube.stop_signal, self.container, check_rc=False)
            if on_signal:
                on_signal()
        deadline = time.monotonic() + remaining
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            self.killed = True
            docker("kill", "-s", "KILL", self.container, check_rc=False)
            self.waiter.join(10)
        else:
            self.waiter.join(10)
        res["exit_code"] = self.exit_code
        res["exit_s"] = (self.exited_at or time.monotonic()) - t0
        res["killed"] = self.killed
        for p in self.probers.values():
            p.stop.set()
        return res

    def stop_probers(self):
        for p in self.probers.values():
            p.stop.set()

    def remove(self):
        self.stop_probers()
        docker("rm", "-f", self.container, check_rc=False)

    # -- observation -----------------------------------------------------------
    def inspect(self):
        r = docker("inspect", self.container, check_rc=False)
        return json.loads(r.stdout)[0] if r.returncode == 0 else {}

    def cgroup(self):
        """Memory and pids figures of the container's cgroup (v1 or v2)."""
        cid = self.cid
        res = {}
        v1 = f"/sys/fs/cgroup/memory/docker/{cid}"
        if os.path.isdir(v1):
            rd = lambda f: open(os.path.join(v1, f)).read()  # noqa: E731
            res["usage"] = int(rd("memory.usage_in_bytes"))
            res["peak"] = int(rd("memory.max_usage_in_bytes"))
            res["limit"] = int(rd("memory.limit_in_bytes"))
            stat = dict(line.split() for line in rd("memory.stat").splitlines())
            res["rss"] = int(stat.get("total_rss", stat.get("rss", 0)))
            res["kernel"] = int(rd("memory.kmem.usage_in_bytes")) if os.path.exists(
                os.path.join(v1, "memory.kmem.usage_in_bytes")) else None
            oc = dict(line.split() for line in rd("memory.oom_control").splitlines())
            res["oom_kill"] = int(oc.get("oom_kill", 0))
            pv1 = f"/sys/fs/cgroup/pids/docker/{cid}"
            if os.path.isdir(pv1):
                res["pids"] = int(open(pv1 + "/pids.current").read())
                res["pids_max"] = open(pv1 + "/pids.max").read().strip()
            return res
        for v2 in (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope", f"/sys/fs/cgroup/docker/{cid}"):
            if os.path.isdir(v2):
                rd = lambda f: open(os.path.join(v2, f)).read()  # noqa: E731
                res["usage"] = int(rd("memory.current"))
                res["peak"] = int(rd("memory.peak")) if os.path.exists(v2 + "/memory.peak") else None
                res["limit"] = rd("memory.max").strip()
                ev = dict(line.split() for line in rd("memory.events").splitlines())
                res["oom_kill"] = int(ev.get("oom_kill", 0))
                res["pids"] = int(rd("pids.current"))
                res["pids_max"] = rd("pids.max").strip()
                return res
        return res

    def socket_memory(self):
        """Bytes the pod's TCP sockets hold (rmem_alloc + wmem_queued +
        fwd_alloc from `ss -tm` in its network namespace), and the count.
        cgroup v1 does not charge them to the memory cgroup; cgroup v2
        (most containerd 2.x nodes) does."""
        pid = self.inspect().get("State", {}).get("Pid")
        if not pid or not shutil.which("nsenter") or not shutil.which("ss"):
            return None, 0
        r = subprocess.run(["nsenter", "-t", str(pid), "-n", "ss", "-tmnH"],
                           capture_output=True, text=True, timeout=30)
        total = n = 0
        for m in re.finditer(r"skmem:\(r(\d+),rb\d+,t\d+,tb\d+,f(\d+),w(\d+)", r.stdout):
            total += int(m.group(1)) + int(m.group(2)) + int(m.group(3))
            n += 1
        return total, n

    def _metrics_body(self):
        """/metrics of the pod (bounded read); raises OSError."""
        port = self.r.flag("metrics_port") or "9464"
        conn = http.client.HTTPConnection(self.ip, int(port), timeout=5)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read(4 << 20).decode(errors="replace")
        finally:
            conn.close()

    def metrics(self):
        """A few upper_ series from /metrics on the pod (bounded read)."""
        try:
            body = self._metrics_body()
        except OSError as e:
            return f"unreachable ({e})"
        keep = [line for line in body.splitlines() if re.match(
            r"upper_connections_(active|rejected_total)\b", line) and not line.endswith(" 0")]
        return "; ".join(keep) or "no non-zero upper_connections_active/rejected series"

    def active_connections(self):
        """upper_connections_active summed over modes, or None if unreadable."""
        try:
            body = self._metrics_body()
        except OSError:
            return None
        values = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                  if re.match(r"upper_connections_active\{", line)]
        return sum(values) if values else None

    def logs_tail(self, n=5):
        r = docker("logs", "--tail", str(n), self.container, check_rc=False)
        return (r.stdout + r.stderr).strip()


class Kube:
    def __init__(self, a, render):
        self.render = render
        self.image, self.network, self.prefix = a.image, a.network, a.prefix
        self.workdir = a.workdir
        self.gateway = a.subnet + ".1"
        self.subnet = a.subnet
        self.nofile = a.nofile
        mc = render.flag("max_connections")
        self.max_connections = int(mc) if mc else None
        self.pids_limit = a.pids_limit if a.pids_limit is not None else (
            (self.max_connections or 0) + a.pids_overhead)
        img = json.loads(docker("image", "inspect", self.image).stdout)[0]["Config"]
        self.image_user = img.get("User") or ""
        self.stop_signal = img.get("StopSignal") or "SIGTERM"
        self.pods = []
        self.rr = 0
        self.lock = threading.Lock()

    def pod(self, name, host):
        p = Pod(self, name, f"{self.subnet}.{host}")
        self.pods.append(p)
        return p

    def endpoint(self):
        """The emulated Service: round robin over Ready, non-terminating pods."""
        with self.lock:
            eps = [p for p in self.pods if p.serving()]
            if not eps:
                return None
            self.rr += 1
            return eps[self.rr % len(eps)]

    def cleanup(self):
        for p in self.pods:
            p.remove()


# ---- data-plane clients ---------------------------------------------------------


class Stream(threading.Thread):
    """One long-lived connection that keeps sending distinct chunks and
    checks each reply is that chunk upper-cased, until told to finish; then
    it half-closes and expects a clean EOF with nothing more."""

    def __init__(self, addr, tag, interval=0.02, chunk=700):
        super().__init__(daemon=True, name=f"stream-{tag}")
        self.addr, self.tag, self.interval, self.chunk = addr, tag, interval, chunk
        self.finish = threading.Event()
        self.error = None
        self.sent = self.checked = 0
        self.exchanges = 0
        self.connected = threading.Event()
        self.ended_clean = False

    def run(self):
        rnd = random.Random(self.tag)
        try:
            s = socket.create_connection(self.addr, timeout=10)
            self.connected.set()
            deadline = time.monotonic() + 240
            seq = 0
            while not self.finish.is_set():
                if time.monotonic() > deadline:
                    raise RuntimeError("stream ran past its 240 s bound")
                head = f"[{self.tag} #{seq}] abcxyz ".encode()
                msg = head + rnd.randbytes(self.chunk - len(head))
                s.sendall(msg)
                self.sent += len(msg)
                got = _recv_exact(s, len(msg))
                if got != msg.upper():
                    raise RuntimeError(f"chunk {seq}: reply differs at byte "
                                       f"{_first_diff(got, msg.upper())} ({len(got)}/{len(msg)} bytes)")
                self.checked += len(got)
                self.exchanges += 1
                seq += 1
                self.finish.wait(self.interval)
            s.shutdown(socket.SHUT_WR)
            rest = s.recv(1)
            if rest:
                raise RuntimeError("unexpected bytes after the last chunk")
            self.ended_clean = True
            s.close()
        except Exception as e:  # noqa: BLE001 - reported as the stream's failure
            self.error = f"{type(e).__name__}: {e}"
            self.connected.set()


def _recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise RuntimeError(f"EOF after {len(buf)} of {n} bytes")
        buf += b
    return bytes(buf)


def _first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def exchange(addr, payload, timeout=10):
    """One short connection: send, half-close, read to EOF, check."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        buf = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
            if len(buf) > len(payload):
                break
    finally:
        s.close()
    if bytes(buf) != payload.upper():
        raise RuntimeError(f"{len(buf)}/{len(payload)} bytes back, first difference at "
                           f"{_first_diff(buf, payload.upper())}")


class ServiceClient(threading.Thread):
    """New connections through the emulated Service, one every interval."""

    def __init__(self, kube, interval=0.05):
        super().__init__(daemon=True, name="service-client")
        self.kube, self.interval = kube, interval
        self.stop = threading.Event()
        self.ok = 0
        self.errors = []
        self.by_pod = {}
        self.after_delete = {}  # pod -> connections opened after a deletion started
        self.deleted_marker = None

    def run(self):
        rnd = random.Random(7)
        n = 0
        deadline = time.monotonic() + 240
        while not self.stop.is_set() and time.monotonic() < deadline:
            pod = self.kube.endpoint()
            n += 1
            if pod is None:
                self.errors.append(f"#{n}: no Ready endpoint")
            else:
                payload = f"svc #{n} to {pod.name}: hello rolling update ".encode() + \
                    rnd.randbytes(2000)
                try:
                    exchange((pod.ip, self.kube.render.data_port()), payload)
                    self.ok += 1
                    self.by_pod[pod.name] = self.by_pod.get(pod.name, 0) + 1
                    if self.deleted_marker is not None:
                        self.after_delete[pod.name] = self.after_delete.get(pod.name, 0) + 1
                except Exception as e:  # noqa: BLE001
                    self.errors.append(f"#{n} via {pod.name}: {type(e).__name__}: {e}")
            self.stop.wait(self.interval)


# ---- the load client (a child process) ---------------------------------------------


def load_main(a):
    """Holds a.connections connections to a.addr at once, each sending a
    distinct payload and checking every byte that comes back; prints
    `HOLD <json>` when every exchange is done (or the deadline passed),
    waits for a line on stdin, checks the connections are still open,
    closes them and prints `DONE <json>`."""
    resource.setrlimit(resource.RLIMIT_AS, (a.max_memory, a.max_memory))
    resource.setrlimit(resource.RLIMIT_CPU, (a.max_cpu, a.max_cpu))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = a.connections
    if n + 64 > hard:
        print("HOLD " + json.dumps({"fatal": f"client hard nofile {hard} < {n} + 64"}), flush=True)
        return
    host, port = a.addr.rsplit(":", 1)
    port = int(port)
    L = a.payload
    rnd = random.Random(1)
    base = b"abcdefghijklmnopqrstuvwxyz" * 4 + rnd.randbytes(L)
    base = base[:L]
    base2, up2 = base + base, (base + base).upper()
    heads = [f"conn {i:06d}/{n:06d} lower-case text; ".encode() for i in range(n)]
    rot = [(i * 7919) % L for i in range(n)]

    def expected(i, off, ln, upper):
        h = heads[i].upper() if upper else heads[i]
        b = up2 if upper else base2
        parts = []
        if off < len(h):
            parts.append(h[off:off + ln])
            ln -= len(parts[0])
            off = len(h)
        if ln > 0:
            o = rot[i] + off - len(h)
            parts.append(b[o:o + ln])
        return b"".join(parts)

    sel = selectors.DefaultSelector()
    socks = [None] * n
    sent = [0] * n
    recvd = [0] * n
    state = [0] * n  # 0 idle, 1 connecting, 2 exchanging, 3 done, 4 failed
    fails = {}
    t0 = time.monotonic()
    deadline = t0 + a.deadline

    def fail(i, why):
        state[i] = 4
        fails[why] = fails.get(why, 0) + 1
        try:
            sel.unregister(socks[i])
        except (KeyError, ValueError):
            pass

    nxt = 0
    inflight = 0
    open_now = peak_open = 0
    connected_all_at = None
    while time.monotonic() < deadline:
        # bounded number of connects in flight
        while nxt < n and inflight < 256:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            socks[nxt] = s
            rc = s.connect_ex((host, port))
            if rc not in (0, 115):  # EINPROGRESS
                fail(nxt, f"connect: {os.strerror(rc)}")
            else:
                state[nxt] = 1
                inflight += 1
                sel.register(s, selectors.EVENT_WRITE, nxt)
            nxt += 1
        if nxt >= n and all(st >= 3 for st in state):
            break
        for key, ev in sel.select(timeout=0.5):
            i = key.data
            s = socks[i]
            if state[i] == 1:
                inflight -= 1
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(i, f"connect: {os.strerror(err)}")
                    continue
                state[i] = 2
                open_now += 1
                peak_open = max(peak_open, open_now)
                sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE, i)
                continue
            if ev & selectors.EVENT_READ:
                try:
                    b = s.recv(65536)
                except OSError as e:
                    fail(i, f"recv: {e.strerror}")
                    open_now -= 1
                    continue
                if not b:
                    fail(i, "closed by the server after %s" % (
                        "no reply" if recvd[i] == 0 else "a partial reply"))
                    open_now -= 1
                    continue
                if recvd[i] + len(b) > L or b != expected(i, recvd[i], len(b), True):
                    fail(i, "reply is not the payload upper-cased")
                    open_now -= 1
                    continue
                recvd[i] += len(b)
                if recvd[i] == L:
                    state[i] = 3
                    sel.unregister(s)
                    continue
            if ev & selectors.EVENT_WRITE and state[i] == 2:
                if sent[i] < L:
                    try:
                        sent[i] += s.send(expected(i, sent[i], min(65536, L - sent[i]), False))
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        fail(i, f"send: {e.strerror}")
                        open_now -= 1
                        continue
                if sent[i] >= L:
                    sel.modify(s, selectors.EVENT_READ, i)
        if connected_all_at is None and nxt >= n and inflight == 0:
            connected_all_at = time.monotonic() - t0
    done = sum(1 for st in state if st == 3)
    left = sum(1 for st in state if st in (1, 2))
    if left:
        fails["not finished by the deadline"] = left
    res = {"connections": n, "served": done, "payload": L, "bytes_checked": sum(recvd),
           "open_at_once": peak_open, "seconds": round(time.monotonic() - t0, 1),
           "connected_all_s": connected_all_at, "failures": fails}
    print("HOLD " + json.dumps(res), flush=True)
    sys.stdin.readline()
    # Still open? A closed connection is readable (EOF) now.
    still = 0
    probe = selectors.DefaultSelector()
    for i in range(n):
        if state[i] == 3:
            probe.register(socks[i], selectors.EVENT_READ, i)
    closed = {k.data for k, _ in probe.select(timeout=0.2)}
    for i in range(n):
        if state[i] == 3 and i not in closed:
            still += 1
    for s in socks:
        if s is not None:
            s.close()
    res["still_open_after_hold"] = still
    print("DONE " + json.dumps(res), flush=True)


# ---- scenarios -----------------------------------------------------------------


def describe_pod(kube, pod, label):
    r = kube.render
    rendered_image = r.container.get("image")
    info(f"{label}: image {rendered_image!r} as rendered, run as the test image {kube.image!r} instead")
    info(f"{label}: args {' '.join(r.args())}")
    links = [k for k, _ in r.service_env() if not k.startswith("KUBERNETES_")]
    how = {"pod": "as the pod spec says", "on": "forced on", "off": "forced off"}[kube.a_links]
    if r.service_links:
        info(f"{label}: service links on ({how}; rendered enableServiceLinks: "
             f"{r.service_links_rendered}): {len(links)} variables, e.g. "
             + ", ".join(f"{k}={v}" for k, v in r.service_env() if k in (
                 "UPPER_ADMIN_PORT", "UPPER_PORT", "UPPER_SERVICE_HOST")))
    else:
        info(f"{label}: service links off ({how}): only KUBERNETES_* injected")
    info(f"{label}: pids limit {kube.pids_limit}, nofile {kube.nofile}, grace "
         f"{r.grace()} s, stop signal {kube.stop_signal}")


def start_ready(kube, pod, label):
    """Starts the pod and waits for Ready; False (with a FAIL) otherwise."""
    try:
        pod.start()
    except Exception as e:  # noqa: BLE001
        check(False, f"{label}: the kubelet starts the container: {e}")
        return False
    rp = kube.render.container.get("readinessProbe") or {}
    bound = int(rp.get("initialDelaySeconds", 0)) + int(rp.get("periodSeconds", 10)) * (
        int(rp.get("successThreshold", 1)) + 2) + int(rp.get("timeoutSeconds", 1)) + 10
    ok = pod.wait_ready(min(bound, 90))
    if ok:
        return check(True, f"{label}: pod Ready (grpc.health.v1 SERVING on the readiness "
                           f"probe's schedule) {time.monotonic() - pod.started_at:.1f} s after start")
    if not pod.running():
        pod.waiter.join(5)
        check(False, f"{label}: pod Ready: the container exited {pod.exit_code} "
                     f"{(pod.exited_at or 0) - pod.started_at:.1f} s after start, so the kubelet "
                     f"would restart it (CrashLoopBackOff). Its log: {pod.logs_tail(3)}")
    else:
        hist = pod.probers["readiness"].history[-3:] if "readiness" in pod.probers else []
        check(False, f"{label}: pod Ready within {bound} s: readiness probes {hist}")
    return False


def in_container_checks(kube, pod, label):
    r, c = kube.render, kube.render.container
    for vm in c.get("volumeMounts") or []:
        vol = {v["name"]: v for v in r.spec.get("volumes") or []}[vm["name"]]
        if "secret" not in vol:
            continue
        sec = r.secrets.get(vol["secret"]["secretName"])
        for it in vol["secret"].get("items") or [{"key": k, "path": k} for k in sec["data"]]:
            path = f"{vm['mountPath']}/{it['path']}"
            got = docker("exec", pod.container, "cat", path, check_rc=False)
            want = base64.b64decode(sec["data"][it["key"]]).decode()
            wr = docker("exec", pod.container, "sh", "-c", f": > {path}.probe", check_rc=False)
            check(got.returncode == 0 and got.stdout == want and wr.returncode != 0,
                  f"{label}: Secret {sec['metadata']['name']} item {it['key']} at {path}: "
                  f"readable by the container's user, mount read-only")
    lim = docker("exec", pod.container, "cat", "/proc/1/limits", check_rc=False).stdout
    m = re.search(r"Max open files\s+(\d+)\s+(\d+)", lim)
    if m:
        info(f"{label}: upperd's open-file limit {m.group(1)} soft / {m.group(2)} hard "
             f"(started with {kube.nofile}); max_connections {kube.max_connections}")


def load(kube, pod, label, a):
    n = kube.max_connections
    if not n:
        return check(False, f"{label}: no --max_connections= in the rendered args")
    cmd = [sys.executable, os.path.abspath(__file__), "load", "--addr",
           f"{pod.ip}:{kube.render.data_port()}", "--connections", str(n),
           "--payload", str(a.payload), "--deadline", str(a.load_deadline)]
    t0 = time.monotonic()
    # The cgroup sampled every 0.5 s during the load, so that a container
    # killed on the way still has figures (its cgroup goes with it).
    samples = {"max_usage": 0, "max_pids": 0, "last": {}, "n": 0, "max_sock": 0}
    sampling = threading.Event()

    def sample():
        k = 0
        while not sampling.wait(0.5):
            k += 1
            if k % 4 == 0:  # ss over thousands of sockets: every 2 s
                try:
                    sock, _ = pod.socket_memory()
                    samples["max_sock"] = max(samples["max_sock"], sock or 0)
                except (OSError, subprocess.SubprocessError):
                    pass
            try:
                cg_ = pod.cgroup()
            except (OSError, ValueError):
                cg_ = {}
            if not cg_:
                continue
            samples["n"] += 1
            samples["last"] = cg_
            samples["max_usage"] = max(samples["max_usage"], cg_.get("usage") or 0)
            samples["max_pids"] = max(samples["max_pids"], cg_.get("pids") or 0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hold = done = None
    timer = threading.Timer(a.load_deadline + 60, p.kill)
    timer.start()
    try:
        line = p.stdout.readline()
        if line.startswith("HOLD "):
            hold = json.loads(line[5:])
            sampling.set()
            sampler.join(5)
            cg = pod.cgroup() or dict(samples["last"], stale=True)
            st = pod.inspect().get("State", {})
            met = pod.metrics() if pod.running() else "pod not running"
            sock_hold, sock_n = pod.socket_memory() if pod.running() else (None, 0)
            p.stdin.write("\n")
            p.stdin.flush()
            line = p.stdout.readline()
            if line.startswith("DONE "):
                done = json.loads(line[5:])
        p.wait(30)
    finally:
        sampling.set()
        timer.cancel()
        if p.poll() is None:
            p.kill()
    if not hold or "fatal" in hold:
        return check(False, f"{label}: load client: {hold}")
    ok = hold["served"] == n and not hold["failures"]
    check(ok, f"{label}: {hold['served']} of max_connections={n} connections held at once "
              f"(peak {hold['open_at_once']} open), each sent a distinct {hold['payload']}-byte "
              f"payload and got it back upper-cased, every byte checked "
              f"({mib(hold['bytes_checked'])}, {hold['seconds']} s)"
          + ("" if ok else f"; failures: {hold['failures']}"))
    still = done.get("still_open_after_hold") if done else None
    check(still == hold["served"] and hold["served"] > 0,
          f"{label}: all {hold['served']} served connections still open after the "
          f"memory sample ({still})")
    oom = st.get("OOMKilled")
    usage = cg.get("usage")
    samples["max_usage"] = max(samples["max_usage"], usage or 0)
    samples["max_pids"] = max(samples["max_pids"], cg.get("pids") or 0)
    if sock_hold:
        samples["max_sock"] = max(samples["max_sock"], sock_hold)
    lim = cg.get("limit")
    lim_s = mib(lim) if isinstance(lim, int) and lim < 2**62 else str(lim)
    when = (f"last sample before the container died ({samples['n']} samples)"
            if cg.get("stale") else "at the peak of the load")
    check(oom is False and st.get("Running") is True and cg.get("oom_kill", 0) == 0,
          f"{label}: no OOM kill under the load and the container still running (OOMKilled "
          f"{oom}, running {st.get('Running')}, exit {st.get('ExitCode')}, cgroup oom_kill "
          f"{cg.get('oom_kill')}); memory cgroup {when}: "
          f"{mib(usage) if usage else '?'} used (sampled max {mib(samples['max_usage'])}), "
          f"max_usage {mib(cg['peak']) if cg.get('peak') else '?'}, limit {lim_s}, rss "
          f"{mib(cg.get('rss', 0))}; pids {cg.get('pids')} (sampled max "
          f"{samples['max_pids']}) of {cg.get('pids_max')}")
    if hold["served"]:
        per = (usage or samples["max_usage"]) / max(1, hold["served"])
        info(f"{label}: about {per / 1024:.0f} KiB of the memory cgroup per served connection "
             f"(usage / connections, {hold['payload']}-byte payloads)")
    cgv1 = os.path.isdir("/sys/fs/cgroup/memory/docker")
    info(f"{label}: TCP socket buffers in the pod (ss -tm): "
         f"{mib(sock_hold) if sock_hold is not None else '?'} in {sock_n} sockets at the hold, "
         f"sampled max {mib(samples['max_sock'])} during the exchanges"
         + ("; cgroup v1 does not charge them to the memory limit, cgroup v2 nodes do" if cgv1 else ""))
    info(f"{label}: metrics at the peak: {met}")
    info(f"{label}: load took {time.monotonic() - t0:.1f} s")
    return ok


def delete_with_streams(kube, pod, label, streams=8):
    """Deletes the pod as the kubelet does while `streams` connections keep
    exchanging; checks NOT_SERVING, readiness failing, the streams finishing
    clean and exit 0 within the grace period."""
    addr = (pod.ip, kube.render.data_port())
    # The load closed all of its connections just now; upperd frees their
    # slots as their workers end (fork mode: as the fork server reaps 3,000
    # children). Streams opened before that would race the release at the
    # limit, which is not what this checks.
    t_wait = time.monotonic()
    while time.monotonic() - t_wait < 20 and (pod.active_connections() or 0) > 0:
        time.sleep(0.1)
    info(f"{label}: the load's connections released "
         f"{time.monotonic() - t_wait:.1f} s after it closed them")
    ss = [Stream(addr, f"{label}-drain-{i}") for i in range(streams)]
    for s in ss:
        s.start()
    for s in ss:
        s.connected.wait(10)
    time.sleep(0.3)
    signalled = threading.Event()
    box = {}
    th = threading.Thread(target=lambda: box.update(pod.delete(on_signal=signalled.set)), daemon=True)
    th.start()
    grace = kube.render.grace()
    if not signalled.wait(grace + 5):
        check(False, f"{label}: the stop signal was sent after preStop")
    t_sig = time.monotonic()
    # health goes NOT_SERVING
    seen, last = None, None
    while time.monotonic() - t_sig < 10 and pod.running():
        st, last = pod.health(1.0)
        if st == NOT_SERVING:
            seen = time.monotonic() - t_sig
            break
        time.sleep(0.1)
    check(seen is not None, f"{label}: after SIGTERM grpc.health.v1 Check says NOT_SERVING"
          + (f" ({seen:.2f} s)" if seen is not None else f" (never within 10 s; last: {last})"))
    refused = False
    try:
        socket.create_connection(addr, timeout=2).close()
    except OSError:
        refused = True
    check(refused, f"{label}: a draining pod accepts no new data connection")
    # the kubelet's readiness probe fails (probing goes on for terminating pods)
    rp = pod.probers.get("readiness")
    bound = rp.period * (rp.fail_threshold + 1) + rp.timeout + 1 if rp else 0
    notready_at = None
    while rp and time.monotonic() - t_sig < bound and pod.running():
        if not rp.result:
            notready_at = time.monotonic() - t_sig
            break
        time.sleep(0.1)
    first_fail = next((h for h in (rp.history if rp else []) if not h[1]
                       and h[0] >= t_sig - pod.started_at), None)
    check(notready_at is not None or (first_fail is not None),
          f"{label}: readiness probe fails while draining: "
          + (f"NotReady {notready_at:.1f} s after SIGTERM" if notready_at is not None else
             f"first failing probe {first_fail}" if first_fail else "no failing probe"))
    for s in ss:
        s.finish.set()
    for s in ss:
        s.join(15)
    bad = [f"{s.tag}: {s.error}" for s in ss if s.error or not s.ended_clean]
    total = sum(s.checked for s in ss)
    check(not bad and total > 0,
          f"{label}: {streams} live connections kept working through preStop and the drain "
          f"and closed cleanly, every byte checked ({sum(s.exchanges for s in ss)} exchanges, "
          f"{mib(total)})" + (f"; broken: {bad[:3]}" if bad else ""))
    th.join(grace + 15)
    res = box
    info(f"{label}: preStop {res.get('prestop')} ({res.get('prestop_s', 0):.1f} s), "
         f"signal at {res.get('signal_at', 0):.1f} s")
    check(res.get("exit_code") == 0 and not res.get("killed") and res.get("exit_s", 1e9) < grace,
          f"{label}: upperd exited {res.get('exit_code')} {res.get('exit_s', 0):.1f} s after the "
          f"deletion began, within terminationGracePeriodSeconds={grace}, "
          f"{'SIGKILLed' if res.get('killed') else 'no SIGKILL'}")
    info(f"{label}: last log line: {pod.logs_tail(1)}")
    return res


def liveness_check(pod, label):
    """Waits (bounded) for at least one liveness probe, then checks none of
    them reached failureThreshold (the kubelet would have restarted the
    container)."""
    p = pod.probers.get("liveness")
    if not p:
        return check(False, f"{label}: the pod has a liveness probe")
    deadline = pod.started_at + p.delay + p.period + p.timeout + 2
    while not p.history and time.monotonic() < deadline and pod.running():
        time.sleep(0.2)
    fails = [h for h in p.history if not h[1]]
    return check(p.history and not p.tripped,
                 f"{label}: liveness never reached failureThreshold={p.fail_threshold}, so no "
                 f"restart ({len(p.history)} probes, {len(fails)} failed"
                 + (f", e.g. {fails[0]}" if fails else "") + ")")


def scenario_pod(kube, a):
    label = a.label
    pod = kube.pod(f"{kube.render.deployment['metadata']['name']}-{a.label}-0", a.host)
    describe_pod(kube, pod, label)
    if not start_ready(kube, pod, label):
        check(False, f"{label}: load, drain and exit checks not run: the pod never became Ready")
        return
    in_container_checks(kube, pod, label)
    load(kube, pod, label, a)
    if not pod.running():
        check(False, f"{label}: drain checks not run: the container exited "
                     f"{pod.exit_code} during the load ({pod.logs_tail(2)})")
        liveness_check(pod, label)
        return
    liveness_check(pod, label)  # liveness stops at the deletion
    delete_with_streams(kube, pod, label)
    st = pod.inspect().get("State", {})
    check(st.get("OOMKilled") is False, f"{label}: never OOM-killed (OOMKilled {st.get('OOMKilled')})")


def scenario_links(kube, a):
    """Service links forced on, whatever the pod spec says: upperd must
    ignore UPPER_* link variables (UPPER_ADMIN_PORT=tcp://...) for flags
    given on its command line."""
    label = a.label
    pod = kube.pod(f"{kube.render.deployment['metadata']['name']}-{a.label}-0", a.host)
    describe_pod(kube, pod, label)
    env = dict(kube.render.service_env())
    clash = sorted(k for k, v in env.items() if k.startswith("UPPER_") and v.startswith("tcp://"))
    key = "UPPER_ADMIN_PORT" if "UPPER_ADMIN_PORT" in env else (clash[0] if clash else None)
    check(kube.render.service_links and key is not None,
          f"{label}: service links injected as a kubelet does, {len(env)} variables, "
          f"tcp:// ones named like upperd's UPPER_<FLAG>: {clash}")
    if not start_ready(kube, pod, label):
        check(False, f"{label}: upperd ignores service links for flags on its command line")
        return
    if key:
        pe = docker("exec", pod.container, "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ",
                    check_rc=False).stdout
        check(f"{key}={env[key]}" in pe.splitlines(),
              f"{label}: upperd runs with {key}={env[key]} in its environment")
    try:
        exchange((pod.ip, kube.render.data_port()), b"service links are ignored \x00\xff")
        ok, err = True, None
    except Exception as e:  # noqa: BLE001
        ok, err = False, e
    check(ok, f"{label}: upperd ignores service links for flags on its command line: Ready "
              f"on the rendered admin port, the data port upper-cases" + ("" if ok else f" ({err})"))
    liveness_check(pod, label)
    res = pod.delete()
    check(res.get("exit_code") == 0 and not res.get("killed"),
          f"{label}: exits {res.get('exit_code')} on deletion ({res.get('exit_s', 0):.1f} s)")


def scenario_rolling(kube, a):
    label = a.label
    name = kube.render.deployment["metadata"]["name"]
    pa = kube.pod(f"{name}-{label}-a", a.host)
    pb = kube.pod(f"{name}-{label}-b", a.host + 1)
    describe_pod(kube, pa, label)
    if not start_ready(kube, pa, f"{label} pod A"):
        check(False, f"{label}: rolling update not run: pod A never became Ready")
        return
    svc = ServiceClient(kube)
    svc.start()
    time.sleep(0.5)
    # the long stream, opened through the Service while only A is an endpoint
    ep = kube.endpoint()
    stream = Stream((ep.ip, kube.render.data_port()), f"{label}-stream", interval=0.01)
    stream.start()
    stream.connected.wait(10)
    if not start_ready(kube, pb, f"{label} pod B (surge)"):
        svc.stop.set()
        stream.finish.set()
        check(False, f"{label}: rolling update not finished: pod B never became Ready")
        return
    time.sleep(1.0)  # both endpoints serve for a moment
    svc.deleted_marker = time.monotonic()
    signalled = threading.Event()
    box = {}
    th = threading.Thread(target=lambda: box.update(pa.delete(on_signal=signalled.set)), daemon=True)
    th.start()
    signalled.wait(kube.render.grace() + 5)
    t_sig = time.monotonic()
    while time.monotonic() - t_sig < 10 and pa.running():
        if pa.health(1.0)[0] == NOT_SERVING:
            break
        time.sleep(0.1)
    time.sleep(1.5)  # the stream keeps going through the drain
    stream.finish.set()
    stream.join(15)
    th.join(kube.render.grace() + 15)
    time.sleep(1.0)
    svc.stop.set()
    svc.join(15)
    check(stream.error is None and stream.ended_clean and stream.checked > 0,
          f"{label}: the stream on pod A kept exchanging through preStop and the drain and "
          f"closed cleanly, every byte checked ({stream.exchanges} exchanges, {mib(stream.checked)})"
          + (f"; {stream.error}" if stream.error else ""))
    check(not svc.errors and svc.ok > 0,
          f"{label}: every new connection through the Service was served exactly "
          f"({svc.ok} connections: {svc.by_pod})" + (f"; lost: {svc.errors[:3]}" if svc.errors else ""))
    check(set(svc.after_delete) == {pb.name},
          f"{label}: after pod A's deletion began, new connections went only to pod B "
          f"({svc.after_delete})")
    check(box.get("exit_code") == 0 and not box.get("killed"),
          f"{label}: pod A exited {box.get('exit_code')} {box.get('exit_s', 0):.1f} s after its "
          f"deletion began (grace {kube.render.grace()} s, "
          f"{'SIGKILLed' if box.get('killed') else 'no SIGKILL'})")
    check(pb.ready() and not pb.liveness_tripped() and not pa.liveness_tripped(),
          f"{label}: pod B still Ready, no liveness failure on either pod")
    pb.remove()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("pod", "rolling", "links"):
        p = sub.add_parser(name)
        p.add_argument("--render", required=True, help="output of helm template")
        p.add_argument("--image", required=True, help="image to run instead of the rendered one")
        p.add_argument("--network", required=True, help="the test's own Docker network")
        p.add_argument("--subnet", required=True, help="its first three octets, e.g. 10.244.7")
        p.add_argument("--host", type=int, default=10, help="last octet of the (first) pod IP")
        p.add_argument("--prefix", required=True, help="container name prefix")
        p.add_argument("--workdir", required=True, help="where volumes are written")
        p.add_argument("--label", required=True, help="name of this run in the check lines")
        p.add_argument("--service-links", choices=("pod", "on", "off"), default="pod",
                       help="pod: as enableServiceLinks says; on/off: forced")
        p.add_argument("--pids-overhead", type=int, default=64,
                       help="pids limit = max_connections + this (upperd's own tasks)")
        p.add_argument("--pids-limit", type=int, default=None, help="explicit pids limit; 0: none")
        p.add_argument("--nofile", default="1024:524288", help="soft:hard (containerd 2.x)")
        p.add_argument("--payload", type=int, default=65536, help="bytes per load connection")
        p.add_argument("--load-deadline", type=int, default=120, help="seconds for the load")
    lp = sub.add_parser("load")
    lp.add_argument("--addr", required=True)
    lp.add_argument("--connections", type=int, required=True)
    lp.add_argument("--payload", type=int, default=65536)
    lp.add_argument("--deadline", type=int, default=120)
    lp.add_argument("--max-memory", type=int, default=3 << 30)
    lp.add_argument("--max-cpu", type=int, default=300)
    a = ap.parse_args()
    if a.cmd == "load":
        return load_main(a)
    if not re.fullmatch(r"10\.244\.\d+", a.subnet):
        sys.exit("pod IPs must be on the test's 10.244.x.0/24 network")
    kube = None
    def on_term(*_):
        check(False, f"{a.label}: kubelet.py was stopped from outside (its time bound)")
        sys.exit(1)

    signal.signal(signal.SIGTERM, on_term)
    try:
        render = Render(a.render, a.service_links)
        kube = Kube(a, render)
        kube.a_links = a.service_links
        {"pod": scenario_pod, "rolling": scenario_rolling, "links": scenario_links}[a.cmd](kube, a)
    except Exception as e:  # noqa: BLE001 - a FAIL line, then the log has the traceback
        import traceback
        traceback.print_exc()
        check(False, f"{a.label}: the emulator stopped: {type(e).__name__}: {e}")
    finally:
        if kube:
            for p in kube.pods:
                log(f"{p.name} log tail:\n{p.logs_tail(8)}")
            kube.cleanup()
        out("END", "")


if __name__ == "__main__":
    main()
