"""One measured LLM request per call, as chimera's `src/backend/` measures it.

* Ollama servers: the official `ollama` Python client (`Client.generate` / `Client.chat`),
  imported only when an Ollama job runs.
* OpenAI-compatible servers (llama-server, vLLM): `httpx` directly, `POST /v1/completions` or
  `/v1/chat/completions`, the Server-Sent-Events stream parsed line by line as bytes arrive
  (a port of the `SseState` of chimera's `src/backend/openai.rs`).

Every call returns `(record, text)`: `record` is a dict holding only fields of chimera's
`AgentRecord` (`src/workload/protocol.rs`), `text` the generated text (the agent workflow
builds the report prompt from the analysis text). A call never raises for a failed request:
the failure is the record's `error` ({kind, message, status?}) with chimera's kinds.

Timing (`time.perf_counter`): `sent_at_unix_ms` is the wall clock right before the request is
handed to the HTTP stack; `ttft_ms` send → the first chunk whose text is non-empty; `itl_ms`
the gaps between consecutive chunks with text; `chunks` every chunk received (1 for a reply
that was not streamed, as chimera's own client counts it); `e2e_ms` send → end of the
response (or the failure). Server timings in nanoseconds (Ollama) are written in ms.

The per-request timeout bounds every wait for bytes (httpx's connect/read/write timeouts) and
the whole request (checked whenever a chunk arrives).
"""

import http
import json
import time

MAX_ERROR_CHARS = 500
MAX_ERROR_BODY_BYTES = 64 * 1024
EMPTY_ERROR = "the server streamed an error without a message"

# Rust's `u8::is_ascii_whitespace` (no vertical tab, unlike bytes.strip()).
_ASCII_WS = b" \t\n\x0c\r"


class RequestFailed(Exception):
    """A failed request: one of chimera's error kinds, a message, the HTTP status if any."""

    def __init__(self, kind, message, status=None):
        Exception.__init__(self, message)
        self.kind = kind
        self.message = message
        self.status = status


def truncate_chars(s):
    """At most MAX_ERROR_CHARS characters of `s`, with `…` when cut."""
    if len(s) > MAX_ERROR_CHARS:
        return s[:MAX_ERROR_CHARS] + "\u2026"
    return s


def lossy_prefix(line):
    """The start of a line (bytes), for messages."""
    return truncate_chars(line[: 4 * MAX_ERROR_CHARS].decode("utf-8", "replace"))


