"""Secrets never leave the process through us: API keys, auth headers and token-shaped strings in prompts,
tool inputs and tool results appear in no span attribute, span event, log record or (keys and headers)
JSONL line — with content capture off and on."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from otel_agent_trace import trace_tool
from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Reply, text_reply, tool_reply

# Header and key values: only ever sent as credentials.
API_KEY = "sk-ant-api03-K3yOnlyInTheClient0000aaaa1111bbbb2222cccc3333dddd-xyzAA"
DEFAULT_AUTHORIZATION = "Bearer hdr-default-7Qm2Vt9Lp4Zc8Rw1"
EXTRA_AUTHORIZATION = "Bearer hdr-extra-3Nf6Yk0Hs5Gd2Jx8"
EXTRA_X_API_KEY = "sk-ant-api03-K3yInExtraHeaders0000eeee5555ffff6666gggg7777-xyzAA"
CREDENTIALS = (API_KEY, "hdr-default-7Qm2Vt9Lp4Zc8Rw1", "hdr-extra-3Nf6Yk0Hs5Gd2Jx8", EXTRA_X_API_KEY)

# Token shapes people paste into prompts and that tools read or print.
PROMPT_SECRETS = {
    "anthropic key": "sk-ant-api03-PastedInPrompt0000hhhh8888iiii9999jjjj0000kkkk-xyzAA",
    "openai key": "sk-proj-PastedInPrompt1111aaaa2222bbbb3333",
    "github token": "ghp_PastedInPrompt4444cccc5555dddd6666eeee",
    "aws key id": "AKIAPASTEDINPROMPT77",
    "slack token": "xoxb-2222333344445555-PastedInPrompt",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYXN0ZWQtaW4tcHJvbXB0In0.c2lnbmF0dXJlLXBhc3RlZC1pbi1wcm9tcHQ",
    "password": "hunter2-PastedInSystemPrompt",
    "private key": "MIIEpAIBAAKCAQEAPastedInPromptPrivateKeyBody",
}
TOOL_INPUT_SECRETS = {
    "github token in a command": "ghp_InToolInput6666ffff7777gggg8888hhhh",
    "anthropic key in a path": "sk-ant-api03-InToolInputPath9999iiii0000jjjj1111-xyzAA",
}
TOOL_RESULT_SECRETS = {
    "slack token in output": "xoxb-8888999900001111-InToolResult",
    "aws key id in output": "AKIAINTOOLRESULT0099",
    "token in an exception": "ghp_InRaisedToolError2222kkkk3333llll4444",
    "jwt in output": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0b29sLXJlc3VsdCJ9.c2lnbmF0dXJlLXRvb2wtcmVzdWx0LWhlcmU",
}
SECRETS = {**{f"credential {i}": value for i, value in enumerate(CREDENTIALS)}, **PROMPT_SECRETS,
           **TOOL_INPUT_SECRETS, **TOOL_RESULT_SECRETS}
# A message cut to a few dozen characters can still carry most of a token: each secret's distinctive middle
# (its value without the well-known prefix) is searched for as well as the whole value.
_PREFIXES = ("Bearer ", "sk-ant-api03-", "sk-proj-", "ghp_", "AKIA", "xoxb-", "eyJhbGciOiJIUzI1NiJ9.", "hdr-")


def _marker(value: str) -> str:
    for prefix in _PREFIXES:
        value = value.removeprefix(prefix)
    return value[:14]


MARKERS = {f"{kind} (fragment)": _marker(value) for kind, value in SECRETS.items()}

USER_PROMPT = (
    "Deploy the service. Credentials, in case you need them:\n"
    f"ANTHROPIC_API_KEY={PROMPT_SECRETS['anthropic key']}\nOPENAI_API_KEY={PROMPT_SECRETS['openai key']}\n"
    f"GITHUB_TOKEN={PROMPT_SECRETS['github token']}\naws_access_key_id = {PROMPT_SECRETS['aws key id']}\n"
    f"slack: {PROMPT_SECRETS['slack token']}\nsession jwt {PROMPT_SECRETS['jwt']}\n"
    f"-----BEGIN RSA PRIVATE KEY-----\n{PROMPT_SECRETS['private key']}\n-----END RSA PRIVATE KEY-----\n"
)
SYSTEM_PROMPT = f"You deploy services. The database password: {PROMPT_SECRETS['password']}"
DEPLOY = f"deploy --token {TOOL_INPUT_SECRETS['github token in a command']} --env prod"
KEY_FILE = f"/etc/keys/{TOOL_INPUT_SECRETS['anthropic key in a path']}.pem"
TOOLS = [{"name": "run_bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
         {"name": "read_file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]


def script(body: dict[str, Any]) -> Reply:
    """The model: fails to deploy three times with a token in the command (a tool loop), reads a key file
    that does not exist (a hallucinated path), reads a log its tool cannot open (the tool raises), then
    answers with a key in its own text."""
    turn = 1 + sum(1 for m in body["messages"] if m["role"] == "assistant")
    if turn <= 3:
        return tool_reply(("run_bash", {"command": DEPLOY}), text="Deploying.")
    if turn == 4:
        return tool_reply(("read_file", {"path": KEY_FILE}))
    if turn == 5:
        return tool_reply(("read_file", {"path": "deploy.log"}))
    if turn == 6:
        return tool_reply(("read_file", {"path": "session.txt"}))
    return text_reply(f"Done. I used {PROMPT_SECRETS['anthropic key']} and jwt {PROMPT_SECRETS['jwt']}.")


def run_bash(command: str) -> str:
    return (f"Error: token {TOOL_RESULT_SECRETS['slack token in output']} rejected by webhook "
            f"(aws {TOOL_RESULT_SECRETS['aws key id in output']})\n[exit code 1]")


def read_file(path: str) -> str:
    if path.startswith("/etc/keys"):
        return f"Error: no such file or directory: {path}"
    if path == "deploy.log":
        raise PermissionError(f"token {TOOL_RESULT_SECRETS['token in an exception']} may not read {path}")
    return f"login ok, session {TOOL_RESULT_SECRETS['jwt in output']}"


def run_agent(client: anthropic.Anthropic, tools: dict[str, Any], stream: bool) -> str:
    """A seed-style loop that turns tool exceptions into error results, as agents do."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": USER_PROMPT}]
    headers = {"Authorization": EXTRA_AUTHORIZATION, "x-api-key": EXTRA_X_API_KEY}
    for _ in range(10):
        request = {"model": "claude-sonnet-4-6", "max_tokens": 256, "system": SYSTEM_PROMPT, "tools": TOOLS,
                   "messages": messages, "extra_headers": headers}
        if stream:
            with client.messages.stream(**request) as streamed:
                response = streamed.get_final_message()
        else:
            response = client.messages.create(**request)
        messages.append({"role": "assistant", "content": response.content})
        if response.stop_reason == "end_turn":
            return str(response.content[-1].text)
        results = []
        for block in response.content:
            if block.type == "tool_use":
                try:
                    output, failed = tools[block.name](**block.input), False
                except Exception as error:
                    output, failed = f"Error: {error}", True
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": output,
                                "is_error": failed or output.startswith("Error")})
        messages.append({"role": "user", "content": results})
    raise RuntimeError("Turn limit reached")


