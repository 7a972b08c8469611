#!/usr/bin/env python3
"""Cold start (issue 16): wall time from `agent-host run` starting on an EMPTY data dir to its
first model request, with tiered compilation (`[cache] tiering = "auto"`) and without it
("optimized"), the two taking turns. The model is a local OpenAI-compatible stub on 127.0.0.1.

    make plugins && cargo build --release -p agent-host
    python3 host/cli/benches/cold_start.py [RUNS] [BINARY] [PLUGIN_DIR]

Standard library only. Prints the median (min, max) of each and their ratio."""
import http.server, json, os, shutil, subprocess, sys, tempfile, threading, time, statistics
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "../../../target"))
B = sys.argv[2] if len(sys.argv) > 2 else os.path.join(target, "release/agent-host")
P = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "../../../build/plugins")
WORK = tempfile.mkdtemp(prefix="agent-host-cold-")
CONFIGS = {}
for name in ("auto", "optimized"):
    CONFIGS[name] = os.path.join(WORK, name + ".toml")
    with open(CONFIGS[name], "w") as f:
        f.write('[cache]\ntiering = "%s"\n' % name)
arrived = []
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        arrived.append(time.monotonic())
        n = int(self.headers.get("content-length", 0)); self.rfile.read(n)
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
def once(config):
    d = os.path.join(WORK, "data"); shutil.rmtree(d, ignore_errors=True)
    arrived.clear()
    env = dict(os.environ, OPENAI_API_KEY="x")
    t0 = time.monotonic()
    p = subprocess.run([B, "--config", config, "--plugins", P, "--data-dir", d, "run", "--provider", "openai",
        "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", "hi"], env=env, capture_output=True)
    t1 = time.monotonic()
    assert p.returncode == 0, p.stderr.decode()[-500:]
    return (arrived[0] - t0) * 1e3, (t1 - t0) * 1e3
rows = {"auto": [], "optimized": []}
for _ in range(RUNS):
    for name in ("auto", "optimized"):
        rows[name].append(once(CONFIGS[name]))
for name, r in rows.items():
    first = statistics.median(x for x, _ in r); whole = statistics.median(y for _, y in r)
    print(f"{name:10} first model request: median {first:7.1f} ms (min {min(x for x,_ in r):.1f}, max {max(x for x,_ in r):.1f}); whole process {whole:7.1f} ms")
a = statistics.median(x for x, _ in rows["auto"]); o = statistics.median(x for x, _ in rows["optimized"])
print(f"auto/optimized (first request): {a/o:.2f}x")
shutil.rmtree(WORK, ignore_errors=True)