def status_line(status):
    """`StatusCode`'s Display: `404 Not Found`."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "<unknown status code>"
    return "%d %s" % (status, reason)


def _compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def error_message(status, body):
    """The text of an error body: its `error` string, `error.message`, a top-level
    `message`, or the body itself; trimmed and bounded, `HTTP <status>` when empty."""
    try:
        v = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        v = None
        message = body.decode("utf-8", "replace")
    else:
        e = v.get("error") if isinstance(v, dict) else None
        if isinstance(e, str):
            message = e
        elif isinstance(e, dict):
            m = e.get("message")
            message = m if isinstance(m, str) else _compact(e)
        elif isinstance(v, dict) and "error" in v:
            message = _compact(e)
        else:
            m = v.get("message") if isinstance(v, dict) else None
            message = m if isinstance(m, str) else body.decode("utf-8", "replace")
    message = message.strip()
    if not message:
        return "HTTP " + status_line(status)
    return truncate_chars(message)


def map_status(status, message, model_missing):
    """404 is a missing model when the server says so, 400 a bad request, 503 a full queue,
    other 5xx a server error, anything else an HTTP status."""
    if status == 404 and model_missing:
        kind = "model_not_found"
    elif status == 400:
        kind = "bad_request"
    elif status == 503:
        kind = "queue_full"
    elif 500 <= status <= 599:
        kind = "server_error"
    else:
        kind = "http_status"
    return RequestFailed(kind, message, status)


def says_model_missing(message):
    m = message.lower()
    return "model" in m and ("not found" in m or "does not exist" in m or "not exist" in m)


def timeout_failed(timeout_s, status=None):
    return RequestFailed(
        "timeout",
        "no complete response within the timeout of %d ms" % int(timeout_s * 1000),
        status,
    )


def keep_alive_value(k):
    """`keep_alive` on the wire: a plain number is sent as a number, anything else as is."""
    t = k.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
        if f == f and f not in (float("inf"), float("-inf")):
            return f
    except ValueError:
        pass
    return k


def _ms(seconds):
    return seconds * 1000.0


def _nonneg_int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _nonneg_ms(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if v == v and v >= 0.0 and v != float("inf") else None


def _ns_to_ms(v):
    v = _nonneg_int(v)
    return None if v is None else v / 1e6


class Meter(object):
    """The client's clock for one request and the text so far."""

    def __init__(self, stream, timeout_s):
        self.stream = stream
        self.timeout_s = timeout_s
        self.sent_at_unix_ms = time.time() * 1000.0
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + timeout_s
        self.ttft_ms = None
        self.itl_ms = []
        self.chunks = 0
        self.last_text_at = None
        self.parts = []
        self.server = {}
        self.done_reason = None

    def check_deadline(self, status=None):
        if time.perf_counter() > self.deadline:
            raise timeout_failed(self.timeout_s, status)

    def on_text(self, text, at):
        """The text of one chunk that arrived at `at` (empty text is not a token)."""
        if not text:
            return
        self.parts.append(text)
        if self.stream:
            if self.last_text_at is None:
                self.ttft_ms = _ms(at - self.t0)
            else:
                self.itl_ms.append(_ms(at - self.last_text_at))
            self.last_text_at = at

    def text(self):
        return "".join(self.parts)

    def record(self, stage, index, end, failure=None):
        rec = {
            "stage": stage,
            "index": index,
            "sent_at_unix_ms": self.sent_at_unix_ms,
            "e2e_ms": max(0.0, _ms(end - self.t0)),
            "chunks": self.chunks,
            "response_chars": len(self.text()),
        }
        if self.ttft_ms is not None:
            rec["ttft_ms"] = self.ttft_ms
        if self.itl_ms:
            rec["itl_ms"] = self.itl_ms
        if failure is None:
            for k in ("prompt_tokens", "output_tokens"):
                v = _nonneg_int(self.server.get(k))
                if v is not None:
                    rec[k] = v
            for k in ("load_ms", "prompt_eval_ms", "eval_ms", "total_ms"):
                v = _nonneg_ms(self.server.get(k))
                if v is not None:
                    rec[k] = v
            if isinstance(self.done_reason, str):
                rec["done_reason"] = self.done_reason
        else:
            err = {"kind": failure.kind, "message": failure.message}
            if failure.status is not None:
                err["status"] = int(failure.status)
            rec["error"] = err
        return rec


def _unexpected(e):
    return RequestFailed(
        "malformed_response", truncate_chars("%s: %s" % (type(e).__name__, e))
    )


# ------------------------------------------------------------------------------------------
# Ollama (the official client)
# ------------------------------------------------------------------------------------------


