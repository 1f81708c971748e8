{{/* The controller image: the values' tag, else the chart's appVersion. */}}
{{- define "quayside.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
