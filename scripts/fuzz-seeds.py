#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/seeds/<target>/ (committed; `make fuzz`
starts from them and tests/fuzz_regressions.rs replays them in `make test`).

    scripts/fuzz-seeds.py [--fixtures DIR] [--streams DIR]

--fixtures  the chimeraforge raw results (default ../shared/fixtures/chimeraforge): import seeds
--streams   reply bodies captured from `chimera emulate` with curl (*.ndjson, *.sse, *.json:
            ollama_{generate,chat}.{ndjson,json}, openai_{completions,chat}.{sse,json});
            without it the captured stream seeds already in fuzz/seeds are kept

A seed named ok-… must be accepted by its parser and err-… refused (the test checks it).
Structured targets (see fuzz/src/inputs.rs) take a fixed header before the payload:
  streams: flags u8 (bit0 chat, bit1 not streamed), cap u16 LE (0 = 1 MiB), split u64 LE
  import:  layout u8 (tr108 tr109 tr110 tr111 h6), first slot u8, second slot u8 (255 none),
           split u16 LE (where the payload divides between the two files)
Long strings of the raw JSON files (LLM replies) are cut to 48 characters to keep seeds small.
"""

import argparse
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def stream_header(chat, streamed, cap=0, split=0):
    flags = (1 if chat else 0) | (0 if streamed else 2)
    return struct.pack("<BHQ", flags, cap, split)


def import_header(layout, first, second=255, split=0):
    return struct.pack("<BBBH", layout, first, second, split)


def shrink(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        v = json.loads(raw)
    except ValueError:
        return raw

    def cut(x):
        if isinstance(x, str):
            return x[:48]
        if isinstance(x, list):
            return [cut(e) for e in x]
        if isinstance(x, dict):
            return {k: cut(e) for k, e in x.items()}
        return x

    return json.dumps(cut(v), separators=(",", ":")).encode()


def manifests():
    for f in sorted(os.listdir(os.path.join(ROOT, "experiments"))):
        if f.endswith(".yaml"):
            with open(os.path.join(ROOT, "experiments", f), "rb") as fh:
                data = fh.read()
            # Planned alone (no sibling manifests): one that depends on another is refused.
            prefix = "err" if b"\ndepends_on:" in data else "ok"
            write("manifest", f"{prefix}-{f}", data)
    inv = os.path.join(ROOT, "tests", "fixtures", "invalid")
    for f in sorted(os.listdir(inv)):
        if f.endswith(".yaml"):
            with open(os.path.join(inv, f), "rb") as fh:
                write("manifest", f"err-{f}", fh.read())


def manifest_specs():
    # Any bytes decode: the base manifest index, then edits.
    write("manifest_spec", "base-0", b"\x00")
    write("manifest_spec", "base-1", b"\x01")
    write("manifest_spec", "base-2", b"\x02")
    write("manifest_spec", "edits-a", bytes(range(0, 64)))
    write("manifest_spec", "edits-b", bytes((i * 37 + 11) % 256 for i in range(96)))


OLLAMA_INLINE = {
    # (name, chat, streamed, cap, split, body)
    "err-stream-error": (False, True, 0, 0, b'{"error":"model \'x\' not found"}\n'),
    "err-cut-mid-line": (False, True, 0, 3, b'{"response":"a","done":false}\n{"response":"b","do'),
    "err-no-done": (True, True, 0, 0, b'{"message":{"content":"a"},"done":false}\n'),
    "err-too-large": (False, True, 16, 5, b'{"response":"a long line","done":true}\n'),
    "ok-crlf-blank-lines": (False, True, 0, 2,
                            b'{"response":"a","done":false}\r\n\r\n{"response":"","done":true}\r\n'),
    "ok-last-line-without-newline": (False, True, 0, 0, b'{"response":"a","done":true}'),
}

OPENAI_INLINE = {
    "err-event-error": (True, True, 0, 0, b'event: error\ndata: {"message":"boom"}\n\n'),
    "err-error-field": (True, True, 0, 0, b'error: {"error":{"message":"x"}}\n\n'),
    "err-no-done": (False, True, 0, 4, b'data: {"choices":[{"text":"a"}]}\n\n'),
    "err-empty-body": (False, False, 0, 0, b"  \n"),
    "ok-finish-reason-without-done": (
        True, True, 0, 9,
        b': ping\n\nid: 1\ndata: {"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}\n\n'),
    "ok-done-without-newline": (False, True, 0, 0,
                                b'data: {"choices":[{"text":"a"}],"usage":{"completion_tokens":1}}\n\ndata: [DONE]'),
}


def streams(captured):
    for name, (chat, streamed, cap, split, body) in OLLAMA_INLINE.items():
        write("ollama_stream", name, stream_header(chat, streamed, cap, split) + body)
    for name, (chat, streamed, cap, split, body) in OPENAI_INLINE.items():
        write("openai_stream", name, stream_header(chat, streamed, cap, split) + body)
    if not captured:
        return
    for f in sorted(os.listdir(captured)):
        with open(os.path.join(captured, f), "rb") as fh:
            body = fh.read()
        stem, ext = os.path.splitext(f)
        proto, api = stem.split("_", 1)
        chat = api == "chat"
        streamed = ext in (".ndjson", ".sse")
        target = "ollama_stream" if proto == "ollama" else "openai_stream"
        write(target, f"ok-{stem}{ext}", stream_header(chat, streamed) + body)
        write(target, f"ok-{stem}-pieces{ext}", stream_header(chat, streamed, 0, 7) + body)
        if streamed:
            # Cut before its end marker: incomplete whatever the protocol.
            write(target, f"err-{stem}-cut{ext}",
                  stream_header(chat, streamed, 0, 3) + body[: len(body) * 2 // 3])


HTTP = {
    "ok-generate-keepalive": b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:11434\r\n"
    b"Content-Type: application/json\r\nContent-Length: 45\r\n\r\n"
    b'{"model":"gemma3:270m","prompt":"hi","stream":true}'[:45]
    + b"GET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n",
    "ok-pipelined": b"GET / HTTP/1.1\r\n\r\n\r\nHEAD / HTTP/1.1\r\n\r\nGET /api/version?x=1 HTTP/1.0\r\n\r\n",
    "ok-chat-close": b"POST /v1/chat/completions HTTP/1.1\r\nconnection: Close\r\ncontent-length: 2\r\n\r\n{}",
    "err-chunked": b"POST /api/chat HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "err-http2": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "err-bad-length": b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "err-no-colon": b"GET / HTTP/1.1\r\nHost\r\n\r\n",
}

JOURNAL = [
    '{"event":"started","run_id":"r1","cells_total":3,"committed":0,"to_run":3,"at_unix_ms":1.0}',
    '{"event":"server_started","endpoint":"a","url":"http://127.0.0.1:18181","pid":42,"at_unix_ms":1.5}',
    '{"event":"cell_started","cell":"0123abcd","attempt":1,"at_unix_ms":2.0}',
    '{"event":"cell_failed","cell":"0123abcd","attempt":1,"kind":"timeout","message":"no reply","retryable":true,"final_attempt":false,"at_unix_ms":3.0}',
    '{"event":"cell_committed","cell":"0123abcd","attempt":2,"cached":false,"at_unix_ms":4.0}',
    '{"event":"server_restarted","endpoint":"a","exit":"signal 9 (SIGKILL)","pid":43,"at_unix_ms":4.5}',
    '{"event":"server_stopped","endpoint":"a","exit":"exit code 0","at_unix_ms":5.0}',
    '{"event":"interrupted","run_id":"r1","at_unix_ms":6.0}',
    '{"event":"finished","run_id":"r1","committed":3,"failed":0,"at_unix_ms":7.0}',
]


def journals():
    full = "\n".join(JOURNAL) + "\n"
    write("journal", "every-event", full)
    write("journal", "torn-tail", full + JOURNAL[2][:20])
    write("journal", "no-final-newline", full.rstrip("\n"))
    write("journal", "damaged-middle", JOURNAL[0] + "\n\x00\xff garbage\n" + JOURNAL[-1] + "\n")
    write("journal", "empty", b"")


def imports(fixtures):
    if not fixtures or not os.path.isdir(fixtures):
        return
    fx = lambda *p: os.path.join(fixtures, *p)
    # TR108 (layout 0): slots as in chimera::fuzzing::ImportLayout::slots.
    tr108 = ["llama3/ollama_quant_bench.csv", "llama3/ollama_param_tuning.csv",
             "llama3/ollama_param_tuning_summary.csv", "gemma3/gemma3_baseline.csv",
             "gemma3/gemma3_param_tuning.csv", "gemma3/gemma3_param_tuning_summary.csv",
             "gemma3/gemma3_baseline.json", "llama3/baseline_ml_metrics.json",
             "llama3/baseline_system_metrics.json"]
    data = [shrink(fx("tr108", p)) for p in tr108]
    for slot in (0, 1, 3, 4):
        write("import", f"ok-tr108-{os.path.basename(tr108[slot])}", import_header(0, slot) + data[slot])
    write("import", "ok-tr108-sweep-and-summary",
          import_header(0, 1, 2, len(data[1])) + data[1] + data[2])
    write("import", "ok-tr108-gemma-sweep-and-summary",
          import_header(0, 4, 5, len(data[4])) + data[4] + data[5])
    write("import", "ok-tr108-baseline-and-json",
          import_header(0, 3, 6, len(data[3])) + data[3] + data[6])
    write("import", "err-tr108-summary-alone", import_header(0, 2) + data[2])
    # TR109 (layout 1).
    a = shrink(fx("tr109", "run_gpu60_ctx256_temp0p6", "data", "metrics.json"))
    write("import", "ok-tr109-run", import_header(1, 0) + a)
    # TR110 (layout 2).
    run = shrink(fx("tr110", "phase_1_test_001", "run_1", "metrics.json"))
    summary = shrink(fx("tr110", "phase_1_test_001", "summary.json"))
    log = json.loads(shrink(fx("tr110", "test_execution_log.json")))
    log["test_results"] = log["test_results"][:2]  # tests 001 and 002 are enough
    log = json.dumps(log, separators=(",", ":")).encode()
    write("import", "ok-tr110-run", import_header(2, 0) + run)
    write("import", "ok-tr110-run-and-summary", import_header(2, 0, 1, len(run)) + run + summary)
    write("import", "ok-tr110-run-and-log", import_header(2, 0, 2, len(run)) + run + log)
    write("import", "err-tr110-summary-alone", import_header(2, 1) + summary)
    # TR111_v2 (layout 3).
    b = shrink(fx("tr111_v2", "baseline_default", "data", "metrics.json"))
    write("import", "ok-tr111-run", import_header(3, 0) + b)
    v2 = shrink(fx("tr111_v2", "gpu80_ctx1024_temp0p6_v2", "data", "metrics.json"))
    write("import", "ok-tr111-rerun", import_header(3, 2) + v2)
    # TR114_v2 (layout 4).
    r1 = shrink(fx("tr114_v2", "baseline-vs-chimera", "test001", "run_1", "metrics.json"))
    s1 = shrink(fx("tr114_v2", "baseline-vs-chimera", "test001", "summary.json"))
    write("import", "ok-h6-run", import_header(4, 0) + r1)
    write("import", "ok-h6-run-and-summary", import_header(4, 0, 1, len(r1)) + r1 + s1)
    homo = shrink(fx("tr114_v2", "chimera-homo", "test013", "run_1", "metrics.json"))
    write("import", "ok-h6-homo-run", import_header(4, 3) + homo)
    write("import", "err-h6-run-in-wrong-folder", import_header(4, 2) + r1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "..", "shared", "fixtures", "chimeraforge"))
    ap.add_argument("--streams")
    args = ap.parse_args()
    for t in ("manifest", "manifest_spec", "ollama_stream", "openai_stream", "emulator_http", "import", "journal"):
        # Without --streams the captured reply seeds are kept (only the inline ones are rewritten).
        if args.streams or t not in ("ollama_stream", "openai_stream"):
            shutil.rmtree(os.path.join(SEEDS, t), ignore_errors=True)
    manifests()
    manifest_specs()
    streams(args.streams)
    for name, data in HTTP.items():
        write("emulator_http", name, data)
    journals()
    imports(args.fixtures)


if __name__ == "__main__":
    main()
