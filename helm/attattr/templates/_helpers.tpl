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

{{/* "true" when the job store is PostgreSQL (store.postgresql.url/existingSecret, or the in-cluster
   postgresql), else "" (the SQLite file). */}}
{{- define "attattr.postgresStore" -}}
{{- if or .Values.store.postgresql.url .Values.store.postgresql.existingSecret .Values.postgresql.enabled }}true{{ end }}
{{- end }}

{{/* The --store argument for PostgreSQL ("" when the URI comes from the Secret existingSecret). */}}
{{- define "attattr.postgresUrl" -}}
{{- if .Values.postgresql.enabled }}
{{- printf "postgresql://%s@%s:5432/%s?sslmode=disable" .Values.postgresql.auth.username (include "attattr.postgresql.fullname" .) .Values.postgresql.auth.database }}
{{- else }}{{ .Values.store.postgresql.url }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the PostgreSQL password for --store-password-file ("" = none). */}}
{{- define "attattr.storePasswordSecret" -}}
{{- if .Values.postgresql.enabled }}{{ include "attattr.postgresql.secret" . }}
{{- else }}{{ .Values.store.postgresql.passwordSecret }}
{{- end }}
{{- end }}
{{- define "attattr.storePasswordKey" -}}
{{- if .Values.postgresql.enabled }}{{ .Values.postgresql.auth.secretKey }}
{{- else }}{{ .Values.store.postgresql.passwordKey }}
{{- end }}
{{- end }}

{{/* The in-cluster PostgreSQL (postgresql.enabled): names and labels. Its selector labels differ
   from the server's (another app.kubernetes.io/name), so the server's Service, PodDisruptionBudget
   and NetworkPolicy never select it. */}}
{{- define "attattr.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "attattr.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{- define "attattr.postgresql.secret" -}}
{{- default (include "attattr.postgresql.fullname" .) .Values.postgresql.auth.existingSecret }}
{{- end }}

{{- define "attattr.postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "attattr.name" . }}-postgresql
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "attattr.postgresql.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "attattr.postgresql.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.postgresql.image.tag | quote }}
app.kubernetes.io/component: database
app.kubernetes.io/part-of: {{ include "attattr.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
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
  path: {{ .path | default "/healthz" }}
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
{{- if and (eq .Values.server.weights "bf16") (eq .Values.server.defaultPrecision "fp32") }}
{{- fail "server.weights is bf16 but server.defaultPrecision is fp32: bf16-stored weights multiply in bf16 and the server refuses fp32 requests (set server.defaultPrecision=bf16)" }}
{{- end }}
{{- if and (hasPrefix "cuda" .Values.server.device) (not .Values.gpu.enabled) }}
{{- fail "server.device is cuda but gpu.enabled is false: the pod would get no GPU (set gpu.enabled=true)" }}
{{- end }}
{{- $postgres := include "attattr.postgresStore" . }}
{{- $pg := .Values.store.postgresql }}
{{- if and (not $postgres) (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "replicaCount > 1 and autoscaling need the shared PostgreSQL job store (store.postgresql.url, store.postgresql.existingSecret or postgresql.enabled): with SQLite each replica keeps its own job queue, so its jobs are invisible to the other replicas and lost when it is scaled down" }}
{{- end }}
{{- if and .Values.store.persistence.enabled $postgres }}
{{- fail "store.persistence.enabled is the SQLite store's volume: with PostgreSQL (store.postgresql, postgresql.enabled) nothing is stored on the pod; turn persistence off" }}
{{- end }}
{{- if and $pg.passwordSecret (not $postgres) }}
{{- fail "store.postgresql.passwordSecret is the PostgreSQL store's password, but no PostgreSQL store is set (store.postgresql.url or existingSecret): the server refuses --store-password-file for its SQLite file" }}
{{- end }}
{{- if and (hasPrefix "cuda:" .Values.server.device) .Values.gpu.enabled }}
{{- $index := int (trimPrefix "cuda:" .Values.server.device) }}
{{- if ge $index (int .Values.gpu.count) }}
{{- fail (printf "server.device is %s but the pod gets gpu.count=%d GPU(s), numbered from 0" .Values.server.device (int .Values.gpu.count)) }}
{{- end }}
{{- end }}
{{- if and $pg.url $pg.existingSecret }}
{{- fail "store.postgresql.url and store.postgresql.existingSecret are exclusive: give one PostgreSQL URI" }}
{{- end }}
{{- if and .Values.postgresql.enabled (or $pg.url $pg.existingSecret $pg.passwordSecret) }}
{{- fail "postgresql.enabled points the server at the in-cluster PostgreSQL: leave store.postgresql.url, existingSecret and passwordSecret empty" }}
{{- end }}
{{- if $pg.url }}
{{- if not (regexMatch "^postgres(ql)?://" $pg.url) }}
{{- fail (printf "store.postgresql.url %q is not a PostgreSQL URI (postgresql://USER@HOST:PORT/DB?PARAMS)" $pg.url) }}
{{- end }}
{{- if or (regexMatch "^postgres(ql)?://[^/?#@]*:[^/?#@]*@" $pg.url) (regexMatch "[?&]password=" $pg.url) }}
{{- fail "store.postgresql.url carries a password: the server refuses one on its command line (every reader of the pod spec and `ps` would see it); put the password into a Secret (store.postgresql.passwordSecret) or the whole URI into one (store.postgresql.existingSecret)" }}
{{- end }}
{{- end }}
{{- if lt (int .Values.server.leaseSeconds) (mul 2 (int .Values.server.heartbeatSeconds)) }}
{{- fail (printf "server.leaseSeconds (%d) must be at least 2 x server.heartbeatSeconds (%d): a lease would lapse between two renewals" (int .Values.server.leaseSeconds) (int .Values.server.heartbeatSeconds)) }}
{{- end }}
{{- if .Values.postgresql.enabled }}
{{- $replicas := ternary (int .Values.autoscaling.maxReplicas) (int .Values.replicaCount) .Values.autoscaling.enabled }}
{{- /* Each replica: store.postgresql.connections plus one LISTEN connection; a rollout adds a
       replica (maxSurge 1); PostgreSQL reserves 3 for superusers. */}}
{{- $needed := add (mul (add $replicas 1) (add (int $pg.connections) 1)) 3 }}
{{- if gt $needed (int .Values.postgresql.maxConnections) }}
{{- fail (printf "postgresql.maxConnections (%d) is too small: %d replicas (+1 during a rollout) x (store.postgresql.connections %d + 1 for LISTEN) + 3 reserved need %d" (int .Values.postgresql.maxConnections) $replicas (int $pg.connections) $needed) }}
{{- end }}
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
{{- if and .Values.tls.clientAuth (not .Values.tls.clientCASecret) (not .Values.tls.trustServerIssuerForClients) }}
{{- fail "tls.clientAuth needs tls.clientCASecret, a CA that issues certificates to attattr's callers only: whoever can get a certificate from the client CA can name themselves any principal, administrators included. To trust the issuer of the server's certificate instead, set tls.trustServerIssuerForClients=true" }}
{{- end }}
{{- if and .Values.tls.trustServerIssuerForClients .Values.tls.clientCASecret }}
{{- fail "tls.trustServerIssuerForClients and tls.clientCASecret are both set: the client CA is one or the other" }}
{{- end }}
{{- end }}
