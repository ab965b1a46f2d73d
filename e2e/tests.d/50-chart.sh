# The Helm chart and the kustomize bases: helm lint and template (variants,
# values.schema.json refusals, CRDs identical to crds/), `kubectl apply -k`
# of config/ and of every sample against the real apiserver (server-side dry
# run), then helm install into the local control plane with the operator run
# by the process runner, upgrade (generated passwords kept) and uninstall
# (CRDs and Tenants kept).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/e2e/lib/env.sh"
source "$repo/e2e/cluster/versions.env"
source "$repo/e2e/cluster/proc.sh"

if [ "${1:-}" != --in-cluster ]; then
  cd "$repo"
  um_log "building um-operator"
  cargo build -q -p um-operator || um_die "cargo build -p um-operator failed"
  exec bash "$repo/e2e/cluster/with-cluster.sh" \
    --image "um-operator=$CARGO_TARGET_DIR/debug/um-operator" -- bash "$0" --in-cluster
fi

cd "$repo"
chart=charts/universal-messaging
kube_version=${KUBERNETES_VERSION#v}
failures_file=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$failures_file" "$work"' EXIT
fail() { um_log "FAIL: $*"; echo x >>"$failures_file"; }

# --- lint and template -------------------------------------------------------
external=(--set rabbitmq.install=false --set rabbitmq.external.urlSecret.name=my-amqp
  --set redis.install=false --set redis.external.host=redis.example --set redis.external.password=p@ss)
helm lint --strict "$chart" >/dev/null || fail "helm lint (default values)"
helm lint --strict "$chart" "${external[@]}" >/dev/null || fail "helm lint (external RabbitMQ and Redis)"

template() { helm template um "$chart" --namespace um-system --kube-version "$kube_version" "$@"; }
template >"$work/default.yaml" || fail "helm template (default values)"
template "${external[@]}" >"$work/external.yaml" || fail "helm template (external)"
template --set crds.enabled=false >"$work/no-crds.yaml" || fail "helm template (crds.enabled=false)"
template --set crds.keep=false --show-only templates/crds.yaml >"$work/no-keep.yaml" || fail "helm template (crds.keep=false)"

count() { grep -c "^kind: $1\$" "$2" || true; }
[ "$(count CustomResourceDefinition "$work/default.yaml")" = 3 ] || fail "default install renders 3 CRDs"
[ "$(count CustomResourceDefinition "$work/no-crds.yaml")" = 0 ] || fail "crds.enabled=false still renders CRDs"
[ "$(count StatefulSet "$work/default.yaml")" = 2 ] || fail "default install renders RabbitMQ and Redis StatefulSets"
[ "$(count StatefulSet "$work/external.yaml")" = 0 ] || fail "external mode still renders StatefulSets"
grep -q 'helm.sh/resource-policy: keep' "$work/default.yaml" || fail "CRDs lack helm.sh/resource-policy: keep"
grep -q 'helm.sh/resource-policy' "$work/no-keep.yaml" && fail "crds.keep=false still annotates keep"
grep -q 'url: "redis://:p%40ss@redis.example:6379/0"' "$work/external.yaml" \
  || fail "external Redis URL Secret: $(grep 'redis://' "$work/external.yaml")"
grep -q 'name: my-amqp' "$work/external.yaml" || fail "external RabbitMQ URL Secret not referenced in the operator config"
# The Ingress host defaults to apiRoot's host name (no port; none for an IP).
ingress_host() { template --set api.apiRoot="$1" --show-only templates/operator-configmap.yaml | grep -E '^ {6}host:'; }
[ "$(ingress_host https://um.example.com:8443/base)" = '      host: um.example.com' ] || fail "ingress host from apiRoot with a port"
[ "$(ingress_host http://127.0.0.1:8080)" = '      host: ""' ] || fail "ingress host from an IP apiRoot"

# The chart installs exactly the CRDs of crds/ (labels and annotations aside).
crd_specs() { kubectl apply --dry-run=client -o jsonpath='{range .items[*]}{.spec}{"\n"}{end}' -f "$1"; }
template --show-only templates/crds.yaml >"$work/chart-crds.yaml"
cat crds/tenants.yaml <(echo ---) crds/storages.yaml <(echo ---) crds/notifierdestinations.yaml >"$work/repo-crds.yaml"
[ "$(crd_specs "$work/chart-crds.yaml" | sort)" = "$(crd_specs "$work/repo-crds.yaml" | sort)" ] \
  || fail "the chart's CRDs differ from crds/"

# values.schema.json refuses typos and bad values, naming the key.
refused() {
  local name=$1 expected=$2; shift 2
  local out
  if out=$(template "$@" 2>&1); then
    fail "values $name accepted"
  elif ! grep -qF -- "$expected" <<<"$out"; then
    fail "values $name: error lacks \"$expected\": $out"
  fi
}
refused typo-service "telgram" --set services.telgram.enabled=true
# What this version has no connector for cannot be switched on.
refused preview-service "wechat" --set services.wechat.enabled=true
refused api-service "api" --set services.api.enabled=true
refused typo-top-level "ingres" --set ingres.enabled=false
refused bad-api-root "/api/apiRoot" --set api.apiRoot=um.example.com
refused bad-min-replicas "minReplicas" --set serviceDefaults.autoscaling.minReplicas=0
refused bad-pull-policy "pullPolicy" --set image.pullPolicy=Sometimes
refused bad-service-type "type" --set services.gcloudcx.service.type=Internal
refused external-without-url "rabbitmq.external" --set rabbitmq.install=false
refused bad-watch-namespace "watchNamespaces" --set 'watchNamespaces={Shop_A}'
template --set 'watchNamespaces={shop-a,shop-b}' --show-only templates/operator-configmap.yaml \
  | grep -A2 'watchNamespaces:' | grep -q -- '- shop-b' || fail "watchNamespaces not rendered into the operator configuration"

# --- kustomize bases and samples against the apiserver -----------------------
kubectl kustomize config/default >"$work/kustomize.yaml" || fail "kubectl kustomize config/default"
[ "$(count CustomResourceDefinition "$work/kustomize.yaml")" = 3 ] || fail "config/default lacks the 3 CRDs"
kubectl kustomize config/crd >"$work/kustomize-crds.yaml" || fail "kubectl kustomize config/crd"
[ "$(crd_specs "$work/kustomize-crds.yaml" | sort)" = "$(crd_specs "$work/repo-crds.yaml" | sort)" ] \
  || fail "config/crd differs from crds/"
# config/rbac grants exactly what the chart grants.
rules() { kubectl apply --dry-run=client -o jsonpath='{.rules}' -f "$1"; }
template --show-only templates/operator-rbac.yaml | awk '/^---/{n++} n==1' >"$work/chart-clusterrole.yaml"
[ "$(rules "$work/chart-clusterrole.yaml")" = "$(rules config/rbac/role.yaml)" ] \
  || fail "config/rbac/role.yaml differs from the chart's ClusterRole"
kubectl create namespace universal-messaging >/dev/null
kubectl apply -k config/default --server-side --dry-run=server >/dev/null || fail "kubectl apply -k config/default (server dry run)"
kubectl delete namespace universal-messaging --wait=false >/dev/null

# --- generated passwords survive an upgrade -----------------------------------
kubectl create namespace um-data >/dev/null
helm install um-data "$chart" -n um-data --set crds.enabled=false --set operator.replicas=0 >/dev/null \
  || fail "helm install with the chart's RabbitMQ and Redis"
secret_value() { kubectl get secret "$2" -n "$1" -o jsonpath="{.data.$3}"; }
before="$(secret_value um-data um-rabbitmq password)/$(secret_value um-data um-redis password)"
helm upgrade um-data "$chart" -n um-data --set crds.enabled=false --set operator.replicas=0 >/dev/null \
  || fail "helm upgrade"
after="$(secret_value um-data um-rabbitmq password)/$(secret_value um-data um-redis password)"
[ -n "${before%/}" ] && [ "$before" = "$after" ] || fail "generated passwords changed on upgrade"
helm uninstall um-data -n um-data >/dev/null

# --- install into the local control plane --------------------------------------
ns=um-system
kubectl create namespace "$ns" >/dev/null
# External RabbitMQ by URL Secret, external Redis by host and password Secret.
kubectl create secret generic my-amqp -n "$ns" --from-literal=url='amqp://um:um@127.0.0.1:5672/%2f' >/dev/null
kubectl create secret generic my-redis -n "$ns" --from-literal=password='r3dis pass' >/dev/null
helm install um "$chart" -n "$ns" --set api.apiRoot="$UM_INGRESS_URL" \
  --set rabbitmq.install=false --set rabbitmq.external.urlSecret.name=my-amqp \
  --set redis.install=false --set redis.external.host=127.0.0.1 --set redis.external.passwordSecret.name=my-redis \
  >/dev/null || um_die "helm install into the local control plane failed"
redis_url=$(kubectl get secret um-redis -n "$ns" -o jsonpath='{.data.url}' | base64 -d)
[ "$redis_url" = "redis://:r3dis%20pass@127.0.0.1:6379/0" ] || fail "Redis URL Secret from passwordSecret: $redis_url"
config=$(kubectl get configmap um-universal-messaging-operator-config -n "$ns" -o jsonpath='{.data.config\.yaml}')
grep -q "name: my-amqp" <<<"$config" || fail "operator config does not name the RabbitMQ URL Secret: $config"
grep -q "^instance: um-universal-messaging$" <<<"$config" || fail "operator config does not name the installation: $config"
kubectl wait --for condition=Established --timeout=60s crd/tenants.messaging.universal-messaging.io >/dev/null \
  || fail "the chart's CRDs are not Established"

kubectl create namespace samples >/dev/null
accepted=$(kubectl apply -k config/samples -n samples --dry-run=server 2>"$work/samples.err" | grep -c 'created (server dry run)' || true)
[ "$accepted" = 51 ] || fail "samples: $accepted of 51 objects accepted: $(cat "$work/samples.err")"

operator=deployment/um-universal-messaging-operator
if ! kubectl rollout status "$operator" -n "$ns" --timeout=120s >/dev/null; then
  fail "the operator Deployment did not become available"
  kubectl get pods -n "$ns" -o wide >&2 || true
fi
pod_ip=$(kubectl get pods -n "$ns" -l app.kubernetes.io/component=operator -o jsonpath='{.items[0].status.podIP}')
curl -sf --max-time 5 "http://$pod_ip:8080/healthz" >/dev/null || fail "operator /healthz on $pod_ip:8080"
curl -sf --max-time 5 "http://$pod_ip:8080/metrics" | grep -q '^# ' || fail "operator /metrics on $pod_ip:8080"
# The leader Lease is named after the installation: two releases never share it.
um_wait_for 60 "the operator's Lease" kubectl get lease um-universal-messaging-operator-leader -n "$ns" \
  || fail "no Lease um-universal-messaging-operator-leader: $(kubectl get leases -n "$ns" -o name)"

# The operator, configured by the chart, reconciles a sample Tenant: its
# status fills the printer columns.
kubectl create namespace shop >/dev/null
kubectl apply -n shop -f config/samples/secrets/genesys-cloud.yaml -f config/samples/tenants/telegram.yaml >/dev/null
reconciled() {
  [ "$(kubectl get tenant acme-telegram -n shop -o jsonpath='{.status.platform}/{.status.webhookUrl}')" \
    = "telegram/$UM_INGRESS_URL/telegram/shop.acme-telegram" ]
}
um_wait_for 60 "the operator to report acme-telegram's platform and webhook URL" reconciled \
  || fail "Tenant status not filled by the operator: $(kubectl get tenant acme-telegram -n shop -o jsonpath='{.status}')"

# --- uninstall keeps the CRDs and the Tenants ------------------------------------
helm uninstall um -n "$ns" >/dev/null || fail "helm uninstall"
kubectl get crd tenants.messaging.universal-messaging.io >/dev/null 2>&1 || fail "helm uninstall deleted the Tenant CRD"
kubectl get tenant acme-telegram -n shop >/dev/null 2>&1 || fail "helm uninstall deleted a Tenant"

failures=$(wc -l <"$failures_file")
[ "$failures" -eq 0 ] || um_die "$failures chart check(s) failed"
um_log "chart: lint, template, schema, kustomize, samples, install, upgrade and uninstall checks passed"
