{{/* Names and labels. */}}
{{- define "attattr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "attattr.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "attattr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "attattr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "attattr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "attattr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The --device the server runs with: gpu.enabled turns "cpu" into "cuda". */}}
{{- define "attattr.device" -}}
{{- if and .Values.gpu.enabled (eq .Values.server.device "cpu") }}cuda{{ else }}{{ .Values.server.device }}{{ end }}
{{- end }}

{{/* Store file path inside the container. */}}
{{- define "attattr.storePath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.store.mountPath) .Values.store.fileName }}
{{- end }}

{{/* The store's claim name when persistence is on. */}}
{{- define "attattr.storeClaim" -}}
{{- default (printf "%s-store" (include "attattr.fullname" .)) .Values.store.persistence.existingClaim }}
{{- end }}

{{/* The Secret with tls.crt and tls.key (the Certificate's secretName with cert-manager). */}}
{{- define "attattr.tlsSecret" -}}
{{- default (printf "%s-tls" (include "attattr.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{/* The Secret whose ca.crt verifies client certificates (mutual TLS). */}}
{{- define "attattr.clientCASecret" -}}
{{- default (include "attattr.tlsSecret" .) .Values.tls.clientCASecret }}
{{- end }}

{{/* The Secret holding the token file: auth.tokensSecret, or the chart's own for auth.tokens; "" = none. */}}
{{- define "attattr.tokensSecret" -}}
{{- if .Values.auth.tokensSecret }}{{ .Values.auth.tokensSecret }}
{{- else if .Values.auth.tokens }}{{ printf "%s-tokens" (include "attattr.fullname" .) }}
{{- end }}
{{- end }}

{{/* The probe handler with TLS: GET /healthz over HTTPS on the metrics port. */}}
{{- define "attattr.httpsProbe" -}}
httpGet:
  path: /healthz
  port: metrics
  scheme: HTTPS
{{- end }}

{{/* The names the Service answers to inside the cluster (the Certificate's default dnsNames). */}}
{{- define "attattr.serviceDNSNames" -}}
{{- $svc := include "attattr.fullname" . }}
{{- $ns := .Release.Namespace }}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.{{ .Values.tls.certManager.clusterDomain }}
{{- end }}

{{/* Value checks the JSON schema cannot express; each fails `helm template/install` with a reason. */}}
{{- define "attattr.validate" -}}
{{- $grace := int .Values.server.graceSeconds }}
{{- if and (not (kindIs "invalid" .Values.terminationGracePeriodSeconds)) (le (int .Values.terminationGracePeriodSeconds) $grace) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed server.graceSeconds (%d): the pod would be killed while the server drains" (int .Values.terminationGracePeriodSeconds) $grace) }}
{{- end }}
{{- if and (hasPrefix "cuda" .Values.server.device) (not .Values.gpu.enabled) }}
{{- fail "server.device is cuda but gpu.enabled is false: the pod would get no GPU (set gpu.enabled=true)" }}
{{- end }}
{{- if and .Values.store.persistence.enabled (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "store.persistence.enabled needs replicaCount 1 and autoscaling off: one SQLite store file cannot be shared by replicas" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if eq (int .Values.service.grpcPort) (int .Values.service.metricsPort) }}
{{- fail "service.grpcPort and service.metricsPort must differ" }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.reports.port)) (has (int .Values.reports.port) (list (int .Values.service.grpcPort) (int .Values.service.metricsPort))) }}
{{- fail "reports.port must differ from service.grpcPort and service.metricsPort (leave it null to serve reports on the metrics port)" }}
{{- end }}
{{- $digests := list }}
{{- range .Values.auth.tokens }}
{{- if has .sha256 $digests }}
{{- fail (printf "auth.tokens: the sha256 %s is listed twice (the server refuses such a token file; one token has one principal)" .sha256) }}
{{- end }}
{{- $digests = append $digests .sha256 }}
{{- end }}
{{- if and .Values.tls.clientCASecret (not .Values.tls.clientAuth) }}
{{- fail "tls.clientCASecret is set but tls.clientAuth is false: no client certificate would be verified" }}
{{- end }}
{{- end }}
