#!/usr/bin/env bash
# Checks of the control plane, process runner and ingress proxy; runs inside
# with-cluster.sh with the image mappings python3 and um-process-runner:
#   with-cluster.sh --image python3=/usr/bin/python3 \
#     --image um-process-runner=<target>/debug/um-process-runner bash checks/runner.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../lib/env.sh"
source "$here/../proc.sh"
: "${KUBECONFIG:?run me through with-cluster.sh}" "${UM_INGRESS_URL:?}" "${UM_RUN_DIR:?}"
source "$here/../versions.env"

ns=um-runner-check
fail() { um_log "CHECK FAILED: $*"; kubectl get pods -n "$ns" -o wide >&2 || true; exit 1; }
pass() { um_log "ok: $*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- the control plane reports its real version ------------------------------
server=$(kubectl version -o json | json 'd["serverVersion"]["gitVersion"]')
[ "$server" = "$KUBERNETES_VERSION" ] || fail "server version $server, want $KUBERNETES_VERSION"
helm version --short | grep -q "^$HELM_VERSION" || fail "helm is not $HELM_VERSION"
pass "API server and kubectl at $KUBERNETES_VERSION, helm $HELM_VERSION"

kubectl create namespace "$ns" >/dev/null
um_wait_for 30 "default ServiceAccount in $ns" kubectl get serviceaccount default -n "$ns"

# A Pod whose image maps to nothing is created first: it must stay unbound
# while the mapped Pods created after it get bound.
kubectl run unmapped -n "$ns" --image=registry.example/nginx:1.27 --restart=Never >/dev/null

kubectl create configmap echo -n "$ns" --from-file=echo.py="$here/echo.py" --from-literal=LEVEL=debug >/dev/null
kubectl create secret generic web-content -n "$ns" --from-literal=greeting=hello-v1 >/dev/null
kubectl apply -n "$ns" -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 3
      initContainers:
      - name: init
        image: registry.example/e2e/python3:3.11
        command: ["python3", "-c", "open('/var/lib/echo-init/done', 'w').write('init-ran')"]
        volumeMounts:
        - {name: scratch, mountPath: /var/lib/echo-init}
      containers:
      - name: echo
        image: registry.example/e2e/python3:3.11
        args: ["-u", "/opt/echo/echo.py"]
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: LEVEL
          valueFrom: {configMapKeyRef: {name: echo, key: LEVEL}}
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
        livenessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 2
        volumeMounts:
        - {name: code, mountPath: /opt/echo}
        - {name: content, mountPath: /etc/web-content}
        - {name: scratch, mountPath: /var/lib/echo-init, readOnly: true}
      volumes:
      - name: scratch
        emptyDir: {}
      - name: code
        configMap: {name: echo, items: [{key: echo.py, path: echo.py}]}
      - name: content
        secret: {secretName: web-content}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: web, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: echo}
spec:
  rules:
  - http:
      paths:
      - {path: /echo, pathType: Prefix, backend: {service: {name: echo, port: {name: web}}}}
      - {path: /file, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}
      - {path: /whoami, pathType: Exact, backend: {service: {name: echo, port: {number: 80}}}}
EOF

# --- Deployment becomes Available through the real controllers ---------------
kubectl wait -n "$ns" deployment/echo --for=condition=Available --timeout=90s >/dev/null \
  || fail "deployment echo did not become Available"
ready=$(kubectl get deployment echo -n "$ns" -o jsonpath='{.status.readyReplicas}')
[ "$ready" = 2 ] || fail "readyReplicas=$ready, want 2"
pass "Deployment echo Available with 2 ready replicas"

node=$(kubectl get pod unmapped -n "$ns" -o jsonpath='{.spec.nodeName}')
[ -z "$node" ] || fail "pod with an unmapped image was bound to $node"
pass "Pod with an unmapped image stays unbound"

