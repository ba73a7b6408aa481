{{/*
The chart name, or nameOverride.
*/}}
{{- define "stepbox-worker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: fullnameOverride, else RELEASE-NAME (RELEASE when it already
holds NAME), at most 63 characters (DNS label).
*/}}
{{- define "stepbox-worker.fullname" -}}
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

{{/*
helm.sh/chart: NAME-VERSION.
*/}}
{{- define "stepbox-worker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels of every object.
*/}}
{{- define "stepbox-worker.labels" -}}
helm.sh/chart: {{ include "stepbox-worker.chart" . }}
{{ include "stepbox-worker.selectorLabels" . }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stepbox
{{- end }}

{{/*
The labels that select the worker pods (immutable once deployed).
*/}}
{{- define "stepbox-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stepbox-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{/*
The service account the worker runs as.
*/}}
{{- define "stepbox-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stepbox-worker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The policies ConfigMap's name.
*/}}
{{- define "stepbox-worker.policiesConfigMap" -}}
{{- printf "%s-policies" (include "stepbox-worker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image: REPOSITORY:TAG, with @DIGEST when a digest is set.
*/}}
{{- define "stepbox-worker.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The policies, checked: at least one, each named like a file a ConfigMap can
hold, each with a list of rules, and worker.defaultPolicy among them.
Returns the policies as YAML (fromYaml it); fails the render otherwise.
*/}}
{{- define "stepbox-worker.policies" -}}
{{- $policies := dict }}
{{- range $name, $policy := .Values.policies }}
{{- if $policy }}
{{- if not (regexMatch "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$" $name) }}
{{- fail (printf "policies: %q is not a valid policy name (letters, digits, '-', '_', '.'; it becomes the file %s.yaml)" $name $name) }}
{{- end }}
{{- if not (kindIs "map" $policy) }}
{{- fail (printf "policies.%s: must be a map with rules, limits and optionally requireDigest" $name) }}
{{- end }}
{{- if not (and (kindIs "slice" $policy.rules) $policy.rules) }}
{{- fail (printf "policies.%s.rules: must be a non-empty list of Role-like rules" $name) }}
{{- end }}
{{- $_ := set $policies $name $policy }}
{{- end }}
{{- end }}
{{- if not $policies }}
{{- fail "policies: at least one policy is needed" }}
{{- end }}
{{- if not (hasKey $policies .Values.worker.defaultPolicy) }}
{{- fail (printf "worker.defaultPolicy %q is not among the policies (%s)" .Values.worker.defaultPolicy (keys $policies | sortAlpha | join ", ")) }}
{{- end }}
{{- toYaml $policies }}
{{- end }}

{{/*
The rules the worker needs for itself, before its policies' rules: its
StepRuns (status, finalizers), each run's report and log ConfigMaps, Events,
and the Secrets StepRuns reference (spec.secrets).
Kept equal to stepbox_worker::role::worker_rules (host/worker/src/role.rs).
*/}}
{{- define "stepbox-worker.workerRules" -}}
- apiGroups: ["stepbox.dev"]
  resources: ["stepruns"]
  verbs: ["get", "list", "watch", "update", "patch", "delete"]
- apiGroups: ["stepbox.dev"]
  resources: ["stepruns/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["stepbox.dev"]
  resources: ["stepruns/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}

{{/*
A duration in milliseconds when it is written as NUMBER(ms|s|m|h), else ""
(other humantime forms such as "1m 30s" are left to the worker to parse).
Used only to check the worker's timing settings against each other.
*/}}
{{- define "stepbox-worker.millis" -}}
{{- $d := toString . | trim }}
{{- if regexMatch "^[0-9]+ms$" $d }}
{{- trimSuffix "ms" $d | int64 }}
{{- else if regexMatch "^[0-9]+s$" $d }}
{{- mul (trimSuffix "s" $d | int64) 1000 }}
{{- else if regexMatch "^[0-9]+m$" $d }}
{{- mul (trimSuffix "m" $d | int64) 60000 }}
{{- else if regexMatch "^[0-9]+h$" $d }}
{{- mul (trimSuffix "h" $d | int64) 3600000 }}
{{- end }}
{{- end }}

{{/*
Checks of the worker's settings that would otherwise only fail at run time.
*/}}
{{- define "stepbox-worker.validate" -}}
{{- $heartbeat := include "stepbox-worker.millis" .Values.worker.heartbeat }}
{{- $lostAfter := include "stepbox-worker.millis" .Values.worker.lostAfter }}
{{- $drain := include "stepbox-worker.millis" .Values.worker.drainTimeout }}
{{- if and $heartbeat $lostAfter (le (int64 $lostAfter) (int64 $heartbeat)) }}
{{- fail (printf "worker.lostAfter (%v) must be longer than worker.heartbeat (%v), or every run looks lost" .Values.worker.lostAfter .Values.worker.heartbeat) }}
{{- end }}
{{- if and $drain (le (mul (int64 .Values.terminationGracePeriodSeconds) 1000) (int64 $drain)) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be greater than worker.drainTimeout (%v), or draining runs are killed" .Values.terminationGracePeriodSeconds .Values.worker.drainTimeout) }}
{{- end }}
{{- if lt (int .Values.worker.maxConcurrentRuns) 1 }}
{{- fail "worker.maxConcurrentRuns must be at least 1" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled" }}
{{- end }}
{{- end }}
