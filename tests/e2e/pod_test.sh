#!/usr/bin/env bash
# The chart's pod as deployed: takes what `helm template` renders from
# deploy/helm/upper (the Deployment, its Services and Secret) and runs the
# pod under the real Docker engine the way a kubelet would
# (tests/e2e/kubelet.py: service-link variables, securityContext, resources,
# nofile 1024:524288 as containerd 2.x, the token Secret mounted read-only,
# readiness and liveness gRPC probes on their schedule, preStop, SIGTERM and
# the grace period), on a Docker network of its own whose container IPs the
# host reaches directly, like pod IPs. Run from anywhere:
# `bash tests/e2e/pod_test.sh`.
#
# Checks, one PASS/FAIL line each:
# 1. thread mode (the default render) and fork mode (--set upperd.mode=fork):
#    the pod becomes Ready; it holds --max_connections (read from the
#    rendered args) connections at once, every byte checked, without an OOM
#    kill (memory from the container's cgroup reported); liveness never
#    fails; on deletion preStop runs, SIGTERM makes the health check say
#    NOT_SERVING and readiness fail, live connections keep working and close
#    cleanly, upperd exits 0 within terminationGracePeriodSeconds.
# 2. a rolling update of two pods behind the emulated Service: a stream on
#    pod A through A's preStop and drain, new connections only to Ready pods
#    (B once A is deleted), no byte lost.
# 3. service links forced on (whatever enableServiceLinks says): upperd
#    ignores UPPER_ADMIN_PORT=tcp://... for flags on its command line.
#
# The image is built from docker/Dockerfile (e2e_build_image; cached when
# docker_test.sh built the same tree) and replaces the rendered image
# reference. Knobs (environment):
#   UPPER_TEST_IMAGE       image tag (upper:test)
#   POD_TEST_PREBUILT=1    use UPPER_TEST_IMAGE as it is, no build
#   POD_TEST_CHART         chart directory (deploy/helm/upper)
#   POD_TEST_HELM_ARGS     extra helm template arguments for every render,
#                          e.g. "--set upperd.maxConnections=900"
#   POD_TEST_PIDS_OVERHEAD pids limit = max_connections + this (64, the chart's sizing.pidsReserve)
#   POD_TEST_PAYLOAD       bytes each load connection sends (65536)
#   POD_TEST_NOFILE        soft:hard open files (1024:524288)
#   POD_TEST_SERVICE_LINKS pod (as enableServiceLinks says, the default) or
#                          off: to try checks 1 and 2 against an upperd that
#                          still parses service links (not for CI)
#   POD_TEST_ONLY          space-separated subset of: thread fork rolling links
# Every container and the network it made are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E_NAME=pod
# shellcheck source=tests/e2e/lib.sh
source tests/e2e/lib.sh

IMAGE=${UPPER_TEST_IMAGE:-upper:test}
CHART=${POD_TEST_CHART:-deploy/helm/upper}
# Release "upper" in namespace "upper": the Services are then upper,
# upper-admin and upper-headless, the names of the issue's crash loop.
RELEASE=upper
NAMESPACE=upper
PREFIX=upper-pod-$$
NET=$PREFIX
read -r -a HELM_EXTRA <<<"${POD_TEST_HELM_ARGS:-}"
PIDS_OVERHEAD=${POD_TEST_PIDS_OVERHEAD:-64}
PAYLOAD=${POD_TEST_PAYLOAD:-65536}
ONLY=${POD_TEST_ONLY:-thread fork rolling links}
WORK=$(mktemp -d)
PY=/usr/bin/python3
NET_UP=0

cleanup() {
  set +e
  local c
  for c in $(docker ps -a --filter "label=upper-pod-test=$PREFIX" --format '{{.Names}}' 2>/dev/null); do
    [[ $c == "$PREFIX"-* ]] && docker rm -f "$c" >/dev/null 2>&1
  done
  ((NET_UP)) && docker network rm "$NET" >/dev/null 2>&1
  rm -rf "$WORK"
  e2e_stop_docker
}
trap cleanup EXIT

# ---- tools -------------------------------------------------------------------
e2e_ensure_docker || e2e_die "no Docker engine"
e2e_ensure_helm || e2e_die "cannot get helm"
if ! "$PY" -c 'import yaml, grpc' 2>/dev/null; then
  e2e_apt_install python3 python3-yaml python3-grpcio || e2e_die "no python3 with yaml and grpcio"
fi
helm() { timeout 120 "$E2E_HELM" "$@"; }

