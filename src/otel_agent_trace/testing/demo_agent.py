"""The demo's coding agent: a seed-style loop with real local tools on a scratch workspace, and the
scripted "model" behind the fake Messages API that drives it (a clean run and a failing one).

Used by ``otel-agent-trace demo``, ``examples/agent.py`` and the tests. The model's script is chosen
from the task text, so one fake server can drive many agents at once.
"""

from __future__ import annotations

import contextvars
import json
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otel_agent_trace.testing.fake_api import Reply, text_reply, tool_reply

MODEL = "claude-sonnet-4-6"
CLEAN_TASK = "Fix the session-expiry bug in auth/session.ts and run the tests."
FAILING_TASK = "Fix the session-expiry bug in auth/session.ts (flaky run) and run the tests."
SYSTEM = [{"type": "text", "text": "You are a careful coding agent. Use the tools to inspect and edit the repo.",
           "cache_control": {"type": "ephemeral"}}]

TOOLS: list[dict[str, Any]] = [
    {"name": "read_file", "description": "Read a file", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {"name": "list_dir", "description": "List a directory", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {"name": "edit_file", "description": "Replace old_str with new_str in a file", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string"}, "old_str": {"type": "string"},
                                         "new_str": {"type": "string"}},
        "required": ["path", "old_str", "new_str"]}},
    {"name": "run_bash", "description": "Run a shell command in the repo", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
]

_FILES = {
    "auth/session.ts": "export function expireSession(session: Session) {\n"
                       "  // BUG: compares seconds with milliseconds\n"
                       "  return session.expiresAt < Date.now() / 1000;\n}\n",
    "auth/middleware.ts": "import { expireSession } from './session';\n"
                          "export function requireSession(req) {\n  return !expireSession(req.session);\n}\n",
    "tests/session.test.sh": "grep -q 'Date.now()' auth/session.ts && echo '1 passed' || "
                             "{ echo 'FAIL'; exit 1; }\n",
    "README.md": "# demo repo\n",
}

workspace: contextvars.ContextVar[Path] = contextvars.ContextVar("demo_workspace", default=Path("."))


def make_workspace() -> Path:
    """A scratch copy of the demo repo; returned path is what the tools operate on."""
    root = Path(tempfile.mkdtemp(prefix="agent-demo-"))
    for name, text in _FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# --- tools ----------------------------------------------------------------------------------------------
def read_file(path: str) -> str:
    target = workspace.get() / path
    if not target.is_file():
        return f"Error: no such file: {path}"
    return target.read_text()


def list_dir(path: str = ".") -> str:
    target = workspace.get() / path
    if not target.is_dir():
        return f"Error: no such directory: {path}"
    return "\n".join(sorted(str(p.relative_to(workspace.get())) for p in target.rglob("*") if p.is_file()))


def edit_file(path: str, old_str: str, new_str: str) -> str:
    target = workspace.get() / path
    if not target.is_file():
        return f"Error: no such file: {path}"
    text = target.read_text()
    if old_str not in text:
        return f"Error: old_str not found in {path}; no match for the given string"
    target.write_text(text.replace(old_str, new_str, 1))
    return f"Edited {path}"


def run_bash(command: str) -> str:
    done = subprocess.run(command, shell=True, cwd=workspace.get(), capture_output=True, text=True, timeout=30)
    output = done.stdout + done.stderr
    return output if done.returncode == 0 else f"{output}\n[exit code {done.returncode}]"


def dispatch_tool(name: str, tool_input: dict[str, Any]) -> str:
    """The seed's plain dispatcher: tool name and input in, result text out."""
    tools: dict[str, Callable[..., str]] = {"read_file": read_file, "list_dir": list_dir,
                                            "edit_file": edit_file, "run_bash": run_bash}
    if name not in tools:
        return f"Error: unknown tool {name}"
    return tools[name](**tool_input)


def run_agent(client: Any, task: str, *, max_turns: int = 12,
              dispatch: Callable[[str, dict[str, Any]], str] = dispatch_tool) -> str:
    """The seed article's loop, unchanged in shape: call, append, dispatch tool_uses, repeat."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
    for _turn in range(max_turns):
        response = client.messages.create(model=MODEL, max_tokens=1024, system=SYSTEM, tools=TOOLS,
                                          messages=messages)
        messages.append({"role": "assistant", "content": response.content})
        if response.stop_reason == "end_turn":
            return str(response.content[-1].text)
        tool_results = []
        for block in response.content:
            if block.type == "tool_use":
                output = dispatch(block.name, block.input)
                tool_results.append({"type": "tool_result", "tool_use_id": block.id, "content": str(output),
                                     "is_error": output.startswith("Error")})
        messages.append({"role": "user", "content": tool_results})
    raise RuntimeError(f"Turn limit reached after {max_turns} turns")


# --- the scripted model ---------------------------------------------------------------------------------
_FIX = {"path": "auth/session.ts", "old_str": "session.expiresAt < Date.now() / 1000",
        "new_str": "session.expiresAt * 1000 < Date.now()"}

CLEAN_SCRIPT: list[Any] = [
    ("list_dir", {"path": "."}),
    ("read_file", {"path": "auth/session.ts"}),
    ("read_file", {"path": "auth/middleware.ts"}),
    ("run_bash", {"command": "grep -rn expireSession auth"}),
    ("edit_file", _FIX),
    ("run_bash", {"command": "sh tests/session.test.sh"}),
    "Fixed: expireSession compared seconds with milliseconds. Tests pass.",
]

FAILING_SCRIPT: list[Any] = [
    ("read_file", {"path": "src/auth/session.ts"}),  # a guessed path, before looking around
    ("list_dir", {"path": "."}),
    ("read_file", {"path": "auth/session.ts"}),
    ("read_file", {"path": "auth/middleware.ts"}),
    ("run_bash", {"command": "seq 1 12000"}),  # a huge output that floods the context
    ("edit_file", _FIX),  # works…
    ("edit_file", _FIX),  # …and is applied again: the model lost track of its own change
    ("edit_file", {**_FIX, "old_str": "session.expiresAt < Date.now()/1000"}),
    ("edit_file", {**_FIX, "old_str": "expiresAt < Date.now() / 1000;"}),
    ("read_file", {"path": "auth/middleware.ts"}),  # re-read six turns later, nothing changed it
    ("run_bash", {"command": "npm test"}),
]


def _turn_of(messages: list[Any]) -> int:
    return 1 + sum(1 for m in messages if m.get("role") == "assistant")


def _usage(body: dict[str, Any], turn: int, cache_hits: bool) -> dict[str, int]:
    size = len(json.dumps(body.get("messages", []), default=str))
    cached = 1_800
    return {"input_tokens": 400 + size // 4, "output_tokens": 60 + 7 * turn,
            "cache_read_input_tokens": cached if cache_hits and turn > 1 else 0,
            "cache_creation_input_tokens": cached if turn == 1 or not cache_hits else 0}


def scripted_model(body: dict[str, Any]) -> Reply:
    """The fake API's responder: the next step of the script the task names, with plausible usage."""
    messages = body.get("messages") or []
    task = messages[0].get("content") if messages else ""
    failing = isinstance(task, str) and "flaky" in task
    script = FAILING_SCRIPT if failing else CLEAN_SCRIPT
    turn = _turn_of(messages)
    usage = _usage(body, turn, cache_hits=not failing)
    step = script[min(turn, len(script)) - 1] if turn <= len(script) or failing else script[-1]
    if failing and turn > len(script):
        step = ("run_bash", {"command": "npm test"})
    if isinstance(step, str):
        return text_reply(step, usage=usage)
    name, tool_input = step
    return tool_reply((name, tool_input), text=f"Calling {name}.", usage=usage)
