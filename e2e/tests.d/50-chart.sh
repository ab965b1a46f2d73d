# The Helm chart and the kustomize bases: helm lint and template (variants,
# values.schema.json refusals, CRDs identical to crds/, RBAC: the operator
# reads cluster-wide or per watched namespace and writes only in the release
# namespace, the connectors' ServiceAccount reads Secrets there; config/rbac
# grants the same), `kubectl apply -k` of config/ and of every sample against
# the real apiserver (server-side dry run), then helm install into the local
# control plane with the operator run by the process runner (what its and
# the connectors' ServiceAccounts may do, per `kubectl auth can-i`; a sample
# Tenant's connector Deployment in the release namespace), upgrade
# (generated passwords kept) and uninstall (CRDs and Tenants kept).
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

# --- RBAC: read cluster-wide, write only in the release namespace -------------
# rbac_check RENDERED RELEASE_NS OPERATOR_SA CONNECTOR_SA [WATCHED_NS...]:
# prints one line per broken rule (nothing when all hold). The operator's
# ClusterRole has its CRDs, Events and (serving every namespace) read-only
# Secrets; its writes are a Role in the release namespace; with
# watchNamespaces it reads Secrets through a Role in each watched namespace
# only; the connectors' ServiceAccount may only read Secrets, only in the
# release namespace; nothing renders into another namespace but those Roles.
cat >"$work/rbac_check.py" <<'PY'
import json, sys
objects = json.load(sys.stdin)["items"]
release_ns, operator_sa, connector_sa = sys.argv[1:4]
watched = sys.argv[4:]
operator = operator_sa  # the chart names the operator's RBAC objects like its ServiceAccount
problems = []

def find(kind, name, ns=None):
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
             and o["metadata"].get("namespace") == ns]
    if len(found) != 1:
        problems.append(f"{len(found)} {kind} {ns or '-'}/{name} rendered, not 1")
        return None
    return found[0]

def grants(role):
    return {(group, resource, verb) for rule in (role or {}).get("rules", [])
            for group in rule.get("apiGroups", []) for resource in rule.get("resources", [])
            for verb in rule.get("verbs", [])}

def binds(binding, role_kind, role, sa):
    if binding is None:
        return
    ref, subjects = binding["roleRef"], binding.get("subjects", [])
    wanted = [{"kind": "ServiceAccount", "name": sa, "namespace": release_ns}]
    if (ref["kind"], ref["name"]) != (role_kind, role) or subjects != wanted:
        name = binding["metadata"]["name"]
        problems.append(f"{binding['kind']} {name} does not bind {role_kind} {role} to {release_ns}/{sa}: {ref} {subjects}")

written = {("", "secrets"), ("", "services"), ("apps", "deployments"),
           ("autoscaling", "horizontalpodautoscalers"), ("networking.k8s.io", "ingresses")}
read = {"get", "list", "watch"}
read_secrets = {("", "secrets", verb) for verb in read}

cluster = grants(find("ClusterRole", operator))
if any("*" in triple for triple in cluster):
    problems.append(f"the ClusterRole has a wildcard: {sorted(cluster)}")
for group, resource, verb in sorted(cluster):
    if (group, resource) == ("", "secrets") and verb not in read:
        problems.append(f"the ClusterRole may {verb} secrets in every namespace")
    elif (group, resource) in written - {("", "secrets")}:
        problems.append(f"the ClusterRole may {verb} {resource} in every namespace")
secrets = {verb for group, resource, verb in cluster if (group, resource) == ("", "secrets")}
if secrets != (set() if watched else read):
    problems.append(f"the ClusterRole grants {sorted(secrets)} on secrets (watchNamespaces: {watched})")
for crd in ("tenants", "storages", "notifierdestinations"):
    if not {("messaging.universal-messaging.io", crd, v) for v in ("get", "list", "watch", "patch")} <= cluster:
        problems.append(f"the ClusterRole cannot get, list, watch and patch {crd}")
binds(find("ClusterRoleBinding", operator), "ClusterRole", operator, operator_sa)

home = grants(find("Role", operator, release_ns))
for group, resource in sorted(written):
    for verb in ("get", "list", "watch", "create", "patch", "delete"):
        if (group, resource, verb) not in home:
            problems.append(f"the Role in {release_ns} cannot {verb} {resource}")
binds(find("RoleBinding", operator, release_ns), "Role", operator, operator_sa)

for ns in watched:
    role = f"{operator}-secrets"
    if grants(find("Role", role, ns)) != read_secrets:
        problems.append(f"the Role {ns}/{role} does not grant exactly get, list, watch on secrets")
    binds(find("RoleBinding", role, ns), "Role", role, operator_sa)

