{{/* Name of the chart, for labels. */}}
{{- define "um.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped base name of the objects this chart creates. */}}
{{- define "um.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "um.labels" -}}
app.kubernetes.io/name: {{ include "um.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: include "um.selectorLabels" (list . "operator") */}}
{{- define "um.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "um.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* registry/repository:tag of an image block; tag defaults to appVersion. */}}
{{- define "um.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $tag := $image.tag | default $root.Chart.AppVersion -}}
{{- if $image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $image.registry) $image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "um.operator.name" -}}
{{- printf "%s-operator" (include "um.fullname" .) -}}
{{- end -}}

{{- define "um.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- .Values.operator.serviceAccount.name | default (include "um.operator.name" .) -}}
{{- else -}}
{{- .Values.operator.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
Name of the installation (the operator's `instance`): the full name cut to
40 characters. It starts the name of everything the operator writes in the
release namespace (<instance>-<service>, <instance>-ingress, ...), the bus
namespace and the leader Lease.
*/}}
{{- define "um.instance" -}}
{{- include "um.fullname" . | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* ServiceAccount of the connector pods; the operator config names it (connectorServiceAccount). */}}
{{- define "um.connector.serviceAccountName" -}}
{{- printf "%s-connector" (include "um.instance" .) -}}
{{- end -}}

{{/* The operator's configuration ConfigMap, named after the release so two installations never share it. */}}
{{- define "um.operator.configMapName" -}}{{ include "um.operator.name" . }}-config{{- end -}}

{{- define "um.rabbitmq.name" -}}{{ printf "%s-rabbitmq" (include "um.fullname" .) }}{{- end -}}
{{- define "um.redis.name" -}}{{ printf "%s-redis" (include "um.fullname" .) }}{{- end -}}

{{/* Secret and key holding the amqp URL the services use. */}}
{{- define "um.rabbitmq.urlSecretName" -}}
{{- if and (not .Values.rabbitmq.install) .Values.rabbitmq.external.urlSecret.name -}}
{{- .Values.rabbitmq.external.urlSecret.name -}}
{{- else -}}
um-rabbitmq
{{- end -}}
{{- end -}}
{{- define "um.rabbitmq.urlSecretKey" -}}
{{- if and (not .Values.rabbitmq.install) .Values.rabbitmq.external.urlSecret.name -}}
{{- .Values.rabbitmq.external.urlSecret.key -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{- define "um.redis.urlSecretName" -}}
{{- if and (not .Values.redis.install) .Values.redis.external.urlSecret.name -}}
{{- .Values.redis.external.urlSecret.name -}}
{{- else -}}
um-redis
{{- end -}}
{{- end -}}
{{- define "um.redis.urlSecretKey" -}}
{{- if and (not .Values.redis.install) .Values.redis.external.urlSecret.name -}}
{{- .Values.redis.external.urlSecret.key -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{/*
A password kept across upgrades: the value given, else the one already in
the Secret, else a new random one. include "um.password" (list . secretName key given)
*/}}
{{- define "um.password" -}}
{{- $root := index . 0 -}}
{{- $secretName := index . 1 -}}
{{- $key := index . 2 -}}
{{- $given := index . 3 -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $secretName -}}
{{- if and $existing $existing.data (hasKey $existing.data $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Host of the Ingress rules: ingress.host, else the host name of api.apiRoot
without its port. An IP address cannot be an Ingress host, so an apiRoot on
an IP gives rules for any host ("").
*/}}
{{- define "um.ingressHost" -}}
{{- if .Values.ingress.host -}}
{{- .Values.ingress.host -}}
{{- else -}}
{{- $host := regexReplaceAll ":[0-9]+$" (urlParse .Values.api.apiRoot).host "" -}}
{{- if not (regexMatch "^[0-9.]+$|^\\[" $host) -}}
{{- $host -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Password of an external server: the literal value, else the key of the
Secret named in passwordSecret (read at install time), else "".
include "um.externalPassword" (list . .Values.rabbitmq.external "rabbitmq")
*/}}
{{- define "um.externalPassword" -}}
{{- $root := index . 0 -}}
{{- $external := index . 1 -}}
{{- $what := index . 2 -}}
{{- if $external.password -}}
{{- $external.password -}}
{{- else if $external.passwordSecret.name -}}
{{- $secret := lookup "v1" "Secret" $root.Release.Namespace $external.passwordSecret.name -}}
{{- if not (and $secret $secret.data (hasKey $secret.data $external.passwordSecret.key)) -}}
{{- fail (printf "%s.external.passwordSecret: no key %q in Secret %s/%s (it must exist before install; helm template cannot read Secrets: use %s.external.urlSecret there)" $what $external.passwordSecret.key $root.Release.Namespace $external.passwordSecret.name $what) -}}
{{- end -}}
{{- index $secret.data $external.passwordSecret.key | b64dec -}}
{{- end -}}
{{- end -}}

{{/* Percent-encoding for URL user info and paths (urlquery writes a space as "+"). */}}
{{- define "um.urlEscape" -}}
{{- . | urlquery | replace "+" "%20" -}}
{{- end -}}
