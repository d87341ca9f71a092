#!/usr/bin/env python3
"""Checks manifests rendered by `helm template` from deploy/helm/upper.

usage: check_chart.py RENDERED.yaml --values chart/values.yaml [--values
       override.yaml ...] --release NAME --namespace NS --dockerfile PATH
       [--upperd-help FILE] [--dashboard FILE] [--all-features]

The expected values are the chart's values.yaml merged with the overrides,
as Helm merges them; every check compares the manifests with those values
and with upperd's flags (from `upperd --help` when given) and the image's
user (from the Dockerfile). Prints one line per check; exits 1 if any fails.
"""
import argparse
import base64
import hashlib
import json
import re
import sys

import yaml

# upperd's flags: the data plane's today, the admin and metrics flags as
# the admin and metrics work defines them.
UPPERD_FLAGS = {
    "bind", "data_port", "mode", "max_connections", "idle_timeout",
    "send_timeout", "drain_timeout", "fork_server_timeout", "log_format",
    "thread_spare_min", "thread_spare_max", "thread_spare_timeout",
    "fork_spare_min", "fork_spare_max", "fork_spare_timeout",
    "fork_child_max_connections",
    "admin_port", "admin_bind",
    "admin_token_file", "admin_tls_cert", "admin_tls_key", "metrics_port",
    "metrics_bind",
}

passed = 0
failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok   {what}")
    else:
        failed += 1
        print(f"  FAIL {what}" + (f": {detail}" if detail else ""))