find("ServiceAccount", connector_sa, release_ns)
if grants(find("Role", connector_sa, release_ns)) != read_secrets:
    problems.append("the connector Role does not grant exactly get, list, watch on secrets")
binds(find("RoleBinding", connector_sa, release_ns), "Role", connector_sa, connector_sa)

for o in objects:
    ns, what = o["metadata"].get("namespace"), f"{o['kind']} {o['metadata']['name']}"
    if ns is not None and ns != release_ns and (ns not in watched or o["kind"] not in ("Role", "RoleBinding")):
        problems.append(f"{what} renders into namespace {ns}")
print("\n".join(problems))
PY
rbac_check() {
  kubectl apply --dry-run=client -o json -f "$1" | python3 "$work/rbac_check.py" "${@:2}"
}
# check_rbac NAME RENDERED ARGS...: fails with every broken rule named.
check_rbac() {
  local name=$1 out; shift
  out=$(rbac_check "$@") || { fail "RBAC ($name): the check did not run"; return; }
  [ -z "$out" ] || fail "RBAC ($name): $out"
}
operator_sa=um-universal-messaging-operator connector_sa=um-universal-messaging-connector
check_rbac "default values" "$work/default.yaml" um-system "$operator_sa" "$connector_sa"
check_rbac "external" "$work/external.yaml" um-system "$operator_sa" "$connector_sa"
template --set 'watchNamespaces={shop-a,shop-b}' >"$work/watched.yaml" || fail "helm template (watchNamespaces)"
check_rbac "watchNamespaces" "$work/watched.yaml" um-system "$operator_sa" "$connector_sa" shop-a shop-b
# The check fails on what it must refuse (else it proves nothing): a
# ClusterRole that may create Secrets, a Role per watched namespace missing.
sed 's/^    verbs: \[get, list, watch\]$/    verbs: [get, list, watch, create]/' "$work/default.yaml" >"$work/broken.yaml"
grep -q 'verbs: \[get, list, watch, create\]$' "$work/broken.yaml" || fail "RBAC self-check: no read-only rule to break"
[ -n "$(rbac_check "$work/broken.yaml" um-system "$operator_sa" "$connector_sa")" ] \
  || fail "RBAC self-check: a ClusterRole that may create Secrets everywhere passed"
[ -n "$(rbac_check "$work/default.yaml" um-system "$operator_sa" "$connector_sa" shop-a)" ] \
  || fail "RBAC self-check: a watched namespace without its Role passed"
# The operator runs the connectors as the ServiceAccount the chart creates:
# the configuration names it explicitly, for any release name (the
# installation name is cut to 40 characters).
config_field() { # rendered-file field -> its value in the operator configuration
  grep -E "^ +$2: " "$1" | awk '{print $2}'
}
[ "$(config_field "$work/default.yaml" connectorServiceAccount)" = "$connector_sa" ] \
  || fail "operator config connectorServiceAccount: '$(config_field "$work/default.yaml" connectorServiceAccount)', not $connector_sa"
long_release=the-storefront-installation-of-messaging # + -universal-messaging: 60 characters
helm template "$long_release" "$chart" --namespace shops --kube-version "$kube_version" >"$work/long.yaml" \
  || fail "helm template (long release name)"
long_sa=$(config_field "$work/long.yaml" connectorServiceAccount)
long_instance=$(config_field "$work/long.yaml" instance)
[ "$long_sa" = "$long_instance-connector" ] && [ -n "$long_instance" ] && [ "${#long_instance}" -le 40 ] \
  || fail "long release: instance '$long_instance', connectorServiceAccount '$long_sa'"
check_rbac "long release name" "$work/long.yaml" shops "$(config_field "$work/long.yaml" serviceAccountName)" "$long_sa"

# --- kustomize bases and samples against the apiserver -----------------------
kubectl kustomize config/default >"$work/kustomize.yaml" || fail "kubectl kustomize config/default"
[ "$(count CustomResourceDefinition "$work/kustomize.yaml")" = 3 ] || fail "config/default lacks the 3 CRDs"
kubectl kustomize config/crd >"$work/kustomize-crds.yaml" || fail "kubectl kustomize config/crd"
[ "$(crd_specs "$work/kustomize-crds.yaml" | sort)" = "$(crd_specs "$work/repo-crds.yaml" | sort)" ] \
  || fail "config/crd differs from crds/"
