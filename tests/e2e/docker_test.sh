#!/usr/bin/env bash
# End-to-end test of the container image and compose.yaml, on a real Docker
# engine. Run from anywhere: `bash tests/e2e/docker_test.sh`.
#
# 1. Makes sure Docker works: Debian's docker.io and docker-compose, a dockerd
#    started here when none answers (no iptables, no bridge), and the base
#    image debian:bookworm-slim made with debootstrap (nothing can be pulled).
# 2. Builds docker/Dockerfile and checks the image's metadata (non-root user,
#    ports, healthcheck, exec-form entrypoint, admin bound to 0.0.0.0).
# 3. Runs it with --network host on free loopback ports, locked down as the
#    Helm chart locks the pod, in fork mode, and proves the data port
#    upper-cases (from the host and with upper-client inside), the
#    process runs as non-root and is PID 1, upperctl and /metrics answer
#    (skipped with the reason while the image has no upperctl or metrics),
#    and `docker stop` drains: the listener closes, a live connection keeps
#    working, upperd exits 0 as soon as it ends.
# 4. Brings up compose.yaml's upperd service with docker-compose (its own
#    network, ports published on free loopback ports) and checks it the same
#    way, then that `docker-compose stop` cuts an idle connection after the
#    drain timeout and still exits 0.
# Every container and compose project it made is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
E2E_NAME=docker
# shellcheck source=tests/e2e/lib.sh
source tests/e2e/lib.sh

IMAGE=${UPPER_TEST_IMAGE:-upper:test}
COMPOSE_IMAGE=upper:compose-test
CONTAINER=upper-e2e-$$
PROJECT=upper-e2e-$$
OVERRIDE=$(mktemp --suffix=.yaml)
DRAIN_TIMEOUT_S=20

cleanup() {
  set +e
  docker rm -f "$CONTAINER" >/dev/null 2>&1
  if [[ -s $OVERRIDE ]] && command -v docker-compose >/dev/null; then
    timeout 120 docker-compose -p "$PROJECT" -f compose.yaml -f "$OVERRIDE" \
      down --volumes --remove-orphans >/dev/null 2>&1
  fi
  rm -f "$OVERRIDE"
  e2e_stop_docker
}
trap cleanup EXIT

# ---- 1. Docker itself ------------------------------------------------------
e2e_apt_install ca-certificates iproute2 || e2e_die "cannot install iproute2"
e2e_ensure_docker || e2e_die "no Docker engine"
command -v docker-compose >/dev/null || e2e_apt_install docker-compose ||
  e2e_die "cannot install docker-compose"
e2e_ensure_base_image debian:bookworm-slim || e2e_die "no debian:bookworm-slim"
e2e_log "docker $(docker version -f '{{.Server.Version}}'), $(docker-compose version --short)"

# ---- 2. The image ----------------------------------------------------------
# The same revision goes to the compose build in step 4 (compose.yaml passes
# $UPPER_REVISION on, e2e_build_image exports it), so that build reuses every
# layer of this one.
e2e_build_image "$IMAGE" || e2e_die "docker build failed"
build_s=$E2E_BUILD_S
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
e2e_pass "image $IMAGE built in ${build_s} s; size $size bytes ($((size / 1024 / 1024)) MiB)"

inspect() { docker image inspect -f "$1" "$IMAGE"; }
user=$(inspect '{{.Config.User}}')
e2e_check "image user is numeric and not root ($user)" \
  eval '[[ $user =~ ^[0-9]+(:[0-9]+)?$ && ${user%%:*} != 0 ]]'
ports=$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')
e2e_check "EXPOSE 9999 50051 9464 ($ports)" \
  eval '[[ $ports == *9999/tcp* && $ports == *50051/tcp* && $ports == *9464/tcp* ]]'
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
e2e_check "exec-form entrypoint runs upperd directly ($entrypoint)" \
  eval '[[ $entrypoint == "[\"/usr/local/bin/upperd\"]" ]]'
health=$(inspect '{{json .Config.Healthcheck.Test}}')
e2e_check "HEALTHCHECK uses upperctl health" eval '[[ $health == *"upperctl"*"health"* ]]'
env=$(inspect '{{json .Config.Env}}')
e2e_check "admin and metrics bind 0.0.0.0 in the container" \
  eval '[[ $env == *UPPER_ADMIN_BIND=0.0.0.0* && $env == *UPPER_METRICS_BIND=0.0.0.0* ]]'
in_image() {
  docker run --rm --network none --entrypoint /bin/sh "$IMAGE" -c "$1" \
    >>"$E2E_LOG_DIR/in-image.log" 2>&1
}
e2e_check "upperd, upperctl and upper-client are in the image" \
  in_image 'command -v upperd && command -v upperctl && command -v upper-client'
e2e_check "upperd runs in the runtime image (all libraries present)" \
  in_image 'upperd --version'

