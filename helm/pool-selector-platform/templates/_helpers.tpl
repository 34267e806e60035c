{{/* Name of a component's resources: <release>-<component>. */}}
{{- define "psp.name" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "psp.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "psp.labels" -}}
{{ include "psp.selectorLabels" . }}
app.kubernetes.io/part-of: pool-selector-platform
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "psp.image" -}}
{{- $img := .root.Values.image -}}
{{- $repo := printf "%s/%s" $img.repository .component -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $repo }}{{ end -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* An env var read from the credentials Secret: (dict "root" $ "name" "AMQP_URL" "key" "amqpUrl"). */}}
{{- define "psp.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.credentials.existingSecret }}
      key: {{ index .root.Values.credentials.keys .key }}
{{- end -}}

{{- define "psp.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end -}}
{{- end -}}

{{/* The pod-level settings every Deployment shares (.serviceAccount: another account than the shared one). */}}
{{- define "psp.podSpecCommon" -}}
serviceAccountName: {{ .serviceAccount | default (printf "%s-pool-selector-platform" .root.Release.Name) }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* Liveness on /health, readiness on /ready (or .readyPath), on the named port. */}}
{{- define "psp.probes" -}}
livenessProbe:
  httpGet:
    path: /health
    port: {{ .port }}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: {{ .readyPath | default "/ready" }}
    port: {{ .port }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}