# config/rbac grants exactly what the chart grants (default values).
rules_of() { # FILE KIND NAME -> the rules of that object, normalized JSON
  kubectl apply --dry-run=client -o json -f "$1" | python3 -c '
import json, sys
data = json.load(sys.stdin)
kind, name = sys.argv[1:]
found = [o["rules"] for o in data.get("items", [data]) if (o["kind"], o["metadata"]["name"]) == (kind, name)]
print(json.dumps(found, sort_keys=True))' "$2" "$3"
}
for pair in "ClusterRole $operator_sa um-operator role.yaml" \
  "Role $operator_sa um-operator data_plane_role.yaml" \
  "Role $connector_sa um-connector connector_role.yaml" \
  "Role $operator_sa-leader-election um-operator-leader-election leader_election_role.yaml"; do
  read -r kind chart_name config_name file <<<"$pair"
  chart_rules=$(rules_of "$work/default.yaml" "$kind" "$chart_name")
  [ "$chart_rules" != "[]" ] && [ "$chart_rules" = "$(rules_of "config/rbac/$file" "$kind" "$config_name")" ] \
    || fail "config/rbac/$file differs from the chart's $kind $chart_name: $chart_rules"
done
grep -q '^connectorServiceAccount: um-connector$' config/operator/config.yaml \
  && grep -q '^  name: um-connector$' config/rbac/connector_service_account.yaml \
  || fail "config/operator/config.yaml does not name the ServiceAccount of config/rbac/connector_service_account.yaml"
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

# What the apiserver lets the chart's ServiceAccounts do: the operator
# reads Secrets anywhere but writes only in the release namespace; the
# connectors read the Secrets of the release namespace, nothing else.
can() { # SA VERB RESOURCE NAMESPACE -> yes/no
  kubectl auth can-i "$2" "$3" -n "$4" --as "system:serviceaccount:$ns:$1" 2>/dev/null || true
}
for want in "yes um-universal-messaging-operator get secrets shop" \
  "yes um-universal-messaging-operator watch secrets shop" \
  "no um-universal-messaging-operator create secrets shop" \
  "no um-universal-messaging-operator delete secrets shop" \
  "no um-universal-messaging-operator create deployments shop" \
  "no um-universal-messaging-operator patch services shop" \
  "no um-universal-messaging-operator create ingresses shop" \
  "yes um-universal-messaging-operator create secrets $ns" \
  "yes um-universal-messaging-operator delete deployments $ns" \
  "yes um-universal-messaging-operator patch horizontalpodautoscalers.autoscaling $ns" \
  "yes um-universal-messaging-operator create ingresses.networking.k8s.io $ns" \
  "yes um-universal-messaging-connector watch secrets $ns" \
  "no um-universal-messaging-connector create secrets $ns" \
  "no um-universal-messaging-connector get secrets shop" \
  "no um-universal-messaging-connector list deployments $ns"; do
  read -r expected sa verb resource namespace <<<"$want"
  [ "$(can "$sa" "$verb" "$resource" "$namespace")" = "$expected" ] \
    || fail "can $sa $verb $resource in $namespace: not $expected"
done
# The Tenant's data plane runs in the release namespace as the connector
# ServiceAccount (the ReplicaSet's Pods are admitted: the ServiceAccount
# exists); the Tenant's namespace gets nothing.
deployment_sa() {
  kubectl -n "$ns" get deployment um-universal-messaging-telegram -o jsonpath='{.spec.template.spec.serviceAccountName}' 2>/dev/null
}
runs_as_connector() { [ "$(deployment_sa)" = um-universal-messaging-connector ]; }
um_wait_for 60 "deployment um-universal-messaging-telegram in $ns" runs_as_connector \
  || fail "no connector Deployment running as um-universal-messaging-connector in $ns: $(kubectl -n "$ns" get deploy -o name)"
connector_pods() { [ -n "$(kubectl -n "$ns" get pods -l app.kubernetes.io/name=um-universal-messaging-telegram -o name)" ]; }
um_wait_for 60 "a Pod of um-universal-messaging-telegram" connector_pods \
  || fail "no Pod admitted for um-universal-messaging-telegram: $(kubectl -n "$ns" get replicasets,events 2>&1 | tail -5)"
[ -z "$(kubectl -n shop get deploy,svc,ingress,hpa,secrets -l app.kubernetes.io/managed-by=um-operator -o name)" ] \
  || fail "the operator wrote into the Tenant namespace: $(kubectl -n shop get deploy,svc,ingress,hpa,secrets -l app.kubernetes.io/managed-by=um-operator -o name)"

# --- uninstall keeps the CRDs and the Tenants ------------------------------------
helm uninstall um -n "$ns" >/dev/null || fail "helm uninstall"
kubectl get crd tenants.messaging.universal-messaging.io >/dev/null 2>&1 || fail "helm uninstall deleted the Tenant CRD"
kubectl get tenant acme-telegram -n shop >/dev/null 2>&1 || fail "helm uninstall deleted a Tenant"

failures=$(wc -l <"$failures_file")
[ "$failures" -eq 0 ] || um_die "$failures chart check(s) failed"
um_log "chart: lint, template, schema, kustomize, samples, install, upgrade and uninstall checks passed"