if [[ ${POD_TEST_PREBUILT:-0} == 1 ]]; then
  docker image inspect "$IMAGE" >/dev/null 2>&1 || e2e_die "POD_TEST_PREBUILT=1 but no image $IMAGE"
  e2e_log "using the existing image $IMAGE (POD_TEST_PREBUILT=1, not rebuilt)"
else
  e2e_ensure_base_image debian:bookworm-slim || e2e_die "no debian:bookworm-slim"
  e2e_build_image "$IMAGE" || e2e_die "docker build failed"
  e2e_log "image $IMAGE ready in ${E2E_BUILD_S} s"
fi
e2e_log "image $IMAGE: $(docker run --rm --network none "$IMAGE" --version 2>&1 | head -n1)"

# containerd 2.x starts containers with nofile 1024 soft, 524288 hard. An
# engine without CAP_SYS_RESOURCE cannot raise the hard limit above its own:
# then the soft limit stays 1024 (what matters for the crash-loop and fd
# checks) and the hard one is the engine's, said here.
NOFILE=${POD_TEST_NOFILE:-1024:524288}
if ! docker run --rm --network none --ulimit "nofile=$NOFILE" --entrypoint true "$IMAGE" \
  >/dev/null 2>"$WORK/ulimit.err"; then
  hard=$(docker run --rm --network none --entrypoint sh "$IMAGE" -c 'ulimit -Hn')
  e2e_log "note: this engine refuses nofile=$NOFILE ($(grep -o 'error setting rlimit[^:]*: [^:]*' "$WORK/ulimit.err" | head -n1)); using 1024:$hard, its own hard limit"
  NOFILE=1024:$hard
fi

# ---- the network: pod IPs the host reaches directly ----------------------------
SUBNET=
for third in 7 $(seq 8 40); do
  if docker network create --driver bridge --subnet "10.244.$third.0/24" \
    --label "upper-pod-test=$PREFIX" "$NET" >/dev/null 2>"$WORK/net.err"; then
    SUBNET=10.244.$third
    NET_UP=1
    break
  fi
done
[[ -n $SUBNET ]] || e2e_die "docker network create failed: $(cat "$WORK/net.err")"
e2e_log "network $NET on $SUBNET.0/24"

# ---- renders ---------------------------------------------------------------------
render() {
  local out=$1
  shift
  helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@" "${HELM_EXTRA[@]}" \
    >"$out" 2>"$WORK/template.err" || { cat "$WORK/template.err"; return 1; }
}
e2e_check "helm template $RELEASE $CHART ${HELM_EXTRA[*]}" render "$WORK/thread.yaml"
e2e_check "helm template ... --set upperd.mode=fork" render "$WORK/fork.yaml" --set upperd.mode=fork

# kubelet SCENARIO RENDER LABEL ARGS...: runs the emulator; its PASS/FAIL
# lines become checks here, INFO lines log lines; the whole output goes to
# $E2E_LOG_DIR/pod-LABEL.log. A run that does not reach its END line fails.
kubelet() {
  local scenario=$1 rendered=$2 label=$3 ended=0 line
  shift 3
  local logf=$E2E_LOG_DIR/pod-$label.log
  e2e_log "--- $label: kubelet.py $scenario (log: $logf)"
  while IFS= read -r line; do
    case $line in
      "PASS: "*) e2e_pass "${line#PASS: }" ;;
      "FAIL: "*) e2e_fail "${line#FAIL: }" ;;
      "INFO: "*) e2e_log "${line#INFO: }" ;;
      END) ended=1 ;;
      *) e2e_log "$line" ;;
    esac
  done < <(timeout 400 "$PY" tests/e2e/kubelet.py "$scenario" --render "$rendered" \
    --image "$IMAGE" --network "$NET" --subnet "$SUBNET" --prefix "$PREFIX" \
    --workdir "$WORK" --label "$label" --pids-overhead "$PIDS_OVERHEAD" \
    --payload "$PAYLOAD" --nofile "$NOFILE" "$@" 2>"$logf")
  ((ended)) || { e2e_fail "$label: kubelet.py ended abnormally: $(tail -n 3 "$logf" | tr '\n' ' ')"; }
}

want() { [[ " $ONLY " == *" $1 "* ]]; }
LINKS=(--service-links "${POD_TEST_SERVICE_LINKS:-pod}")
want thread && kubelet pod "$WORK/thread.yaml" thread --host 10 "${LINKS[@]}"
want fork && kubelet pod "$WORK/fork.yaml" fork --host 20 "${LINKS[@]}"
want rolling && kubelet rolling "$WORK/thread.yaml" rolling --host 30 "${LINKS[@]}"
want links && kubelet links "$WORK/thread.yaml" links-on --host 40 --service-links on

e2e_summary
