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

{{/*
A service's image: (dict "root" $ "component" "relay" "image" .Values.relay.image). <repository>@<digest>
when the service's image.digest is set (the tag is then ignored: the digest alone names the image), else
<repository>:<tag>. The repository defaults to <image.registry>/<image.repository>/<component>, the tag to
image.tag, then the chart's appVersion.
*/}}
{{- define "psp.image" -}}
{{- $img := .root.Values.image -}}
{{- $own := .image | default dict -}}
{{- $repo := $own.repository -}}
{{- if not $repo -}}
{{- $repo = printf "%s/%s" $img.repository .component -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $repo }}{{ end -}}
{{- end -}}
{{- if $own.digest -}}
{{- printf "%s@%s" $repo $own.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default (default .root.Chart.AppVersion $img.tag) $own.tag) -}}
{{- end -}}
{{- end -}}

{{/*
An env var read from a service's own Secret:
(dict "root" $ "secret" .Values.credentials.relay.existingSecret "name" "REDIS_URL" "key" "redisUrl").
*/}}
{{- define "psp.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "no Secret named for %s" .name) .secret }}
      key: {{ index .root.Values.credentials.keys .key }}
{{- end -}}

{{- define "psp.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end -}}
{{- end -}}

{{/* The pod-level settings every workload shares; each service runs as its own ServiceAccount. */}}
{{- define "psp.podSpecCommon" -}}
serviceAccountName: {{ include "psp.name" . }}
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

{{/*
Spread a replicated service's pods over nodes and, with zoneSpread.enabled, over availability zones
(topology.kubernetes.io/zone, at most zoneSpread.maxSkew apart; ScheduleAnyway by default, so a zone
outage or a single-zone cluster never leaves pods Pending). The items of topologySpreadConstraints.
*/}}
{{- define "psp.topologySpread" -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "psp.selectorLabels" . | nindent 6 }}
{{- with .root.Values.zoneSpread }}
{{- if .enabled }}
- maxSkew: {{ .maxSkew }}
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: {{ .whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "psp.selectorLabels" $ | nindent 6 }}
{{- end }}
{{- end }}
{{- end -}}
