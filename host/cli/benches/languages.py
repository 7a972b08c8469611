#!/usr/bin/env python3
"""Costs per plugin language (issue 17): the same greeter tool made by `agent-host plugins new` in
Rust, Python, JavaScript and C (same work: read config, bump a kv counter, log, progress, answer),
plus the three examples, measured in one run:

  - .wasm size and compiled (Cranelift) artifact size;
  - first call on an EMPTY data dir: the whole `tools call` process (tiering auto: the baseline
    compiler answers, the optimized build follows in the background), median of 3;
  - first compile with Cranelift (Component::new, median of 3);
  - cached load: agent-host's disk cache vs bare Component::deserialize_file, same run;
  - one call in a fresh sandbox: agent-host vs bare wasmtime on the same component, same run.

    make plugins && cargo build --release -p agent-host
    python3 host/cli/benches/languages.py [BINARY]

Standard library only. Uses the tool chains `make plugins` installed in build/toolchains."""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../../.."))
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
B = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release/agent-host")
CHAINS = os.path.join(ROOT, "build/toolchains")
WORK = tempfile.mkdtemp(prefix="agent-host-langs-")
OVERRIDES = {
    "rust": ["CARGO_TARGET_DIR=" + os.path.join(target, "scaffold-rust")],
    "python": ["COMPONENTIZE_PY=" + os.path.join(CHAINS, "python/bin/componentize-py")],
    "js": ["JCO=" + os.path.join(CHAINS, "js/node_modules/.bin/jco")],
    "c": ["TOOLCHAIN=" + os.path.join(CHAINS, "c")],
}
ENV = dict(os.environ, XDG_CONFIG_HOME=os.path.join(WORK, "no-config"))
ENV.pop("AGENT_HOST_CONFIG", None)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, **kw)
    if p.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p.stdout


def greeter(lang):
    name = "greet-" + lang
    run([B, "plugins", "new", name, "--lang", lang], cwd=WORK)
    d = os.path.join(WORK, name)
    run(["make", "AGENT_HOST=" + B] + OVERRIDES[lang], cwd=d)
    tools = json.loads(run([B, "--plugins", os.path.join(d, "build"), "--data-dir", os.path.join(WORK, "d-" + name), "tools", "list", "--json"]))
    return ("%s greeter" % lang, os.path.join(d, "build"), name, tools[0]["name"], {"name": "Ada"})


def example(label, name, tool, args):
    # Each example alone in a directory, so the first call compiles one plugin.
    d = os.path.join(WORK, "ex-" + name)
    os.makedirs(d)
    for ext in ("wasm", "toml"):
        shutil.copy(os.path.join(ROOT, "build/plugins-lang", name + "." + ext), d)
    return (label, d, name, tool, args)


def first_call(plugins, tool, args):
    times = []
    for i in range(3):
        data = os.path.join(WORK, "first-%d" % i)
        shutil.rmtree(data, ignore_errors=True)
        t0 = time.monotonic()
        run([B, "--plugins", plugins, "--data-dir", data, "tools", "call", tool, "--args", json.dumps(args)])
        times.append((time.monotonic() - t0) * 1e3)
    return statistics.median(times)


rows = [greeter(lang) for lang in ("rust", "python", "js", "c")]
rows += [
    example("py-stats example", "py-stats", "py_stats", {"numbers": [2, 4, 4, 4, 5, 5, 7, 9]}),
    example("js-wordfreq example", "js-wordfreq", "js_word_frequencies", {"text": "the cat and the hat and the bat", "top": 3}),
    example("c-checksum example", "c-checksum", "c_checksum", {"input": "123456789"}),
]
print("| plugin | .wasm | artifact | first call, empty data dir (process) | Cranelift compile | cached load: host / bare | one call: host / bare |")
print("|---|---|---|---|---|---|---|")
for label, plugins, name, tool, args in rows:
    first = first_call(plugins, tool, args)
    data = os.path.join(WORK, "bench-" + name)
    report = json.loads(run([B, "--plugins", plugins, "--data-dir", data, "bench", "--only", "call", "--only", "cache",
                             "--tool", tool, "--args", json.dumps(args), "--iterations", "200", "--json"]))
    call, cache = report["call"], report["cache"]
    ms = lambda s: s["median"] if s["unit"] == "ms" else s["median"] / 1e3
    print("| %s | %.2f MB | %.1f MB | %.0f ms | %.0f ms | %.2f / %.2f ms (%.2fx) | %.3f / %.3f ms (%.2fx) |" % (
        label, cache["wasm_bytes"] / 1e6, cache["artifact_bytes"] / 1e6, first, ms(cache["compile"]),
        ms(cache["host_disk_load"]), ms(cache["bare_deserialize"]), cache["ratio_to_bare"],
        ms(call["host"]), ms(call["bare"]), call["ratio"]), flush=True)
shutil.rmtree(WORK, ignore_errors=True)
