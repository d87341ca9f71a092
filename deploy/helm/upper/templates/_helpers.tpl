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

{{- define "upper.labels" -}}
helm.sh/chart: {{ include "upper.chart" . }}
{{ include "upper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
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
{{- $min := add .Values.preStopSleepSeconds .Values.upperd.drainTimeoutSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $min 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) (int $min) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than preStopSleepSeconds + upperd.drainTimeoutSeconds (%v)" .Values.terminationGracePeriodSeconds $min) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}
