#!/usr/bin/env python3
"""Python peer for `make bench-harness`: the same streaming load through the `ollama` Python
client (async), timed the way a Python harness would time it.

Prints one JSON object: the requests with their prompt, client TTFT and inter-chunk gaps (ms),
the output token count, and the CPU time this process spent (user + system, seconds).
"""
import argparse
import asyncio
import json
import resource
import sys
import time

try:
    import ollama
except ImportError:  # pragma: no cover - reported to the caller
    print(json.dumps({"error": "the `ollama` Python package is missing: pip install ollama"}))
    sys.exit(3)


async def one(client, model, prompt):
    t0 = time.perf_counter_ns()
    first = None
    last = None
    gaps = []
    tokens = 0
    async for chunk in await client.generate(model=model, prompt=prompt, stream=True):
        now = time.perf_counter_ns()
        text = chunk.get("response") if isinstance(chunk, dict) else chunk.response
        done = chunk.get("done") if isinstance(chunk, dict) else chunk.done
        if text:
            if first is None:
                first = now
            else:
                gaps.append((now - last) / 1e6)
            last = now
        if done:
            tokens = (chunk.get("eval_count") if isinstance(chunk, dict) else chunk.eval_count) or 0
    return {
        "prompt": prompt,
        "ttft_ms": None if first is None else (first - t0) / 1e6,
        "gaps_ms": gaps,
        "output_tokens": tokens,
    }


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", default="bench")
    ap.add_argument("--streams", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--prefix", required=True)
    args = ap.parse_args()
    client = ollama.AsyncClient(host=args.url)
    # Warm the connection pool outside the measurement.
    await client.list()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    results = []
    for r in range(args.rounds):
        jobs = [one(client, args.model, f"{args.prefix} round {r} stream {i}") for i in range(args.streams)]
        results.extend(await asyncio.gather(*jobs))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"requests": results, "cpu_s": cpu}))


if __name__ == "__main__":
    asyncio.run(main())