def merge(base, over):
    """Helm's value merge: maps merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    return over


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and
             (name is None or o["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("--values", action="append", required=True)
    ap.add_argument("--release", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("--upperd-help")
    ap.add_argument("--dashboard")
    ap.add_argument("--all-features", action="store_true")
    ap.add_argument("--kube-minor", type=int, default=35,
                    help="Kubernetes minor version helm rendered for")
    a = ap.parse_args()

    v = {}
    for path in a.values:
        with open(path) as f:
            v = merge(v, yaml.safe_load(f) or {})
    with open(a.rendered) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    fullname = f"{a.release}-upper"
    ports = v["ports"]
    up = v["upperd"]

    # --- Deployment and its pod ---------------------------------------------
    dep = one(objs, "Deployment", fullname)
    check("one Deployment named " + fullname, dep is not None)
    if dep is None:
        return
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    (c,) = spec["containers"]
    pod_labels = pod["metadata"]["labels"]
    check("Deployment selector matches its pods",
          selects(dep["spec"]["selector"]["matchLabels"], pod_labels))
    versioned = {"helm.sh/chart", "app.kubernetes.io/version"}
    check("pod template has no labels that change with each version",
          not versioned & set(pod_labels), sorted(pod_labels))
    check("the Deployment itself keeps the version labels",
          versioned <= set(dep["metadata"]["labels"]))
    check("enableServiceLinks: false (no UPPER_* link variables)",
          spec.get("enableServiceLinks") is False)
    if v["autoscaling"]["enabled"]:
        check("replicas left to the HPA", "replicas" not in dep["spec"])
    else:
        check("replicas from values",
              dep["spec"].get("replicas") == v["replicaCount"])
    tag = v["image"]["tag"] or "0.1.0"
    check("image from values",
          c["image"] == f'{v["image"]["repository"]}:{tag}', c["image"])

    args = {}
    for arg in c["args"]:
        m = re.fullmatch(r"--([a-z_]+)=(.*)", arg)
        check(f"arg {arg} is --flag=value", m is not None)
        if m:
            args[m.group(1)] = m.group(2)
    unknown = set(args) - UPPERD_FLAGS
    check("every arg is an upperd flag", not unknown, sorted(unknown))
    if a.upperd_help:
        with open(a.upperd_help) as f:
            help_flags = set(re.findall(r"^\s+--([a-z_]+)", f.read(), re.M))
        missing = sorted(set(args) - help_flags)
        if missing and not (set(missing) - (UPPERD_FLAGS - {
                "bind", "data_port", "mode", "max_connections",
                "idle_timeout", "send_timeout", "drain_timeout",
                "log_format"})):
            print(f"  note this upperd does not know {missing} yet "
                  "(admin and metrics flags arrive with that work)")
        else:
            check("upperd --help lists every arg", not missing, missing)
    expect = {
        "bind": v.get("listenAddress", "::"),
        "data_port": str(ports["data"]),
        "admin_bind": v.get("listenAddress", "::"),
        "admin_port": str(ports["admin"]),
        "metrics_bind": v.get("listenAddress", "::"),
        "metrics_port": str(ports["metrics"]),
        "mode": up["mode"],
        "max_connections": str(up["maxConnections"]),
        "idle_timeout": up["idleTimeout"],
        "send_timeout": up["sendTimeout"],
        "drain_timeout": f'{up["drainTimeoutSeconds"]}s',
        "fork_server_timeout": up["forkServerTimeout"],
        "log_format": up["logFormat"],
    }
    # The worker pools (upperd.workers), every one always passed.
    pool_flags = {
        "thread": {"spareMin": "thread_spare_min",
                   "spareMax": "thread_spare_max",
                   "spareTimeout": "thread_spare_timeout"},
        "fork": {"spareMin": "fork_spare_min", "spareMax": "fork_spare_max",
                 "spareTimeout": "fork_spare_timeout",
                 "childMaxConnections": "fork_child_max_connections"},
    }
    for pool, keys in pool_flags.items():
        for key, flag in keys.items():
            expect[flag] = str(up["workers"][pool][key])
    for flag, want in expect.items():
        check(f"--{flag}={want}", args.get(flag) == want, args.get(flag))

    cports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check("containerPorts data/admin/metrics match the flags",
          cports == {"data": ports["data"], "admin": ports["admin"],
                     "metrics": ports["metrics"]}, cports)

    drain = up["drainTimeoutSeconds"]
    for kind in ("readinessProbe", "livenessProbe"):
        probe = c.get(kind, {})
        handlers = {"grpc", "httpGet", "tcpSocket", "exec"} & set(probe)
        check(f"{kind} is grpc (grpc.health.v1) on the admin port",
              handlers == {"grpc"} and
              probe["grpc"].get("port") == ports["admin"], probe)
    live = c["livenessProbe"]
    check("liveness tolerates a whole drain (period x failures > drain)",
          live["periodSeconds"] * live["failureThreshold"] > drain)
    pre = c["lifecycle"]["preStop"]
    pre_s = v["preStop"]["sleepSeconds"]
    handler = v["preStop"]["handler"]
    if handler == "auto":
        handler = "sleepAction" if a.kube_minor >= 30 else "exec"
    if handler == "sleepAction":
        check("preStop: the kubelet's sleep action for preStop.sleepSeconds",
              pre == {"sleep": {"seconds": pre_s}}, pre)
    else:
        check("preStop: exec sleep preStop.sleepSeconds",
              pre == {"exec": {"command": ["sleep", str(pre_s)]}}, pre)
    grace = spec["terminationGracePeriodSeconds"]
    check(f"terminationGracePeriodSeconds {grace} > preStop {pre_s} + "
          f"drain {drain}", grace > pre_s + drain)
    check("resources from values", c.get("resources") == v["resources"])

    psc = spec.get("securityContext", {})
    csc = c.get("securityContext", {})
    check("pod runAsNonRoot", psc.get("runAsNonRoot") is True)
    with open(a.dockerfile) as f:
        user = re.search(r"^USER\s+(\d+)", f.read(), re.M)
    check("pod runAsUser is the image's USER",
          user and psc.get("runAsUser") == int(user.group(1)))
    check("container runAsNonRoot", csc.get("runAsNonRoot") is True)
    check("readOnlyRootFilesystem", csc.get("readOnlyRootFilesystem") is True)
    check("allowPrivilegeEscalation false",
          csc.get("allowPrivilegeEscalation") is False)
    check("capabilities drop ALL",
          csc.get("capabilities", {}).get("drop") == ["ALL"])
    check("no service account token in the pod",
          spec.get("automountServiceAccountToken") is False)

    # --- Admin token --------------------------------------------------------
    tok = v["adminToken"]
    if tok["enabled"]:
        secret_name = tok["existingSecret"] or f"{fullname}-admin-token"
        vols = {vol["name"]: vol for vol in spec.get("volumes", [])}
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        vol = vols.get("admin-token", {}).get("secret", {})
        check(f"token volume from Secret {secret_name}",
              vol.get("secretName") == secret_name, vol)
        mount = mounts.get("admin-token", {})
        path = f'{mount.get("mountPath")}/{tok["secretKey"]}'
        check("--admin_token_file is the mounted Secret key",
              args.get("admin_token_file") == path and
              mount.get("readOnly") is True and
              any(i["key"] == tok["secretKey"] for i in vol.get("items", [])),
              args.get("admin_token_file"))
        check("token not in env", not c.get("env") and not c.get("envFrom"))
        secret = one(objs, "Secret", secret_name)
        ann = pod["metadata"].get("annotations", {}).get(
            "checksum/admin-token")
        if tok["existingSecret"]:
            check("no Secret rendered for an existingSecret", secret is None)
            want = hashlib.sha256(
                f'secret:{tok["existingSecret"]}/{tok["secretKey"]}'
                .encode()).hexdigest()
            check("token checksum names the existingSecret (no lookup here)",
                  ann == want, ann)
        else:
            data = (secret or {}).get("data", {}).get(tok["secretKey"], "")
            check("chart renders the token Secret with a non-empty key",
                  secret is not None and len(data) > 8)
            token = base64.b64decode(data)
            # The chart hashes an scrypt derivation of the token (see
            # upper.adminTokenChecksum), not the token itself: readers of
            # pods must not get a cheap offline guess at it. That it
            # follows the token is checked by helm_test.sh's re-renders.
            check("token checksum is a SHA-256, not the bare token's",
                  re.fullmatch(r"[0-9a-f]{64}", ann or "") is not None and
                  ann != hashlib.sha256(token).hexdigest(), ann)
            if tok["value"]:
                check("the Secret holds adminToken.value",
                      token == tok["value"].encode())
    else:
        check("no token flag when disabled", "admin_token_file" not in args)

    # --- Services -----------------------------------------------------------
    svc = one(objs, "Service", fullname)
    sv = v["service"]
    check("data Service exists", svc is not None)
    if svc:
        (p,) = svc["spec"]["ports"]
        check("data Service type and port from values",
              svc["spec"]["type"] == sv["type"] and p["port"] == sv["port"] and
              p["targetPort"] == "data", svc["spec"])
        check("data Service selects the pods",
              selects(svc["spec"]["selector"], pod_labels))
        if sv["type"] != "ClusterIP" and sv.get("nodePort"):
            check("nodePort from values", p.get("nodePort") == sv["nodePort"])
    admin = one(objs, "Service", f"{fullname}-admin")
    check("admin Service exists", admin is not None)
    if admin:
        aports = {p["name"]: (p["port"], p["targetPort"])
                  for p in admin["spec"]["ports"]}
        check("admin Service: admin and metrics ports, cluster-internal",
              admin["spec"]["type"] == "ClusterIP" and aports == {
                  "admin": (ports["admin"], "admin"),
                  "metrics": (ports["metrics"], "metrics")}, aports)
    head = one(objs, "Service", f"{fullname}-headless")
    check("headless Service exists", head is not None)
    if head:
        hs = head["spec"]
        check("headless: clusterIP None, every pod (not-ready too), admin "
              "and metrics ports",
              hs.get("clusterIP") == "None" and
              hs.get("publishNotReadyAddresses") is True and
              {p["name"]: p["port"] for p in hs["ports"]} ==
              {"admin": ports["admin"], "metrics": ports["metrics"]} and
              selects(hs["selector"], pod_labels), hs)

    # --- Scheduling -----------------------------------------------------------
    tsc = spec.get("topologySpreadConstraints")
    if v["topologySpreadConstraints"]:
        check("topologySpreadConstraints from values",
              tsc == v["topologySpreadConstraints"], tsc)
    elif v["topologySpread"]["enabled"]:
        ts_ = v["topologySpread"]
        check("spread over nodes and zones, selecting the pods",
              tsc is not None and
              [t["topologyKey"] for t in tsc] ==
              ["kubernetes.io/hostname", "topology.kubernetes.io/zone"] and
              all(t["whenUnsatisfiable"] == ts_["whenUnsatisfiable"] and
                  t["maxSkew"] == ts_["maxSkew"] and
                  selects(t["labelSelector"]["matchLabels"], pod_labels)
                  for t in tsc), tsc)
    pdb = one(objs, "PodDisruptionBudget")
    many = v["autoscaling"]["enabled"] or v["replicaCount"] > 1
    if v["podDisruptionBudget"]["enabled"] and many:
        check("PodDisruptionBudget (more than one pod) selects the pods",
              pdb is not None and
              selects(pdb["spec"]["selector"]["matchLabels"], pod_labels) and
              pdb["spec"]["maxUnavailable"] ==
              v["podDisruptionBudget"]["maxUnavailable"])
    else:
        check("no PodDisruptionBudget for a single pod or when disabled",
              pdb is None)

    # --- Grafana dashboard ---------------------------------------------------
    cms = [o for o in objs if o["kind"] == "ConfigMap" and
           o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if a.dashboard:
        with open(a.dashboard, encoding="utf-8") as f:
            want = f.read()
        check("one ConfigMap labelled grafana_dashboard: \"1\"", len(cms) == 1)
        if cms:
            got = cms[0].get("data", {}).get("upper.json")
            check("dashboard ConfigMap holds the dashboard file byte for byte",
                  got == want,
                  f"{len(got or '')} vs {len(want)} characters")
            json.loads(got or "null")
            ns = v["grafanaDashboard"]["namespace"] or a.namespace
            check("dashboard ConfigMap namespace",
                  cms[0]["metadata"].get("namespace") == ns)
    else:
        check("no dashboard ConfigMap without a dashboard file", not cms)

    # --- Optional objects ---------------------------------------------------
    kinds = {o["kind"] for o in objs}
    hpa = one(objs, "HorizontalPodAutoscaler")
    if not v["autoscaling"]["enabled"]:
        check("no HorizontalPodAutoscaler unless autoscaling.enabled", hpa is None)
    else:
        check("HPA scales the Deployment between min and max",
              hpa is not None and
              hpa["spec"]["scaleTargetRef"] == {
                  "apiVersion": "apps/v1", "kind": "Deployment",
                  "name": fullname} and
              hpa["spec"]["minReplicas"] == v["autoscaling"]["minReplicas"] and
              hpa["spec"]["maxReplicas"] == v["autoscaling"]["maxReplicas"])
        if hpa:
            metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
            au = v["autoscaling"]
            if au["targetCPUUtilizationPercentage"]:
                check("HPA on CPU utilization",
                      metrics.get("Resource", {}).get("resource", {}).get(
                          "target", {}).get("averageUtilization") ==
                      au["targetCPUUtilizationPercentage"])
            if au["connections"]["enabled"]:
                want = str(au["connections"]["targetAverageValue"] or
                           up["maxConnections"] * 7 // 10)
                pods_m = metrics.get("Pods", {}).get("pods", {})
                check("HPA on upper_connections_active per pod (Pods metric)",
                      pods_m.get("metric", {}).get("name") ==
                      au["connections"]["metricName"] and
                      pods_m.get("target") == {"type": "AverageValue",
                                               "averageValue": want}, pods_m)
    if not a.all_features:
        for kind in ("ServiceMonitor", "PodMonitor", "NetworkPolicy"):
            check(f"no {kind} by default", kind not in kinds)
        return

    sm = one(objs, "ServiceMonitor")
    services = [o for o in objs if o["kind"] == "Service"]
    picked = [o["metadata"]["name"] for o in services if sm and selects(
        sm["spec"]["selector"]["matchLabels"], o["metadata"]["labels"])]
    check("ServiceMonitor scrapes the headless Service only (draining pods "
          "too)", sm is not None and picked == [f"{fullname}-headless"] and
          sm["spec"]["endpoints"][0]["port"] == "metrics" and
          sm["spec"]["endpoints"][0]["path"] == "/metrics", picked)
    check("no PodMonitor beside the ServiceMonitor (pods scraped once)",
          "PodMonitor" not in kinds)
    np_ = one(objs, "NetworkPolicy")
    check("NetworkPolicy exists", np_ is not None)
    if np_:
        ns_ = np_["spec"]
        check("NetworkPolicy selects the pods and restricts Ingress",
              selects(ns_["podSelector"]["matchLabels"], pod_labels) and
              "Ingress" in ns_["policyTypes"])
        admin_rules = [r for r in ns_["ingress"]
                       if any(p.get("port") == ports["admin"]
                              for p in r.get("ports", []))]
        open_rules = [r for r in ns_["ingress"] if not r.get("ports")]
        check("admin port only from pods of this namespace",
              len(admin_rules) == 1 and not open_rules and
              admin_rules[0].get("from") == [{"podSelector": {}}] and
              [p["port"] for p in admin_rules[0]["ports"]] ==
              [ports["admin"]], admin_rules)
        data_rules = [r for r in ns_["ingress"]
                      if any(p.get("port") == ports["data"]
                             for p in r.get("ports", []))]
        check("data port rule uses networkPolicy.dataFrom",
              len(data_rules) == 1 and
              data_rules[0].get("from") == (v["networkPolicy"]["dataFrom"] or
                                            None))
        metrics_rules = [r for r in ns_["ingress"]
                         if any(p.get("port") == ports["metrics"]
                                for p in r.get("ports", []))]
        check("metrics port from this namespace and metricsFrom",
              len(metrics_rules) == 1 and metrics_rules[0].get("from") ==
              [{"podSelector": {}}] + v["networkPolicy"]["metricsFrom"])


if __name__ == "__main__":
    main()
    print(f"check_chart: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
