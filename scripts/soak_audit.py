#!/usr/bin/env python3
"""The audit at the end of `make soak` (scripts/soak.sh): reads the soak's directory and prints
cells committed, kills survived, duplicates, lost cells, failed cells, injected faults and peak
RSS. It checks the store with its own code (JSON, sizes, SHA-256), not chimera's, so a bug in
chimera's verification cannot hide a bug in its commits. Exit 1 when the soak failed (see the
header of scripts/soak.sh), 0 otherwise."""

import argparse
import collections
import hashlib
import json
import os
import re
import sys

HEX32 = re.compile(r"^[0-9a-f]{32}$")
ASIDE = re.compile(r"^\.(broken|forced)-([0-9a-f]{32})-")
TMP = re.compile(r"^\.tmp-([0-9a-f]{32})-")
RESUME = re.compile(r"campaign `[^`]*` in .*: (\d+) committed, (\d+) to run")
RSS_WARN_RATIO = 1.5


def read_tsv(path):
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        return [dict(zip(head, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def journal(path):
    events = []
    with open(path, "rb") as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except ValueError:
                pass  # a torn last line (a kill mid-append)
    return events


def verify_cell(cell_dir, cell_id):
    """None when the directory is a whole committed cell, else why not."""
    try:
        with open(os.path.join(cell_dir, "MANIFEST.json"), "rb") as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        return f"MANIFEST.json unreadable: {e}"
    if m.get("cell_id") != cell_id:
        return f"MANIFEST.json names {m.get('cell_id')}"
    parts = m.get("parts") or []
    names = {p["name"] for p in parts}
    files = set(os.listdir(cell_dir)) - {"MANIFEST.json"}
    if files != names:
        return f"files {sorted(files)} vs parts {sorted(names)}"
    for p in parts:
        path = os.path.join(cell_dir, p["name"])
        if os.path.getsize(path) != p["bytes"]:
            return f"{p['name']}: {os.path.getsize(path)} bytes, {p['bytes']} listed"
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != p["sha256"].lower():
                return f"{p['name']}: SHA-256 differs"
    return None


def mib(kb):
    return f"{kb / 1024:.1f} MiB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--campaign", required=True)
    ap.add_argument("--soak-ms", type=int, required=True)
    ap.add_argument("--kill-every", type=int, required=True)
    ap.add_argument("--cells", type=int, required=True)
    ap.add_argument("--status-rc", type=int, required=True)
    ap.add_argument("--clk-tck", type=int, default=100)
    a = ap.parse_args()
    camp = os.path.join(a.dir, "data", a.campaign)
    cells_dir = os.path.join(camp, "cells")
    problems = []

    # The plan: every cell id and its kind.
    with open(os.path.join(a.dir, "plan.json")) as f:
        plan = json.load(f)
    kind = {n["id"]: n["kind"] for n in plan["nodes"] if n["kind"] not in ("analysis", "report")}
    warmups = sum(1 for k in kind.values() if k == "warmup")

    # cells/: committed directories (verified here), set-aside copies, unfinished commits.
    committed, broken_now, aside, tmp, stray = set(), {}, collections.Counter(), [], []
    for name in sorted(os.listdir(cells_dir)):
        path = os.path.join(cells_dir, name)
        if HEX32.match(name) and os.path.isdir(path):
            why = verify_cell(path, name)
            if why:
                broken_now[name] = why
            else:
                committed.add(name)
        elif ASIDE.match(name):
            aside[(ASIDE.match(name).group(1), ASIDE.match(name).group(2))] += 1
        elif TMP.match(name):
            tmp.append(name)
        else:
            stray.append(name)
    not_in_plan = sorted(c for c in committed | set(broken_now) if c not in kind)
    broken_aside = sum(n for (what, _), n in aside.items() if what == "broken")

    # The journal.
    events = journal(os.path.join(camp, "journal.jsonl"))
    commits = collections.Counter()
    cached_commits = 0
    attempt_failures = collections.Counter()  # (kind, final)
    last_final_failure = {}
    for e in events:
        ev = e.get("event")
        if ev == "cell_committed":
            commits[e["cell"]] += 1
            cached_commits += bool(e.get("cached"))
            last_final_failure.pop(e["cell"], None)
        elif ev == "cell_failed":
            attempt_failures[(e["kind"], bool(e["final_attempt"]))] += 1
            if e["final_attempt"]:
                last_final_failure[e["cell"]] = e["kind"]

    # Duplicates: more `cell_committed` events for an id than 1 + its set-aside copies.
    set_asides = collections.Counter()
    for (_, cid), n in aside.items():
        set_asides[cid] += n
    duplicates = {c: n for c, n in commits.items() if n > 1 + set_asides[c]}
    # Lost: journaled as committed, but the directory is missing or does not verify now, or a
    # committed directory disappeared between two kills (scripts/soak.sh's check).
    lost = {c: broken_now.get(c, "directory missing") for c in commits if c not in committed}
    disappeared_path = os.path.join(a.dir, "disappeared.txt")
    disappeared = []
    if os.path.exists(disappeared_path):
        with open(disappeared_path) as f:
            disappeared = [l.strip() for l in f if l.strip()]
    for c in disappeared:
        lost.setdefault(c, "disappeared between two kills")
    unrecorded = sum(1 for c in committed if c not in commits)

    # Runs, kills, resumes, log lines.
    runs = read_tsv(os.path.join(a.dir, "runs.tsv"))
    kills = [r for r in runs if r["killed"] == "1" and r["hung"] == "0"]
    hung = [r["run"] for r in runs if r["hung"] == "1"]
    stale_tmp = sum(int(r["stale_tmp"]) for r in runs)
    survived = 0
    resume_mismatch = []
    bad_exits = []
    panics = []
    warnings = collections.Counter()
    for i, r in enumerate(runs):
        log_path = os.path.join(a.dir, "logs", f"run-{int(r['run']):03d}.log")
        text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
        if "panicked" in text:
            panics.append(r["run"])
        for line in text.splitlines():
            if " WARN " in line or " ERROR " in line:
                # The message without its timestamp, cell ids and numbers, to group them.
                msg = line.split(" WARN ", 1)[-1].split(" ERROR ", 1)[-1]
                msg = re.sub(r"[0-9a-f]{32}", "<cell>", msg)
                msg = re.sub(r"\d+", "N", msg)
                warnings[msg[:160]] += 1
        if r["killed"] != "1" and r["rc"] not in ("0", "1"):
            bad_exits.append(f"run {r['run']} exit {r['rc']}")
        if i > 0 and runs[i - 1]["killed"] == "1":
            m = RESUME.search(text)
            if m:
                survived += 1
                before = int(runs[i - 1]["committed_after"])
                if int(m.group(1)) != before:
                    resume_mismatch.append(f"run {r['run']}: resumed {m.group(1)}, {before} on disk")
            else:
                resume_mismatch.append(f"run {r['run']}: no resume line after a kill")
    last_kill_final = bool(runs) and runs[-1]["killed"] == "1" and runs[-1]["phase"] != "final"
    # `.tmp-*` in cells/ at the end are a killed run's, removed by the next open, when the last
    # run was killed; after a run that ended by itself there must be none.
    tmp_ok = bool(runs) and runs[-1]["killed"] == "1"

    # What the emulator injected.
    requests, faults = 0, collections.Counter()
    truth = os.path.join(a.dir, "truth.jsonl")
    if os.path.exists(truth):
        with open(truth, "rb") as f:
            for line in f:
                try:
                    t = json.loads(line)
                except ValueError:
                    continue
                requests += 1
                if t.get("fault") and t["fault"] != "client_disconnected":
                    faults[f"{t['model']} {t['fault']}"] += 1

    # Memory: samples of the soak runs in the first and the last minute, and the final run.
    samples = read_tsv(os.path.join(a.dir, "rss.tsv"))
    soak = [s for s in samples if s["phase"] == "soak"]
    end = a.soak_ms

    def window(lo, hi):
        w = [s for s in soak if lo <= int(s["t_ms"]) < hi]
        if not w:
            return None
        return (
            max(int(s["vmhwm_kb"]) for s in w),
            max(int(s["vmrss_kb"]) for s in w),
            len({s["run"] for s in w}),
        )

    first = window(0, 60_000)
    last = window(max(0, end - 60_000), end + 1)

    # CPU per committed cell of the runs alive in a window (start-up included: planning and
    # the resume scan).
    cpu_of_run = {}
    for s_ in samples:
        cpu_of_run[s_["run"]] = max(cpu_of_run.get(s_["run"], 0), int(s_.get("cpu_ticks") or 0))
    gained, prev = {}, 0
    for r in runs:
        gained[r["run"]] = int(r["committed_after"]) - prev
        prev = int(r["committed_after"])

    def cpu_per_cell(lo, hi):
        alive = {s_["run"] for s_ in soak if lo <= int(s_["t_ms"]) < hi}
        cells_ = sum(max(gained.get(r, 0), 0) for r in alive)
        ticks = sum(cpu_of_run.get(r, 0) for r in alive)
        return (1000 * ticks / a.clk_tck / cells_) if cells_ else None, cells_
    final = [s for s in samples if s["phase"] == "final"]

    # Report.
    singles = [c for c in committed if kind.get(c) == "single"]
    warm_done = [c for c in committed if kind.get(c) == "warmup"]
    failed = {c: k for c, k in last_final_failure.items() if c not in committed}
    not_run = len(kind) - len(committed & set(kind)) - len(failed)
    p = print
    p(f"soak results ({a.soak_ms / 60000:.1f} min, SIGKILL every {a.kill_every} s)")
    p(f"  cells planned         {len(kind)} ({len(kind) - warmups} single + {warmups} warm-ups)")
    p(f"  cells committed       {len(committed & set(kind))} of {len(kind)}: "
      f"{len(singles)} of {len(kind) - warmups} single cells, {len(warm_done)} of {warmups} warm-ups "
      f"(verified here: sizes and SHA-256 of every part)")
    p(f"  cells failed          {len(failed)} (last attempt failed for good, injected faults: "
      f"{', '.join(f'{k} {n}' for k, n in sorted(collections.Counter(failed.values()).items())) or 'none'})")
    p(f"  cells not run         {not_run} (blocked behind a failed warm-up, or never reached)")
    p(f"  kills survived        {survived} of {len(kills)} SIGKILLs"
      + (" (the last one, at time-up, is followed by the final run)" if last_kill_final else ""))
    ended = collections.Counter(r["rc"] for r in runs if r["killed"] != "1")
    p(f"  runs                  {len(runs)} ({len(kills)} killed; ended on their own: "
      f"{', '.join(f'exit {rc} × {n}' for rc, n in sorted(ended.items())) or 'none'})")
    p(f"  duplicates            {len(duplicates)} (ids with more cell_committed events than 1 + set-asides; "
      f"{cached_commits} cache adoptions among {sum(commits.values())} events)")
    p(f"  lost                  {len(lost)} (journaled committed but missing or not verifying: "
      f"{sum(1 for c in commits if c not in committed)}; disappeared between kills: {len(disappeared)})")
    p(f"  set aside as broken   {broken_aside} .broken-*, {len(broken_now)} committed directories failing verification now")
    p(f"  cells/ leftovers      {len(tmp)} .tmp-*{' (the last run was killed)' if tmp_ok else ''}, "
      f"{len(stray)} other, {len(not_in_plan)} committed ids not in the plan; "
      f"{stale_tmp} .tmp-* left by a killed run and not removed by the next one")
    p(f"  commits not journaled {unrecorded} (killed between the rename and the journal line; "
      f"at most 2 per kill = {2 * len(kills)})")
    if requests:
        nf = sum(faults.values())
        p(f"  faults injected       {nf} of {requests} requests ({100 * nf / requests:.2f} %): "
          + ", ".join(f"{k} {n}" for k, n in sorted(faults.items())))
    retried = sum(n for (k, fin), n in attempt_failures.items() if not fin)
    final_n = sum(n for (k, fin), n in attempt_failures.items() if fin)
    p(f"  failed attempts       {retried} retried, {final_n} final: "
      + ", ".join(f"{k}{' (final)' if fin else ''} {n}" for (k, fin), n in sorted(attempt_failures.items())))
    if first and last:
        ratio = last[0] / first[0]
        p(f"  peak RSS, 1st minute  {mib(first[0])} VmHWM ({first[0]} kB), sampled VmRSS max {mib(first[1])}, {first[2]} process(es)")
        p(f"  peak RSS, last minute {mib(last[0])} VmHWM ({last[0]} kB), sampled VmRSS max {mib(last[1])}, {last[2]} process(es)")
        p(f"  RSS ratio last/first  {ratio:.2f} (VmHWM)")
        if ratio > RSS_WARN_RATIO:
            p(f"WARNING: peak RSS in the last minute is {ratio:.2f} × the first minute's (threshold {RSS_WARN_RATIO})")
    else:
        p("  peak RSS              no samples")
    c1, n1 = cpu_per_cell(0, 60_000)
    c2, n2 = cpu_per_cell(max(0, end - 60_000), end + 1)
    if c1 is not None and c2 is not None:
        p(f"  CPU per cell          {c1:.1f} ms in the runs of the first minute ({n1} cells), "
          f"{c2:.1f} ms in the last ({n2} cells), start-up included")
    if final:
        fh = max(int(s["vmhwm_kb"]) for s in final)
        p(f"  final run             peak {mib(fh)} VmHWM over {len(final) / 2:.0f} s, exit {runs[-1]['rc']}")
    with open(os.path.join(a.dir, "status.txt")) as f:
        st = f.read()
    tail = [l for l in st.splitlines() if l.startswith(("complete", "a resume"))]
    p(f"  chimera status --verify  exit {a.status_rc}: {tail[0] if tail else '(no summary line)'}")
    if "failed verification" in st:
        problems.append("chimera status --verify reports cells that failed verification")
    if warnings:
        p("  log warnings/errors (grouped):")
        for msg, n in warnings.most_common(8):
            p(f"    {n:6d} × {msg}")

    if duplicates:
        problems.append(f"{len(duplicates)} cell(s) committed twice: {sorted(duplicates.items())[:5]}")
    if lost:
        problems.append(f"{len(lost)} lost cell(s): {sorted(lost.items())[:5]}")
    if broken_aside or broken_now:
        problems.append(f"{broken_aside + len(broken_now)} committed director(ies) failed verification")
    if (tmp and not tmp_ok) or stray or not_in_plan:
        problems.append(f"unexpected entries in cells/: {(tmp + stray + not_in_plan)[:5]}")
    if stale_tmp:
        problems.append(f"{stale_tmp} .tmp-* directories survived the next run's open")
    if resume_mismatch:
        problems.append(f"resume after a kill: {resume_mismatch[:5]}")
    if bad_exits:
        problems.append(f"unexpected exits: {bad_exits[:5]}")
    if panics:
        problems.append(f"panics in runs {panics[:5]}")
    if hung:
        problems.append(f"run(s) {hung} wrote nothing to the journal for 120 s and were killed (hang)")
    if a.status_rc != 0:
        problems.append(f"chimera status --verify exited {a.status_rc}")
    if unrecorded > 2 * len(kills):
        problems.append(f"{unrecorded} commits without a journal line for {len(kills)} kills")
    print()
    if problems:
        for pr in problems:
            print(f"FAIL: {pr}")
        return 1
    print("PASS: no cell committed twice, none lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
