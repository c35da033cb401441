#!/usr/bin/env python3
"""chimera's reference Python agent for `command` workloads.

    python3 chimera_agent.py --job JOB.json
    python3 chimera_agent.py --job JOB.json --print-prompts [--analysis-text FILE]

Reads the job file chimera wrote (`docs/agent-protocol.md`), does its task the way chimera's
in-process workflow does it, and appends one JSON record per LLM request to the job's
`records` file:

* `single_inference`: one request per prompt (stage `single`, index = its position);
* `persona`: one request (stage `persona`, index 0);
* `agent_workflow`: ingest `corpus_dir` (none: an empty ingest), the analysis request (stage
  `analysis`, index 0) and, only when it succeeded, the report request built from its text
  (stage `report`, index 1). The prompts are byte-identical to chimera's Rust workflow.

`--print-prompts` sends nothing and prints the prompts as one JSON object:
`{"analysis_prompt": ..., "report_prompt": ...}` for an agent workflow (the report prompt
built from the text of `--analysis-text FILE`; "" without it), `{"prompts": [...]}` for the
other tasks.

Exit status: 0 when the task ran (failed requests are records with an `error`), 1 when the
records file cannot be written, 2 for a usage or job error, 3 for corpus layout drift
(`expected_files` differs from the files found; no record is written).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chimera_workload as workload  # noqa: E402

PROTOCOL_VERSION = 1

EXIT_OK = 0
EXIT_RECORDS = 1
EXIT_USAGE = 2
EXIT_DRIFT = 3

PROG = "chimera_agent"


class JobError(Exception):
    """A job file that cannot be used (exit 2)."""


U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

# Options: name → kind (`deny_unknown_fields` in chimera's `Options`).
OPTION_KINDS = {
    "num_gpu": "u32",
    "num_ctx": "u32",
    "temperature": "f64",
    "top_p": "f64",
    "top_k": "u32",
    "repeat_penalty": "f64",
    "num_predict": "i64",
    "seed": "u64",
}

JOB_FIELDS = {
    # name: (kind, required)
    "protocol": ("u32", True),
    "cell_id": ("str", True),
    "agent": ("str", True),
    "role": ("str", True),
    "url": ("str", True),
    "protocol_kind": ("str", True),
    "model": ("str", True),
    "api": ("str", True),
    "stream": ("bool", True),
    "keep_alive": ("opt_str", False),
    "options": ("options", True),
    "force_output_tokens": ("opt_u32", False),
    "timeout_s": ("f64", True),
    "task": ("task", True),
    "corpus_dir": ("opt_str", False),
    "records": ("str", True),
    "seed": ("u64", True),
    "runtime": ("opt_str", False),
    "language": ("opt_str", False),
}


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check(kind, v, where):
    """`v` as a value of `kind` (chimera's serde types), or JobError naming `where`."""

    def bad(what):
        return JobError("`%s`: %s, found %s" % (where, what, json.dumps(v)[:80]))

    if kind == "str":
        if not isinstance(v, str):
            raise bad("expected a string")
        return v
    if kind == "opt_str":
        if v is not None and not isinstance(v, str):
            raise bad("expected a string or null")
        return v
    if kind == "opt_u32":
        if v is not None and (not _is_int(v) or not 0 <= v <= U32_MAX):
            raise bad("expected an integer (u32) or null")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            raise bad("expected a boolean")
        return v
    if kind in ("u32", "u64", "i64"):
        lo, hi = {"u32": (0, U32_MAX), "u64": (0, U64_MAX), "i64": (I64_MIN, I64_MAX)}[kind]
        if not _is_int(v) or not lo <= v <= hi:
            raise bad("expected an integer (%s)" % kind)
        return v
    if kind == "f64":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("expected a number")
        return float(v)
    raise AssertionError(kind)


def _check_options(v):
    if not isinstance(v, dict):
        raise JobError("`options`: expected an object")
    out = {}
    for k, x in v.items():
        if k not in OPTION_KINDS:
            raise JobError(
                "`options`: unknown field `%s`, expected one of %s" % (k, ", ".join(OPTION_KINDS))
            )
        if x is None:
            continue
        out[k] = _check(OPTION_KINDS[k], x, "options." + k)
    return out


def _check_task(v):
    if not isinstance(v, dict):
        raise JobError("`task`: expected an object")
    kind = v.get("kind")
    fields = {
        "single_inference": {"prompts": True},
        "agent_workflow": {
            "analysis_template": True,
            "report_template": True,
            "expected_files": False,
        },
        "persona": {"prompt": True},
    }.get(kind)
    if fields is None:
        raise JobError(
            "`task.kind`: unknown variant %s, expected single_inference, agent_workflow or persona"
            % json.dumps(kind)
        )
    for k in v:
        if k != "kind" and k not in fields:
            raise JobError("`task`: unknown field `%s` for kind %s" % (k, kind))
    for k, required in fields.items():
        if required and k not in v:
            raise JobError("`task`: missing field `%s`" % k)
    task = {"kind": kind}
    if kind == "single_inference":
        prompts = v["prompts"]
        if not isinstance(prompts, list):
            raise JobError("`task.prompts`: expected an array of strings")
        task["prompts"] = [_check("str", p, "task.prompts[%d]" % i) for i, p in enumerate(prompts)]
    elif kind == "persona":
        task["prompt"] = _check("str", v["prompt"], "task.prompt")
    else:
        task["analysis_template"] = _check("str", v["analysis_template"], "task.analysis_template")
        task["report_template"] = _check("str", v["report_template"], "task.report_template")
        ef = v.get("expected_files")
        task["expected_files"] = None if ef is None else _check("u32", ef, "task.expected_files")
    return task


class Job(object):
    """The job file, checked against chimera's `AgentJob` (unknown fields are refused)."""

    def __init__(self, raw):
        if not isinstance(raw, dict):
            raise JobError("expected a JSON object")
        for k in raw:
            if k not in JOB_FIELDS:
                raise JobError("unknown field `%s`" % k)
        for k, (kind, required) in JOB_FIELDS.items():
            if k not in raw:
                if required:
                    raise JobError("missing field `%s`" % k)
                setattr(self, k, None)
                continue
            v = raw[k]
            if kind == "options":
                v = _check_options(v)
            elif kind == "task":
                v = _check_task(v)
            else:
                v = _check(kind, v, k)
            setattr(self, k, v)
        if self.protocol != PROTOCOL_VERSION:
            raise JobError(
                "`protocol`: version %d is not supported (this agent speaks %d)"
                % (self.protocol, PROTOCOL_VERSION)
            )
        if self.protocol_kind not in ("ollama", "openai"):
            raise JobError(
                "`protocol_kind`: unknown variant %s, expected ollama or openai"
                % json.dumps(self.protocol_kind)
            )
        if self.api not in ("generate", "chat"):
            raise JobError("`api`: %s, expected generate or chat" % json.dumps(self.api))
        if not (self.timeout_s > 0 and self.timeout_s != float("inf")):
            raise JobError("`timeout_s`: must be a positive number")


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def load_job(path):
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise JobError("cannot read the job file %s: %s" % (path, e.strerror or e)) from None
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise JobError("the job file %s is not valid JSON: %s" % (path, e)) from None
    try:
        return Job(raw)
    except JobError as e:
        raise JobError("the job file %s: %s" % (path, e)) from None


def _ingest(job):
    if job.corpus_dir is None:
        return workload.IngestResult.empty()
    return workload.ingest(job.corpus_dir)


def _workflow(job):
    t = job.task
    return workload.AgentWorkflow(
        t["analysis_template"], t["report_template"], t["expected_files"], job.options, _ingest(job)
    )


def print_prompts(job, analysis_text_path):
    task = job.task
    if task["kind"] == "agent_workflow":
        wf = _workflow(job)
        if analysis_text_path is None:
            report = ""
        else:
            try:
                with open(analysis_text_path, "rb") as fh:
                    text = fh.read().decode("utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise JobError("cannot read --analysis-text %s: %s" % (analysis_text_path, e))
            report = wf.report_prompt(text)
        obj = {"analysis_prompt": wf.analysis_prompt(), "report_prompt": report}
    elif task["kind"] == "persona":
        obj = {"prompts": [task["prompt"]]}
    else:
        obj = {"prompts": list(task["prompts"])}
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class RecordsError(Exception):
    """The records file cannot be written (exit 1)."""


class Records(object):
    """The records file: one JSON object per line, appended and flushed per line."""

    def __init__(self, path):
        self.path = path
        try:
            self.fh = open(path, "a", encoding="utf-8")
        except OSError as e:
            raise RecordsError("cannot open the records file %s: %s" % (path, e.strerror or e))

    def write(self, rec):
        line = json.dumps(rec, allow_nan=False) + "\n"
        try:
            self.fh.write(line)
            self.fh.flush()
        except OSError as e:
            raise RecordsError("cannot write the records file %s: %s" % (self.path, e.strerror or e))

    def close(self):
        try:
            self.fh.close()
        except OSError:
            pass


def run(job):
    """Runs the task; the workflow's prompts are built before anything is sent."""
    task = job.task
    wf = _workflow(job) if task["kind"] == "agent_workflow" else None
    import chimera_backends

    try:
        backend = chimera_backends.make_backend(job)
    except ImportError as e:
        raise JobError(
            "the %s client is not installed (%s): pip install -r %s"
            % (
                job.protocol_kind,
                e,
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt"),
            )
        ) from None
    try:
        records = Records(job.records)
        try:
            if task["kind"] == "single_inference":
                for i, prompt in enumerate(task["prompts"]):
                    rec, _ = backend.send(prompt, "single", i)
                    records.write(rec)
            elif task["kind"] == "persona":
                rec, _ = backend.send(task["prompt"], "persona", 0)
                records.write(rec)
            else:
                rec, text = backend.send(wf.analysis_prompt(), "analysis", 0)
                rec["files_ingested"] = wf.ingest.files
                records.write(rec)
                if "error" not in rec:
                    rec, _ = backend.send(wf.report_prompt(text), "report", 1)
                    records.write(rec)
        finally:
            records.close()
    finally:
        backend.close()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="chimera's reference Python agent for command workloads "
        "(docs/agent-protocol.md).",
    )
    parser.add_argument(
        "--job",
        default=os.environ.get("CHIMERA_JOB"),
        help="the job file chimera wrote (default: $CHIMERA_JOB)",
    )
    parser.add_argument(
        "--print-prompts",
        action="store_true",
        help="send nothing; print the prompts as one JSON object",
    )
    parser.add_argument(
        "--analysis-text",
        metavar="FILE",
        help="with --print-prompts: the analysis response the report prompt is built from",
    )
    args = parser.parse_args(argv)
    if not args.job:
        parser.error("--job is required (or set CHIMERA_JOB)")
    if args.analysis_text is not None and not args.print_prompts:
        parser.error("--analysis-text needs --print-prompts")
    try:
        job = load_job(args.job)
        if args.print_prompts:
            print_prompts(job, args.analysis_text)
        else:
            run(job)
    except JobError as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        return EXIT_USAGE
    except workload.LayoutDrift as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        return EXIT_DRIFT
    except RecordsError as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        return EXIT_RECORDS
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
