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
{{- $token | sha256sum }}
{{- else }}
{{- printf "secret:%s/%s" .Values.adminToken.existingSecret .Values.adminToken.secretKey | sha256sum }}
{{- end }}
{{- end }}

{{/*
Bytes of a Kubernetes memory quantity: plain bytes, or a number with one
of Ki Mi Gi Ti (powers of 1024) or k K M G T (powers of 1000); fails on
anything else. Prints an integer.
*/}}
{{- define "upper.bytes" -}}
{{- $q := toString . }}
{{- $m := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $m $q }}
{{- $units := dict "" 1 "k" 1000 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if or (not $m) (not (hasKey $units $unit)) }}
{{- fail (printf "cannot read the memory quantity %q: use plain bytes or Ki, Mi, Gi, Ti, k, M, G, T" $q) }}
{{- end }}
{{- mulf (float64 $m) (index $units $unit) | floor | int64 }}
{{- end }}

{{/*
Memory a pod needs for upperd.maxConnections (docs/deploy.md, "Sizing"):
  base + maxConnections x perConnection(mode) + busyConnections x perBusyConnection
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
{{- $need := add $base (mul .Values.upperd.maxConnections $per) (mul $sz.busyConnections $busy) }}
{{- $have := include "upper.bytes" $limit | int64 }}
{{- if lt $have $need }}
{{- fail (printf "resources.limits.memory %s is below what upperd.maxConnections %d needs in %s mode: sizing.baseMemory %s + %d x sizing.perConnectionMemory.%s %s + sizing.busyConnections %d x sizing.perBusyConnectionMemory %s = %dMi; raise the limit to at least %dMi or lower upperd.maxConnections (sizing.check: configured budgets upperd.mode instead of fork, off skips this check)" (toString $limit) (int64 .Values.upperd.maxConnections) $mode $sz.baseMemory (int64 .Values.upperd.maxConnections) $mode (index $sz.perConnectionMemory $mode) (int64 $sz.busyConnections) $sz.perBusyConnectionMemory (div (add $need 1048575) 1048576) (div (add $need 1048575) 1048576)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* preStop handler: the kubelet's own sleep action (no binary needed, Kubernetes >= 1.30 where PodLifecycleSleepAction is on by default) or `sleep` in the image. */}}
{{- define "upper.preStop" -}}
{{- $mode := .Values.preStop.handler }}
{{- if eq $mode "auto" }}
{{- $mode = ternary "sleepAction" "exec" (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}
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