# ---- 3. docker run -----------------------------------------------------------
data=$(e2e_free_port)
admin=$(e2e_free_port "$data")
metrics=$(e2e_free_port "$data" "$admin")
e2e_log "docker run: data $data, admin $admin, metrics $metrics (loopback)"
# Flags for what today's upperd knows; admin and metrics settings through
# the environment, which upperd ignores until it has them. Restricted as the
# Helm chart's securityContext restricts the pod (read-only root, no
# capabilities, no privilege escalation), in fork mode, so the fork server
# and its children are proven to work under it.
docker run -d --name "$CONTAINER" --network host \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  -e UPPER_ADMIN_PORT="$admin" -e UPPER_ADMIN_BIND=127.0.0.1 \
  -e UPPER_METRICS_PORT="$metrics" -e UPPER_METRICS_BIND=127.0.0.1 \
  "$IMAGE" --bind=127.0.0.1 --data_port="$data" --mode=fork \
  --drain_timeout="${DRAIN_TIMEOUT_S}s" >/dev/null

if ! e2e_wait 30 e2e_port_answers 127.0.0.1 "$data"; then
  docker logs "$CONTAINER" 2>&1 | tail -20
  e2e_die "data port $data never answered"
fi
e2e_check "data port upper-cases from the host (fork mode, read-only root, no capabilities)" \
  e2e_upper_roundtrip 127.0.0.1 "$data" "hello, docker! 123 {~}"
reply=$(docker exec "$CONTAINER" sh -c \
  "printf 'abc xyz\\n' | upper-client --addr 127.0.0.1:$data")
e2e_check "upper-client inside the container gets '$reply'" \
  eval '[[ $reply == "ABC XYZ" ]]'
uid=$(docker exec "$CONTAINER" id -u)
e2e_check "process runs as uid $uid, not root" eval '[[ $uid != 0 ]]'
pid1=$(docker exec "$CONTAINER" cat /proc/1/comm)
e2e_check "upperd is PID 1 (gets SIGTERM directly): $pid1" eval '[[ $pid1 == upperd ]]'
# Fork mode spawns the small static fork server next to upperd; without it
# upperd falls back to itself and every fork costs several times more.
e2e_check "the image ships upperd-fork-server next to upperd" \
  docker exec "$CONTAINER" test -x /usr/local/bin/upperd-fork-server

ctl() { docker exec "$CONTAINER" upperctl --addr "127.0.0.1:$admin" "$@"; }
if e2e_wait 20 eval 'ctl health >/dev/null 2>&1'; then
  e2e_pass "upperctl health exits 0 inside the container"
else
  e2e_fail "upperctl health never succeeded"
fi
e2e_check "upperctl status answers" eval 'ctl status >"$E2E_LOG_DIR/status.txt"'
e2e_check "docker's HEALTHCHECK reports healthy" e2e_wait 60 eval \
  '[[ $(docker inspect -f "{{.State.Health.Status}}" "$CONTAINER") == healthy ]]'

# metrics_ok PORT: GET /metrics on 127.0.0.1:PORT answers 200 with upper_
# metrics in it.
metrics_ok() {
  local fd body
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
  body=$(timeout 10 cat <&"$fd")
  exec {fd}>&-
  [[ $body == "HTTP/1."?" 200"*"upper_"* ]]
}
e2e_check "/metrics serves upper_ metrics" e2e_wait 15 metrics_ok "$metrics"

# Drain on docker stop: hold one connection open, stop, and check that the
# listener closes, the live connection still works, and upperd exits 0 as
# soon as that connection ends (well before the drain timeout).
exec {held}<>"/dev/tcp/127.0.0.1/$data"
printf 'before ' >&"$held"
IFS= read -r -N 7 -t 10 got <&"$held"
e2e_check "held connection works before stop ('$got')" eval '[[ $got == "BEFORE " ]]'
t0=$SECONDS
# (without the held fd: a copy in the background job would keep it open)
docker stop -t $((DRAIN_TIMEOUT_S + 30)) "$CONTAINER" >/dev/null {held}>&- &
stop_pid=$!
e2e_check "SIGTERM reaches upperd: it logs draining" \
  e2e_wait 15 eval 'docker logs "$CONTAINER" 2>&1 | grep draining >/dev/null'
e2e_check "draining upperd accepts no new connection" \
  e2e_wait 5 eval '! e2e_port_answers 127.0.0.1 "$data"'
printf 'during drain' >&"$held"
IFS= read -r -N 12 -t 10 got <&"$held" || true
e2e_check "live connection keeps working while draining ('$got')" \
  eval '[[ $got == "DURING DRAIN" ]]'
