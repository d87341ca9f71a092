{{/* Names and labels shared by every template. */}}

{{- define "upper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name; "-headless" (9 characters) is appended, so keep it at 54. */}}
{{- define "upper.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "upper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "upper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "upper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object but the pods: they change with each chart or
app version, which is fine on a Deployment or a Service. */}}
{{- define "upper.labels" -}}
helm.sh/chart: {{ include "upper.chart" . }}
{{ include "upper.podLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end }}

{{/* Labels of the pod template: only ones that stay the same from one chart
version to the next, so that a chart bump alone does not roll every pod
(the image tag rolls them anyway when it changes). */}}
{{- define "upper.podLabels" -}}
{{ include "upper.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: upper
{{- end }}

{{- define "upper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "upper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the admin token: the user's or the chart's. */}}
{{- define "upper.adminTokenSecret" -}}
{{- default (printf "%s-admin-token" (include "upper.fullname" .)) .Values.adminToken.existingSecret }}
{{- end }}

{{/* Where the token file is mounted in the container. */}}
{{- define "upper.adminTokenPath" -}}
/etc/upper/admin-token/{{ .Values.adminToken.secretKey }}
{{- end }}

{{/* Pod grace period: longer than preStop plus the drain. */}}
{{- define "upper.gracePeriod" -}}
{{- $min := add .Values.preStop.sleepSeconds .Values.upperd.drainTimeoutSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $min 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) (int $min) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than preStop.sleepSeconds + upperd.drainTimeoutSeconds (%v)" .Values.terminationGracePeriodSeconds $min) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
The admin token in use, resolved once per render and cached on the root
context (every template of the chart sees the same one):
- adminToken.value: that;
- the chart's Secret of an installed release (lookup): its token, so an
  upgrade keeps it;
- otherwise a new random one (a first install; also every `helm template`,
  which cannot look up: give adminToken.value for a reproducible render).
For adminToken.existingSecret it is that Secret's key when lookup can read
it, else "" (helm template, or a Secret made after the chart).
*/}}
{{- define "upper.adminToken" -}}
{{- if not (hasKey $ "upperAdminTokenCache") }}
{{- $token := "" }}
{{- $key := .Values.adminToken.secretKey }}
{{- if .Values.adminToken.existingSecret }}
{{- $s := lookup "v1" "Secret" .Release.Namespace .Values.adminToken.existingSecret }}
{{- if and $s (index ($s.data | default dict) $key) }}
{{- $token = index $s.data $key | b64dec }}
{{- end }}
{{- else if .Values.adminToken.value }}
{{- $token = .Values.adminToken.value }}
{{- else }}
{{- $s := lookup "v1" "Secret" .Release.Namespace (include "upper.adminTokenSecret" .) }}
{{- if and $s (index ($s.data | default dict) $key) }}
{{- $token = index $s.data $key | b64dec }}
{{- else }}
{{- $token = randAlphaNum 40 }}
{{- end }}
{{- end }}
{{- $_ := set $ "upperAdminTokenCache" $token }}
{{- end }}
{{- get $ "upperAdminTokenCache" }}
{{- end }}

{{/*
What the pods' checksum/admin-token annotation hashes: the token in use, so
the pods roll exactly when it changes. For an existingSecret that lookup
cannot read, the Secret's name and key (the pods roll when those change;
after rotating the Secret's content, restart them yourself).
*/}}
{{- define "upper.adminTokenChecksum" -}}
{{- $token := include "upper.adminToken" . }}
{{- if $token }}
{{- /* Not the bare token's SHA-256: anyone who may read pods sees the
annotation, and a short token would fall to an offline guess. scrypt
(derivePassword) makes every guess expensive and stays deterministic. */}}
{{- derivePassword 1 "long" $token "upper-admin-token" (printf "%s/%s" .Release.Namespace (include "upper.fullname" .)) | sha256sum }}
{{- else }}
{{- printf "secret:%s/%s" .Values.adminToken.existingSecret .Values.adminToken.secretKey | sha256sum }}
{{- end }}
{{- end }}

{{/*
Bytes of a Kubernetes memory quantity: plain bytes, a decimal exponent
(1e9), or a number with one of Ki Mi Gi Ti Pi Ei (powers of 1024) or
k M G T P E (powers of 1000), as the API server reads them; fails on
anything else (a capital K, say, which Kubernetes refuses too). Prints an
integer.
*/}}
{{- define "upper.bytes" -}}
{{- $q := toString . }}
{{- $m := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $m $q }}
{{- $units := dict "" 1 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 }}
{{- if regexMatch "^[eE][0-9]+$" $unit }}
{{- $f := 1.0 }}
{{- range until (trimPrefix "e" (lower $unit) | int) }}{{ $f = mulf $f 10 }}{{ end }}
{{- $_ := set $units $unit $f }}
{{- end }}
{{- if or (not $m) (not (hasKey $units $unit)) }}
{{- fail (printf "cannot read the memory quantity %q: use plain bytes, an exponent (1e9) or Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E" $q) }}
{{- end }}
{{- mulf (float64 $m) (index $units $unit) | floor | int64 }}
{{- end }}

{{/*
Ready workers a pod may hold beside its connections, "<thread> <fork>",
as upperd's start-up check counts them: spare threads are threads that
served a connection, so at most min(spareMax, maxConnections); idle
children none without a pool (spareMax 0 or childMaxConnections 1), else
max(spareMin, min(spareMax, maxConnections)), since spareMin are forked
ahead of any connection (ForkPoolSettings::MaxIdleChildren).
*/}}
{{- define "upper.spares" -}}
{{- $w := .Values.upperd.workers }}
{{- $max := int64 .Values.upperd.maxConnections }}
{{- $pooled := and (gt (int64 $w.fork.spareMax) 0) (ne (int64 $w.fork.childMaxConnections) 1) }}
{{- $fork := ternary (max (int64 $w.fork.spareMin) (min (int64 $w.fork.spareMax) $max)) 0 $pooled }}
{{- printf "%d %d" (min (int64 $w.thread.spareMax) $max) $fork }}
{{- end }}

{{/*
Memory a pod needs for upperd.maxConnections (docs/deploy.md, "Sizing"):
  base + maxConnections x perConnection(mode) + busyConnections x perBusyConnection
  + the spares of both pools (upper.spares) x perSpare(pool)
mode is fork unless sizing.check is "configured" (then upperd.mode): the
admin API switches new connections to fork at runtime, so a pod sized for
thread mode can be OOM-killed after one `upperctl mode fork`.
Fails the render when resources.limits.memory is set and smaller; no check
with sizing.check "off" or without a memory limit. Prints nothing.
*/}}
{{- define "upper.memoryCheck" -}}
{{- $sz := .Values.sizing }}
{{- $limit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if and $limit (ne $sz.check "off") }}
{{- $mode := ternary .Values.upperd.mode "fork" (eq $sz.check "configured") }}
{{- $per := include "upper.bytes" (index $sz.perConnectionMemory $mode) | int64 }}
{{- $base := include "upper.bytes" $sz.baseMemory | int64 }}
{{- $busy := include "upper.bytes" $sz.perBusyConnectionMemory | int64 }}
{{- $spares := splitList " " (include "upper.spares" .) }}
{{- $threadSpares := index $spares 0 | int64 }}
{{- $forkSpares := index $spares 1 | int64 }}
{{- $spareNeed := add (mul $threadSpares (include "upper.bytes" $sz.perSpareMemory.thread | int64)) (mul $forkSpares (include "upper.bytes" $sz.perSpareMemory.fork | int64)) }}
{{- $need := add $base (mul .Values.upperd.maxConnections $per) (mul $sz.busyConnections $busy) $spareNeed }}
{{- $have := include "upper.bytes" $limit | int64 }}
{{- if lt $have $need }}
{{- $spareText := "" }}
{{- if gt $spareNeed 0 }}
{{- $spareText = printf " + %d thread spares x sizing.perSpareMemory.thread %s + %d fork spares x sizing.perSpareMemory.fork %s" $threadSpares $sz.perSpareMemory.thread $forkSpares $sz.perSpareMemory.fork }}
{{- end }}
{{- fail (printf "resources.limits.memory %s is below what upperd.maxConnections %d needs in %s mode: sizing.baseMemory %s + %d x sizing.perConnectionMemory.%s %s + sizing.busyConnections %d x sizing.perBusyConnectionMemory %s%s = %dMi; raise the limit to at least %dMi or lower upperd.maxConnections%s (sizing.check: configured budgets upperd.mode instead of fork, off skips this check)" (toString $limit) (int64 .Values.upperd.maxConnections) $mode $sz.baseMemory (int64 .Values.upperd.maxConnections) $mode (index $sz.perConnectionMemory $mode) (int64 $sz.busyConnections) $sz.perBusyConnectionMemory $spareText (div (add $need 1048575) 1048576) (div (add $need 1048575) 1048576) (ternary " or upperd.workers.*.spareMax" "" (gt $spareNeed 0))) }}
{{- end }}
{{- end }}
{{- end }}

{{/* preStop handler: the kubelet's own sleep action (no binary needed, Kubernetes >= 1.30 where PodLifecycleSleepAction is on by default) or `sleep` in the image. */}}
{{- define "upper.preStop" -}}
{{- $mode := .Values.preStop.handler }}
{{- if eq $mode "auto" }}
{{- $mode = ternary "sleepAction" "exec" (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (eq $mode "sleepAction") (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "preStop.handler sleepAction needs Kubernetes 1.30 or later (PodLifecycleSleepAction is off by default before), this cluster is %s: use preStop.handler auto or exec" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if eq $mode "sleepAction" }}
sleep:
  seconds: {{ .Values.preStop.sleepSeconds }}
{{- else }}
exec:
  command: ["sleep", "{{ .Values.preStop.sleepSeconds }}"]
{{- end }}
{{- end }}

{{/* The PDB is on (podDisruptionBudget.enabled) whenever more than one pod runs. */}}
{{- define "upper.pdbEnabled" -}}
{{- if and .Values.podDisruptionBudget.enabled (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}true{{ end }}
{{- end }}

{{/*
Combinations the API server or the cluster would refuse later, refused at
render time with the value's name. Prints nothing.
*/}}
{{- define "upper.valuesCheck" -}}
{{- range $pool := list "thread" "fork" }}
{{- $w := get $.Values.upperd.workers $pool }}
{{- if gt (int64 $w.spareMin) (int64 $w.spareMax) }}
{{- fail (printf "upperd.workers.%s.spareMin %d is above upperd.workers.%s.spareMax %d: upperd would refuse to start (--%s_spare_min is 0..--%s_spare_max)" $pool (int64 $w.spareMin) $pool (int64 $w.spareMax) $pool $pool) }}
{{- end }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled .Values.podMonitor.enabled }}
{{- fail "serviceMonitor.enabled and podMonitor.enabled are both on: every pod would be scraped twice (two jobs), and the per-pod sum the connections autoscaler reads would double; choose one" }}
{{- end }}
{{- $req := dig "requests" "memory" "" (.Values.resources | default dict) }}
{{- $lim := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if and $req $lim }}
{{- if gt (include "upper.bytes" $req | int64) (include "upper.bytes" $lim | int64) }}
{{- fail (printf "resources.requests.memory %s is above resources.limits.memory %s: Kubernetes refuses a request over its limit" (toString $req) (toString $lim)) }}
{{- end }}
{{- end }}
{{- end }}