mapfile -t ips < <(kubectl get pods -n "$ns" -l app=echo -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}')
[ "${#ips[@]}" = 2 ] && [ "${ips[0]}" != "${ips[1]}" ] || fail "pod IPs not distinct: ${ips[*]}"
for ip in "${ips[@]}"; do
  [[ $ip == 127.* ]] || fail "pod IP $ip is not a loopback address"
  [ "$(curl -sf "http://$ip:8080/file/greeting")" = hello-v1 ] || fail "secret file not served by $ip"
done
[ ! -e /etc/web-content/greeting ] || fail "the Secret volume leaked into the host's /etc/web-content"
pass "each Pod has its own loopback IP (${ips[*]}) and sees the Secret at its mountPath (host does not)"

# --- environment and in-cluster credentials ----------------------------------
who=$(curl -sf "$UM_INGRESS_URL/whoami") || fail "GET /whoami through the ingress"
[ "$(json 'd["namespace"]' <<<"$who")" = "$ns" ] || fail "service account namespace file: $who"
[ "$(json 'd["level"]' <<<"$who")" = debug ] || fail "configMapKeyRef env: $who"
[ "$(json 'd["init"]' <<<"$who")" = init-ran ] || fail "init container did not run before the container (emptyDir): $who"
init_state=$(kubectl get pods -n "$ns" -l app=echo -o jsonpath='{.items[0].status.initContainerStatuses[0].state.terminated.exitCode}')
[ "$init_state" = 0 ] || fail "init container status: exit code '$init_state'"
[ "$(json 'd["version"]' <<<"$who")" = 200 ] || fail "in-cluster token not accepted: $who"
[ "$(json 'd["listPods"]' <<<"$who")" = 403 ] || fail "default service account may list pods (RBAC not enforced?): $who"
pass "in-cluster token authenticates as the Pod's service account, RBAC denies what it lacks; init container ran first"

# --- Secret update reaches the mounted file ----------------------------------
kubectl create secret generic web-content -n "$ns" --from-literal=greeting=hello-v2 \
  --dry-run=client -o yaml | kubectl replace -f - >/dev/null
updated() { [ "$(curl -sf "http://$1:8080/file/greeting")" = hello-v2 ]; }
for ip in "${ips[@]}"; do
  um_wait_for 30 "updated secret file in $ip" updated "$ip" || fail "secret update not visible in $ip"
done
pass "Secret update shows up as a changed file"

# --- ingress: unchanged request, round-robin, 404 -----------------------------
body_file=$(mktemp); head -c 70000 /dev/urandom >"$body_file"
want_sha=$(sha256sum "$body_file" | cut -d' ' -f1)
echo_resp=$(curl -sf -X PUT -H 'X-Line-Signature: c2lnbmF0dXJl' -H 'Content-Type: application/octet-stream' \
  --data-binary @"$body_file" "$UM_INGRESS_URL/echo/a/b?x=1&y=%2F") || fail "PUT through the ingress"
rm -f "$body_file"
[ "$(json 'd["method"]' <<<"$echo_resp")" = PUT ] || fail "method changed: $echo_resp"
[ "$(json 'd["path"]' <<<"$echo_resp")" = "/echo/a/b?x=1&y=%2F" ] || fail "path/query changed: $echo_resp"
[ "$(json 'd["sha256"]' <<<"$echo_resp")" = "$want_sha" ] || fail "body changed"
[ "$(json 'd["headers"]["x-line-signature"]' <<<"$echo_resp")" = c2lnbmF0dXJl ] || fail "header lost"
seen=$(for _ in 1 2 3 4; do curl -sf "$UM_INGRESS_URL/echo" | json 'd["pod"]'; done | sort -u | wc -l)
[ "$seen" = 2 ] || fail "round-robin reached $seen pods, want 2"
code=$(curl -s -o /dev/null -w '%{http_code}' "$UM_INGRESS_URL/nowhere")
[ "$code" = 404 ] || fail "unknown route answered $code, want 404"
code=$(curl -s -o /dev/null -w '%{http_code}' "$UM_INGRESS_URL/whoami/x")
[ "$code" = 404 ] || fail "Exact path matched a longer path ($code)"
pass "ingress forwards method, path, query, headers and body unchanged; round-robin; 404"

# --- a kube-rs program runs in-cluster with its own RBAC ----------------------
# The ingress proxy itself, as a Pod (image um-process-runner): kube-rs'
# Config::infer() falls back to the in-cluster config (no KUBECONFIG, no
# ~/.kube/config in the Pod's HOME) and must list cluster-wide with exactly
# the ClusterRole below.
kubectl apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: proxy}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $ns-proxy}
rules:
- {apiGroups: [""], resources: [services, pods], verbs: [get, list, watch]}
- {apiGroups: [networking.k8s.io], resources: [ingresses], verbs: [get, list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $ns-proxy}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $ns-proxy}
subjects: [{kind: ServiceAccount, name: proxy, namespace: $ns}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: proxy}
spec:
  replicas: 1
  selector: {matchLabels: {app: proxy}}
  template:
    metadata: {labels: {app: proxy}}
    spec:
      serviceAccountName: proxy
      terminationGracePeriodSeconds: 3
      containers:
      - name: proxy
        image: registry.example/um-process-runner:dev
        args: ["ingress", "--listen", "\$(POD_IP):8080", "--ttl", "600"]
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
EOF
kubectl wait -n "$ns" deployment/proxy --for=condition=Available --timeout=90s >/dev/null \
  || fail "the in-cluster kube-rs proxy did not become Available"
proxy_ip=$(kubectl get pods -n "$ns" -l app=proxy -o jsonpath='{.items[0].status.podIP}')
[ "$(curl -sf "http://$proxy_ip:8080/file/greeting")" = hello-v2 ] || fail "in-cluster proxy did not route"
kubectl delete clusterrolebinding "$ns-proxy" >/dev/null
kubectl delete clusterrole "$ns-proxy" >/dev/null
kubectl delete deployment proxy -n "$ns" >/dev/null
pass "kube-rs in-cluster config works in a Pod with its ServiceAccount's RBAC"

# --- a crashed container is restarted ----------------------------------------
pod=$(kubectl get pods -n "$ns" -l app=echo -o jsonpath='{.items[0].metadata.name}')
ip=$(kubectl get pod "$pod" -n "$ns" -o jsonpath='{.status.podIP}')
pid=$(curl -sf "http://$ip:8080/whoami" | json 'd["pid"]')
kill -KILL "$pid"
restarted() {
  [ "$(kubectl get pod "$pod" -n "$ns" -o jsonpath='{.status.containerStatuses[0].restartCount}')" = 1 ] &&
  [ "$(kubectl get pod "$pod" -n "$ns" -o jsonpath='{.status.containerStatuses[0].ready}')" = true ]
}
um_wait_for 60 "restart of $pod" restarted || fail "killed container was not restarted"
new_pid=$(curl -sf "http://$ip:8080/whoami" | json 'd["pid"]')
[ "$new_pid" != "$pid" ] || fail "same process after restart"
has_event() {
  kubectl get events -n "$ns" --field-selector "involvedObject.name=$pod,reason=$1" -o name | grep -q .
}
for reason in Scheduled Started BackOff; do
  um_wait_for 10 "$reason event of $pod" has_event "$reason" || fail "no $reason event for $pod"
done
pass "killed container restarted (restartCount 1, Ready again; Scheduled, Started, BackOff events)"

# --- deleting the Deployment stops the processes -----------------------------
pids=()
for ip in "${ips[@]}"; do pids+=("$(curl -sf "http://$ip:8080/whoami" | json 'd["pid"]')"); done
kubectl delete deployment echo -n "$ns" --wait=false >/dev/null
no_pods() { [ -z "$(kubectl get pods -n "$ns" -l app=echo -o name)" ]; }
um_wait_for 60 "echo pods deleted" no_pods || fail "pods still present after deleting the Deployment"
for p in "${pids[@]}"; do
  ! kill -0 "$p" 2>/dev/null || fail "process $p still runs after its Pod was deleted"
done
for ip in "${ips[@]}"; do
  ! curl -s --max-time 2 "http://$ip:8080/healthz" >/dev/null || fail "$ip still answers"
done
[ -s "$UM_RUN_DIR/pods/${ns}_$pod/echo.log" ] || fail "no container log at pods/${ns}_$pod/echo.log"
pass "deleting the Deployment stopped the processes and removed the Pods"

# --- a Pod waits for a Secret it needs, then starts ----------------------------
kubectl apply -n "$ns" -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: late}
spec:
  replicas: 1
  selector: {matchLabels: {app: late}}
  template:
    metadata: {labels: {app: late}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: registry.example/e2e/python3:3.11
        args: ["-m", "http.server", "8080", "--bind", "$(POD_IP)", "--directory", "/srv/late"]
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: late-secret, key: token}}
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
        volumeMounts:
        - {name: files, mountPath: /srv/late}
      volumes:
      - name: files
        secret: {secretName: late-secret}
EOF
waiting_for_secret() {
  kubectl get pods -n "$ns" -l app=late \
    -o jsonpath='{.items[0].status.containerStatuses[0].state.waiting.reason} {.items[0].status.containerStatuses[0].state.waiting.message}' \
    | grep -q '^ContainerCreating .*late-secret'
}
um_wait_for 30 "late pod waiting for its Secret" waiting_for_secret \
  || fail "a Pod whose Secret is missing is not waiting in ContainerCreating naming the Secret"
failed_mount() { kubectl get events -n "$ns" --field-selector reason=FailedMount -o jsonpath='{.items[*].message}' | grep -q late-secret; }
um_wait_for 10 "FailedMount event" failed_mount || fail "no FailedMount event naming the missing Secret"
kubectl create secret generic late-secret -n "$ns" --from-literal=token=arrived >/dev/null
kubectl wait -n "$ns" deployment/late --for=condition=Available --timeout=60s >/dev/null \
  || fail "the Pod did not start once its Secret existed"
late_ip=$(kubectl get pods -n "$ns" -l app=late -o jsonpath='{.items[0].status.podIP}')
[ "$(curl -sf "http://$late_ip:8080/token")" = arrived ] || fail "late Secret not mounted"
kubectl delete deployment late -n "$ns" >/dev/null
pass "a Pod waits (ContainerCreating) for a missing Secret and starts when it appears"

# --- helm install/upgrade --wait, uninstall ------------------------------------
served() { [ "$(curl -sf "http://$(kubectl get pods -n "$ns" -l app.kubernetes.io/instance=rc -o jsonpath='{.items[0].status.podIP}'):8080/message")" = "$1" ]; }
helm install rc "$here/chart" -n "$ns" --wait --timeout 90s >/dev/null || fail "helm install --wait"
served hello-from-helm || fail "helm release not serving its ConfigMap"
helm upgrade rc "$here/chart" -n "$ns" --set message=upgraded --wait --timeout 90s >/dev/null || fail "helm upgrade --wait"
um_wait_for 30 "upgraded release serving" served upgraded || fail "helm upgrade did not roll out"
helm uninstall rc -n "$ns" --wait --timeout 60s >/dev/null || fail "helm uninstall"
no_release_pods() { [ -z "$(kubectl get pods -n "$ns" -l app.kubernetes.io/instance=rc -o name)" ]; }
um_wait_for 60 "release pods gone" no_release_pods || fail "pods of the uninstalled release remain"
pass "helm install/upgrade --wait and uninstall work against the cluster"

kubectl delete namespace "$ns" --wait=false >/dev/null
um_log "all process-runner checks passed"