exec {held}>&-
wait "$stop_pid"
stop_s=$((SECONDS - t0))
code=$(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER")
e2e_check "docker stop: upperd exited $code after ${stop_s} s (< drain timeout ${DRAIN_TIMEOUT_S} s)" \
  eval '[[ $code == 0 && $stop_s -lt $DRAIN_TIMEOUT_S ]]'
e2e_check "upperd logged stopped" eval 'docker logs "$CONTAINER" 2>&1 | grep stopped >/dev/null'
docker logs "$CONTAINER" >"$E2E_LOG_DIR/run.log" 2>&1
docker rm -f "$CONTAINER" >/dev/null

# ---- 4. compose.yaml ---------------------------------------------------------
e2e_check "docker-compose $(docker-compose version --short) accepts compose.yaml" \
  eval 'docker-compose -f compose.yaml config -q'
# The engine here has no default bridge, but compose makes its own network
# and publishes ports through docker-proxy, which needs no iptables: so the
# real network and port mappings of compose.yaml are used, on free loopback
# ports. The override only builds with host networking (apt-get in the
# build) and shortens the drain timeout for the idle-connection case.
cdata=$(e2e_free_port)
cadmin=$(e2e_free_port "$cdata")
cmetrics=$(e2e_free_port "$cdata" "$cadmin")
export UPPER_DATA_PUBLISH=127.0.0.1:$cdata
export UPPER_ADMIN_PUBLISH=127.0.0.1:$cadmin
export UPPER_METRICS_PUBLISH=127.0.0.1:$cmetrics
cat >"$OVERRIDE" <<EOF
services:
  upperd:
    image: $COMPOSE_IMAGE
    build:
      network: host
    environment:
      UPPER_DRAIN_TIMEOUT: 2s
EOF
dc() { timeout 600 docker-compose -p "$PROJECT" -f compose.yaml -f "$OVERRIDE" "$@"; }
e2e_log "compose: data $cdata, admin $cadmin, metrics $cmetrics on 127.0.0.1"
e2e_log "docker-compose build upperd (cached layers from step 2)"
dc build upperd >"$E2E_LOG_DIR/compose-build.log" 2>&1 ||
  { tail -30 "$E2E_LOG_DIR/compose-build.log"; e2e_die "docker-compose build failed"; }
dc up -d --no-build upperd >"$E2E_LOG_DIR/compose-up.log" 2>&1 ||
  { cat "$E2E_LOG_DIR/compose-up.log"; e2e_die "docker-compose up failed"; }
cid=$(dc ps -q upperd)
# docker-proxy accepts on the published port before upperd listens: wait for
# a real answer.
if ! e2e_wait 30 e2e_upper_roundtrip 127.0.0.1 "$cdata" "compose says hi" 2>/dev/null; then
  dc logs upperd | tail -20
  e2e_fail "compose: data port $cdata never upper-cased"
else
  e2e_pass "compose: data port upper-cases through the published port"
fi
cuid=$(dc exec -T upperd id -u)
e2e_check "compose: runs as uid $cuid, not root" eval '[[ $cuid != 0 ]]'
e2e_check "compose: docker-compose exec upperd upperctl status" \
  e2e_wait 20 eval 'dc exec -T upperd upperctl status >/dev/null 2>&1'
cstatus=$(dc exec -T upperd upperctl status 2>&1 || true)
e2e_check "compose: upperd reports the revision compose.yaml passed to the build ($UPPER_REVISION)" \
  eval '[[ $cstatus == *"($UPPER_REVISION)"* ]]'
e2e_check "compose: upperctl on the host reaches the published admin port" \
  eval 'docker run --rm --network host --entrypoint upperctl "$IMAGE" --addr "127.0.0.1:$cadmin" health >/dev/null 2>&1'
e2e_check "compose: /metrics through the published port" \
  e2e_wait 15 metrics_ok "$cmetrics"
# An idle connection during the drain: cut after the 2 s drain timeout, and
# upperd still exits 0.
exec {held}<>"/dev/tcp/127.0.0.1/$cdata"
t0=$SECONDS
dc stop -t 30 upperd >/dev/null 2>&1
stop_s=$((SECONDS - t0))
rest=$(timeout 5 cat <&"$held" || echo "no EOF")
exec {held}>&-
ccode=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
e2e_check "compose: stop cut the idle connection after the drain timeout and exited $ccode (${stop_s} s)" \
  eval '[[ $ccode == 0 && -z $rest && $stop_s -ge 2 && $stop_s -lt 30 ]]'
dc logs --no-color upperd >"$E2E_LOG_DIR/compose-run.log" 2>&1 || true
if grep -q 'drain_timeout active=' "$E2E_LOG_DIR/compose-run.log"; then
  e2e_pass "compose: upperd logged drain_timeout"
else
  e2e_fail "compose: upperd did not log drain_timeout"
  tail -20 "$E2E_LOG_DIR/compose-run.log"
fi
dc down --volumes --remove-orphans >/dev/null 2>&1
e2e_check "compose: down removed the upperd container" \
  eval '[[ -z $(docker ps -aq --filter "id=$cid") ]]'

base_size=$(docker image inspect -f '{{.Size}}' debian:bookworm-slim)
e2e_log "image $IMAGE: $size bytes ($((size / 1024 / 1024)) MiB; base debian:bookworm-slim here $((base_size / 1024 / 1024)) MiB), build ${build_s} s"
e2e_summary