def span_texts(spans: Any) -> Iterator[tuple[str, str]]:
    """(where, text) for everything a span carries that a backend would store."""
    for span in spans:
        yield f"{span.name}: name", span.name
        yield f"{span.name}: status", span.status.description or ""
        for key, value in {**span.attributes, **span.resource.attributes}.items():
            yield f"{span.name}: attribute {key}", value if isinstance(value, str) else json.dumps(value, default=str)
        for event in span.events:
            for key, value in {"name": event.name, **(event.attributes or {})}.items():
                yield f"{span.name}: event {event.name} {key}", value if isinstance(value, str) else str(value)


def log_texts(records: list[logging.LogRecord]) -> Iterator[tuple[str, str]]:
    formatter = logging.Formatter()
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        yield f"log {record.name}", text


def leaks(texts: Iterator[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    """Where any of ``secrets`` (or the distinctive middle of one) shows up."""
    wanted = {**secrets, **{f"{kind} (fragment)": _marker(value) for kind, value in secrets.items()}}
    return sorted({f"{kind} in {where}" for where, text in texts for kind, secret in wanted.items()
                   if secret in text})


# The SDK's own loggers: what they print at DEBUG is the SDK's behaviour with or without us.
SDK_LOGGERS = ("anthropic", "httpx", "httpcore", "httpx2", "httpcore2")


@pytest.fixture(params=[False, True], ids=["capture-off", "capture-on"])
def capture(request) -> bool:
    return request.param


@pytest.fixture(params=["decorated-tools", "inferred-tools"])
def tools(request) -> dict[str, Any]:
    plain = {"run_bash": run_bash, "read_file": read_file}
    if request.param == "inferred-tools":
        return plain
    return {name: trace_tool(name)(tool) for name, tool in plain.items()}


@pytest.fixture(params=["create", "stream"])
def traced_run(request, capture, tools, exporter, provider, caplog, tmp_path) -> dict[str, Any]:
    """One agent run with every kind of secret, under the instrumentation, with the JSONL file on."""
    caplog.set_level(logging.DEBUG)
    jsonl = tmp_path / "trace.jsonl"
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings(capture_content=capture, jsonl=str(jsonl)))
    try:
        with FakeMessagesAPI(script) as api:
            client = anthropic.Anthropic(api_key=API_KEY, base_url=api.base_url, max_retries=0,
                                         default_headers={"Authorization": DEFAULT_AUTHORIZATION})
            answer = run_agent(client, tools, stream=request.param == "stream")
            sent = api.requests
    finally:
        instrumentor.uninstrument()
    assert answer.startswith("Done.")
    assert any(r.headers.get("x-api-key") == API_KEY or r.headers.get("x-api-key") == EXTRA_X_API_KEY
               for r in sent), "the credentials really were sent"
    return {"spans": exporter.get_finished_spans(), "records": list(caplog.records), "jsonl": jsonl}


def _about_findings_or_exceptions(where: str) -> bool:
    return any(part in where for part in (": event agent_trace.finding ", ": event exception ",
                                          "langfuse.observation.status_message"))


class TestNoSecretsLeave:
    def test_span_content_carries_no_secrets(self, traced_run):
        """No span name, status, attribute or event — content capture included — holds a key, header value
        or token (finding and exception events are pinned separately below)."""
        texts = ((where, text) for where, text in span_texts(traced_run["spans"])
                 if not _about_findings_or_exceptions(where))
        assert leaks(texts, SECRETS) == []

    def test_findings_and_exceptions_carry_no_secrets(self, traced_run):
        """Finding messages (events and Langfuse status) and exception events hold no token from tool
        inputs, results or errors."""
        texts = ((where, text) for where, text in span_texts(traced_run["spans"])
                 if _about_findings_or_exceptions(where))
        assert leaks(texts, SECRETS) == []

    def test_our_logs_carry_no_secrets(self, traced_run):
        """No log record (DEBUG and up) from us or OpenTelemetry contains a key, header value or token."""
        ours = [r for r in traced_run["records"] if not r.name.startswith(SDK_LOGGERS)]
        assert leaks(log_texts(ours), SECRETS) == []

    def test_jsonl_never_holds_credentials(self, traced_run):
        """The local JSONL file never holds the API key or header values (it does hold conversation content)."""
        text = Path(traced_run["jsonl"]).read_text()
        assert text.count('"turn"') >= 7
        assert leaks(iter([("jsonl", text)]), {f"credential {i}": c for i, c in enumerate(CREDENTIALS)}) == []


def test_report_what_the_jsonl_file_keeps(tmp_path, exporter, provider):
    """Observation, not a rule: which prompt/tool secrets the local JSONL debugging file keeps verbatim."""
    jsonl = tmp_path / "trace.jsonl"
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings(jsonl=str(jsonl)))
    try:
        with FakeMessagesAPI(script) as api:
            client = anthropic.Anthropic(api_key=API_KEY, base_url=api.base_url, max_retries=0)
            run_agent(client, {"run_bash": run_bash, "read_file": read_file}, stream=False)
    finally:
        instrumentor.uninstrument()
    kept = leaks(iter([("jsonl", jsonl.read_text())]), {**PROMPT_SECRETS, **TOOL_INPUT_SECRETS, **TOOL_RESULT_SECRETS})
    print("JSONL keeps verbatim:", kept)