class OllamaBackend(object):
    """`ollama.Client(host=url, timeout=timeout_s)`; `generate` or `chat`."""

    def __init__(self, job):
        import ollama  # imported here: the OpenAI path works without the package

        self.ollama = ollama
        self.job = job
        # trust_env=False: a benchmark talks to its server directly, never through a proxy
        # from the environment (chimera's own client ignores proxies too).
        self.client = ollama.Client(host=job.url, timeout=job.timeout_s, trust_env=False)

    def close(self):
        try:
            self.client._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    def _call(self, prompt):
        job = self.job
        kwargs = {"model": job.model, "stream": job.stream}
        if job.options:
            kwargs["options"] = dict(job.options)
        if job.keep_alive is not None:
            kwargs["keep_alive"] = keep_alive_value(job.keep_alive)
        if job.api == "chat":
            return self.client.chat(messages=[{"role": "user", "content": prompt}], **kwargs)
        return self.client.generate(prompt=prompt, **kwargs)

    def _on_part(self, m, part, at):
        """One chunk (or the reply not streamed); True when it is the final one."""
        if part.done is None:
            raise RequestFailed("malformed_response", "a line without `done`")
        if self.job.api == "chat":
            msg = part.message
            text = (msg.content if msg is not None else None) or ""
        else:
            if part.response is None:
                raise RequestFailed("malformed_response", "a line without `response`")
            text = part.response
        m.chunks += 1
        m.on_text(text, at)
        if part.done:
            m.done_reason = part.done_reason
            m.server = {
                "load_ms": _ns_to_ms(part.load_duration),
                "prompt_tokens": part.prompt_eval_count,
                "prompt_eval_ms": _ns_to_ms(part.prompt_eval_duration),
                "output_tokens": part.eval_count,
                "eval_ms": _ns_to_ms(part.eval_duration),
                "total_ms": _ns_to_ms(part.total_duration),
            }
            return True
        return False

    def send(self, prompt, stage, index):
        import httpx
        import pydantic

        ollama = self.ollama
        job = self.job
        m = Meter(job.stream, job.timeout_s)
        received = False
        done = False
        done_at = None
        try:
            result = self._call(prompt)
            if job.stream:
                try:
                    # The loop runs on after the final chunk to the end of the body (so the
                    # connection is reused); nothing after the final chunk counts.
                    for part in result:
                        at = time.perf_counter()
                        received = True
                        if done:
                            continue
                        m.check_deadline()
                        done = self._on_part(m, part, at)
                        if done:
                            done_at = at
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                if not done:
                    raise RequestFailed(
                        "truncated",
                        "the stream ended without `done: true` after %d chunk(s)" % m.chunks,
                    )
            else:
                at = time.perf_counter()
                received = True
                done = self._on_part(m, result, at)
                if not done:
                    raise RequestFailed(
                        "truncated",
                        "the stream ended without `done: true` after %d chunk(s)" % m.chunks,
                    )
        except RequestFailed as f:
            failure = f
        except ollama.ResponseError as e:
            message = e.error if isinstance(e.error, str) else _compact(e.error)
            if e.status_code is None or e.status_code < 0:
                # An {"error": ...} line after a 200.
                message = message if message.strip() else EMPTY_ERROR
                failure = RequestFailed("stream_error", truncate_chars(message))
            else:
                message = message.strip()
                message = truncate_chars(message) if message else "HTTP " + status_line(e.status_code)
                failure = map_status(e.status_code, message, True)
        except httpx.TimeoutException:
            failure = timeout_failed(job.timeout_s)
        except (ConnectionError, httpx.ConnectError) as e:
            failure = RequestFailed("connection_refused", truncate_chars("cannot connect: %s" % e))
        except httpx.TransportError as e:
            if received:
                failure = RequestFailed(
                    "truncated",
                    truncate_chars("the connection failed before `done: true`: %s" % e),
                )
            else:
                failure = RequestFailed("connection_refused", truncate_chars("no response: %s" % e))
        except json.JSONDecodeError as e:
            failure = RequestFailed("malformed_response", truncate_chars("invalid JSON line (%s)" % e))
        except pydantic.ValidationError as e:
            failure = RequestFailed(
                "malformed_response", truncate_chars("unexpected reply: %s" % e)
            )
        except Exception as e:  # noqa: BLE001 - a request never crashes the agent
            failure = _unexpected(e)
        else:
            failure = None
        end = time.perf_counter()
        if failure is not None and done_at is not None:
            # The reply was complete; only the end of its body failed (as chimera's client,
            # the request succeeded and ended with its final chunk).
            failure, end = None, done_at
        return m.record(stage, index, end, failure), m.text()


# ------------------------------------------------------------------------------------------
# OpenAI-compatible servers (httpx)
# ------------------------------------------------------------------------------------------


def openai_path(api):
    return "/v1/chat/completions" if api == "chat" else "/v1/completions"


def openai_body(job, prompt):
    """`model`, `prompt` or `messages`, `stream` (+ `stream_options` when streamed), and the
    set options under their OpenAI / llama-server names; `num_gpu`, `num_ctx` and
    `keep_alive` are start-up settings of these servers and are not sent. A forced length (the
    job's `force_output_tokens: N`) sends `max_tokens: N` in place of `num_predict`,
    `ignore_eos: true` and `min_tokens: N`, as chimera's own client does."""
    body = {"model": job.model}
    if job.api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body["stream"] = job.stream
    if job.stream:
        body["stream_options"] = {"include_usage": True}
    o = job.options
    if o.get("num_predict") is not None and o["num_predict"] >= 0:
        body["max_tokens"] = o["num_predict"]
    for k in ("temperature", "top_p", "top_k", "repeat_penalty", "seed"):
        if o.get(k) is not None:
            body[k] = o[k]
    n = getattr(job, "force_output_tokens", None)
    if n is not None:
        body["max_tokens"] = n
        body["ignore_eos"] = True
        body["min_tokens"] = n
    return body


