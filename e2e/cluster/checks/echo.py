# Test workload for the process-runner checks (runs as a Pod via the
# python3 image mapping). Binds $POD_IP:8080.
#   GET  /file/<name>  content of /etc/web-content/<name> (Secret volume)
#   GET  /whoami       pod facts and what the in-cluster token may do
#   ANY  /echo...      method, path+query, headers and sha256 of the body
#   GET  /healthz      200
import hashlib, http.server, json, os, ssl, urllib.request, urllib.error

SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def api_status(path):
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ["KUBERNETES_SERVICE_PORT"]
    with open(f"{SA}/token") as f:
        token = f.read()
    ctx = ssl.create_default_context(cafile=f"{SA}/ca.crt")
    req = urllib.request.Request(f"https://{host}:{port}{path}",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/healthz":
            return self.reply(200, b"ok", "text/plain")
        if self.path.startswith("/file/"):
            try:
                with open("/etc/web-content/" + self.path[len("/file/"):], "rb") as f:
                    return self.reply(200, f.read(), "text/plain")
            except OSError:
                return self.reply(404, b"no such file", "text/plain")
        if self.path == "/whoami":
            with open(f"{SA}/namespace") as f:
                namespace = f.read()
            try:
                with open("/var/lib/echo-init/done") as f:
                    init = f.read()
            except OSError:
                init = None
            return self.reply(200, {
                "pod": os.environ.get("HOSTNAME"), "pid": os.getpid(),
                "podIP": os.environ.get("POD_IP"), "namespace": namespace,
                "home": os.environ.get("HOME"), "level": os.environ.get("LEVEL"),
                "init": init,
                "version": api_status("/version"),
                "listPods": api_status(f"/api/v1/namespaces/{namespace}/pods"),
            })
        if self.path.startswith("/echo"):
            return self.reply(200, {
                "pod": os.environ.get("HOSTNAME"), "method": self.command,
                "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                "sha256": hashlib.sha256(body).hexdigest(), "length": len(body),
            })
        return self.reply(404, b"not found", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), Handler).serve_forever()
