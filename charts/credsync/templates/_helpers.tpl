{{/* The chart's name. */}}
{{- define "credsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: the release name, or release-chart when
the release name does not contain the chart's name. With release name
credsync the objects are named as in config/default (credsync-manager, ...).
*/}}
{{- define "credsync.fullname" -}}
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

{{- define "credsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "credsync.labels" -}}
helm.sh/chart: {{ include "credsync.chart" . }}
{{ include "credsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the manager's pods. */}}
{{- define "credsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/* The manager's ServiceAccount. */}}
{{- define "credsync.serviceAccountName" -}}
{{ include "credsync.fullname" . }}-manager
{{- end }}

{{/* The name of the metrics port: the ServiceMonitor scrapes it. */}}
{{- define "credsync.metricsPortName" -}}
{{ ternary "https-metrics" "http-metrics" .Values.metrics.secure }}
{{- end }}