def sse_line(line):
    """(kind, value) of one SSE line: blank, comment, event, data, error or other."""
    if not line:
        return "blank", b""
    if line[:1] == b":":
        return "comment", b""
    i = line.find(b":")
    if i >= 0:
        field, value = line[:i], line[i + 1 :]
        if value[:1] == b" ":
            value = value[1:]
    else:
        field, value = line, b""
    if field == b"data":
        return "data", value
    if field == b"event":
        return "event", value
    if field == b"error":
        return "error", value
    return "other", b""


def _error_text(e):
    if isinstance(e, str):
        return e
    if isinstance(e, dict):
        m = e.get("message")
        return m if isinstance(m, str) else _compact(e)
    return _compact(e)


def stream_error(payload):
    """A streamed error: the payload's `error.message`, `error`, `message`, or the payload."""
    try:
        v = json.loads(payload.strip(_ASCII_WS))
    except (ValueError, UnicodeDecodeError):
        text = payload.decode("utf-8", "replace").strip()
    else:
        if isinstance(v, dict) and "error" in v:
            text = _error_text(v["error"])
        else:
            text = _error_text(v)
    if not text:
        text = EMPTY_ERROR
    return RequestFailed("stream_error", truncate_chars(text))


def _is_json(b):
    try:
        json.loads(b)
        return True
    except (ValueError, UnicodeDecodeError):
        return False


class SseState(object):
    """Per-request parsing state of an OpenAI-compatible reply."""

    def __init__(self, api, stream, meter):
        self.api = api
        self.stream = stream
        self.m = meter
        self.event = None
        self.done = False
        self.finish_reason = None
        self.usage = None
        self.timings = None

    def on_line(self, line, at):
        kind, value = sse_line(line)
        if kind == "blank":
            self.event = None
        elif kind == "event":
            self.event = value.strip(_ASCII_WS)
        elif kind == "error":
            raise stream_error(value)
        elif kind == "data":
            if self.event == b"error":
                raise stream_error(value)
            payload = value.strip(_ASCII_WS)
            if payload == b"[DONE]":
                self.done = True
                self.complete()
            elif payload:
                self.on_payload(payload, at)

    def on_payload(self, payload, at):
        try:
            reply = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestFailed(
                "malformed_response", "invalid JSON chunk (%s): %s" % (e, lossy_prefix(payload))
            ) from None
        if not isinstance(reply, dict):
            raise RequestFailed(
                "malformed_response", "a chunk that is not an object: %s" % lossy_prefix(payload)
            )
        if reply.get("error") is not None:
            text = _error_text(reply["error"])
            if not text.strip():
                text = EMPTY_ERROR
            raise RequestFailed("stream_error", truncate_chars(text))
        choices = reply.get("choices")
        usage = reply.get("usage")
        timings = reply.get("timings")
        if choices is None and usage is None and timings is None:
            raise RequestFailed(
                "malformed_response",
                "a chunk without `choices`, `usage` or `timings`: %s" % lossy_prefix(payload),
            )
        if choices is not None and not isinstance(choices, list):
            raise RequestFailed("malformed_response", "`choices` is not an array: %s" % lossy_prefix(payload))
        self.m.chunks += 1
        if choices:
            choice = choices[0] if isinstance(choices[0], dict) else {}
            if self.api == "generate":
                text = choice.get("text")
            else:
                holder = choice.get("delta") if self.stream else choice.get("message")
                text = holder.get("content") if isinstance(holder, dict) else None
            self.m.on_text(text if isinstance(text, str) else "", at)
            fr = choice.get("finish_reason")
            if isinstance(fr, str):
                self.finish_reason = fr
        if isinstance(usage, dict):
            self.usage = usage
        if isinstance(timings, dict):
            self.timings = timings

    def complete(self):
        u = self.usage or {}
        t = self.timings or {}
        out = _nonneg_int(u.get("completion_tokens"))
        if out is None:
            out = _nonneg_int(t.get("predicted_n"))
        prompt = _nonneg_int(u.get("prompt_tokens"))
        if prompt is None:
            prompt = _nonneg_int(t.get("prompt_n"))
        self.m.done_reason = self.finish_reason
        self.m.server = {
            "output_tokens": out,
            "prompt_tokens": prompt,
            "prompt_eval_ms": t.get("prompt_ms"),
            "eval_ms": t.get("predicted_ms"),
        }

    def finish(self, rest, end):
        """The body ended before `[DONE]`: `rest` holds the bytes after the last newline
        (streamed) or the whole body (not streamed)."""
        if not self.stream:
            if not rest.strip(_ASCII_WS):
                raise RequestFailed("truncated", "the reply body is empty")
            self.on_payload(rest.strip(_ASCII_WS), end)
            self.done = True
            self.complete()
            return
        if rest.strip(_ASCII_WS):
            line = rest.rstrip(_ASCII_WS)
            kind, value = sse_line(line)
            if kind == "data":
                p = value.strip(_ASCII_WS)
                if not (p == b"[DONE]" or _is_json(p)):
                    raise RequestFailed(
                        "truncated",
                        "the stream ended inside a line (%d bytes after the last newline)"
                        % len(rest),
                    )
            self.on_line(line, end)
        if not self.done:
            if self.finish_reason is None:
                raise RequestFailed(
                    "truncated",
                    "the stream ended without `data: [DONE]` or a `finish_reason` after %d chunk(s)"
                    % self.m.chunks,
                )
            self.done = True
            self.complete()