CLIPPED_TOKEN = "ghp_ClippedTokenAAAA1111BBBB2222CCCC3333"


def _windows(secret: str, size: int = 12) -> set[str]:
    body = secret.split("_", 1)[1]
    return {body[i:i + size] for i in range(len(body) - size + 1)}


def test_a_token_cut_by_a_clipped_error_line_is_masked(exporter, provider):
    """A finding quoting a long error line keeps its head and tail; a token it cuts in two is still masked
    (a half token no longer matches the patterns, so masking must come before the cut)."""

    def publish_failing(body: dict[str, Any]) -> Reply:
        turn = 1 + sum(1 for m in body["messages"] if m["role"] == "assistant")
        return tool_reply(("run_bash", {"command": "npm publish"})) if turn <= 3 else text_reply("gave up")

    output = ("npm ERR! 401 Unauthorized - PUT https://example.invalid/pkg - auth rejected for "
              f"{CLIPPED_TOKEN} (scope)\n[exit code 1]")
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings())
    try:
        with FakeMessagesAPI(publish_failing) as api:
            client = anthropic.Anthropic(api_key=API_KEY, base_url=api.base_url, max_retries=0)
            messages: list[dict[str, Any]] = [{"role": "user", "content": "publish the package"}]
            while True:
                response = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
                messages.append({"role": "assistant", "content": response.content})
                if response.stop_reason == "end_turn":
                    break
                messages.append({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": block.id, "content": output, "is_error": True}
                    for block in response.content if block.type == "tool_use"]})
    finally:
        instrumentor.uninstrument()
    texts = [(where, text) for where, text in span_texts(exporter.get_finished_spans())
             if _about_findings_or_exceptions(where)]
    assert texts, "the repeated failure was reported as a finding"
    assert sorted({where for where, text in texts for piece in _windows(CLIPPED_TOKEN) if piece in text}) == []