class OpenAiBackend(object):
    """`httpx.Client`; one new connection per request (llama-server closes a connection right
    after a streamed reply, as chimera's own client assumes)."""

    def __init__(self, job):
        import httpx

        self.httpx = httpx
        self.job = job
        self.client = httpx.Client(
            timeout=httpx.Timeout(job.timeout_s),
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.url = job.url.rstrip("/") + openai_path(job.api)

    def close(self):
        self.client.close()

    def send(self, prompt, stage, index):
        httpx = self.httpx
        job = self.job
        body = json.dumps(openai_body(job, prompt)).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream, application/json",
        }
        m = Meter(job.stream, job.timeout_s)
        status = None
        got_head = False
        state = SseState(job.api, job.stream, m)
        ended = None
        try:
            with self.client.stream("POST", self.url, content=body, headers=headers) as r:
                got_head = True
                status = r.status_code
                if not 200 <= status < 300:
                    err_body = b""
                    for piece in r.iter_bytes():
                        err_body += piece
                        if len(err_body) >= MAX_ERROR_BODY_BYTES:
                            break
                    err_body = err_body[:MAX_ERROR_BODY_BYTES]
                    message = error_message(status, err_body)
                    raise map_status(status, message, says_model_missing(message))
                buf = b""
                for piece in r.iter_bytes():
                    at = time.perf_counter()
                    m.check_deadline(status)
                    buf += piece
                    if not job.stream:
                        continue
                    start = 0
                    while not state.done:
                        nl = buf.find(b"\n", start)
                        if nl < 0:
                            break
                        line = buf[start:nl]
                        if line.endswith(b"\r"):
                            line = line[:-1]
                        start = nl + 1
                        state.on_line(line, at)
                    buf = buf[start:]
                    if state.done:
                        # The reply is complete; what may follow `[DONE]` is not waited
                        # for (the connection is not reused).
                        ended = time.perf_counter()
                        break
                if not state.done:
                    ended = time.perf_counter()
                    state.finish(buf, ended)
        except RequestFailed as f:
            failure = f
        except httpx.TimeoutException:
            failure = timeout_failed(job.timeout_s)
        except httpx.ConnectError as e:
            failure = RequestFailed("connection_refused", truncate_chars("cannot connect: %s" % e))
        except httpx.TransportError as e:
            if got_head:
                failure = RequestFailed(
                    "truncated",
                    truncate_chars("the connection failed before `data: [DONE]`: %s" % e),
                )
            else:
                failure = RequestFailed("connection_refused", truncate_chars("no response: %s" % e))
        except Exception as e:  # noqa: BLE001 - a request never crashes the agent
            failure = _unexpected(e)
        else:
            failure = None
        # The end of the response, before the connection is closed; a failure ends now.
        end = ended if failure is None and ended is not None else time.perf_counter()
        if failure is not None and failure.status is None and status is not None:
            # As chimera's client: the status of the response head, once one arrived.
            failure.status = status
        return m.record(stage, index, end, failure), m.text()


def make_backend(job):
    """The backend of the job's `protocol_kind`."""
    if job.protocol_kind == "ollama":
        return OllamaBackend(job)
    return OpenAiBackend(job)
