"""Every shell block in README.md and docs/*.md runs as written, and the ones that export spans deliver them.

Blocks are found when the tests are collected (```bash, ```sh, ```shell and ```console fences), so edits to
the docs are picked up without touching this file. Each block runs with ``bash -e`` in a scratch copy of
the checkout, with this venv's ``bin`` first on ``PATH`` (so ``python``, ``otel-agent-trace`` and
``opentelemetry-instrument`` are the ones under test) and a real OTLP/HTTP receiver on 127.0.0.1 standing
in for every backend. What is changed in a block's text, and nothing else:

- **URLs:** the scheme and authority of every ``http://`` / ``https://`` URL become
  ``http://127.0.0.1:{receiver port}``; the path is kept (so Langfuse's ``/api/public/otel`` and Phoenix's
  ``/v1/traces`` arrive as written). The receiver speaks plain HTTP, hence ``https`` → ``http``.
- **Docker:** a ``docker …`` command (``docker run``, ``docker compose …``, ``docker stop``) becomes ``:``
  (a no-op): there is no container engine here, and the receiver stands in for the containers, so the
  rest of the block (exports, the traced command) still runs as written.
- **The venv install line** ``python3 -m venv DIR && DIR/bin/pip install -e '.[EXTRAS]'`` is checked
  cheaply instead of re-installed: each extra must exist in pyproject.toml and its requirements must be
  installed in this venv, where this checkout is installed editable; ``DIR`` is then a link to this venv.
  ``OTEL_AGENT_TRACE_DOCS_SLOW=1`` runs it for real (a fresh venv, from the registry).

The environment also points the one default destination a block may rely on without naming it at the
receiver: ``LANGFUSE_BASE_URL`` / ``LANGFUSE_HOST`` (a Langfuse block that leaves the host unset would
otherwise go to Langfuse Cloud). ``agent.py``, the user's own agent in the docs, is a copy of
``examples/agent.py`` (it plays a scripted model on the project's fake Messages API) in every folder a
block runs it from. Inherited ``OTEL_*``, ``LANGFUSE_*`` and ``ANTHROPIC_*`` variables are removed.

A block "sends spans" when it runs a traced command (``otel-agent-trace demo`` / ``import``,
``opentelemetry-instrument``) with an endpoint the test pointed at the receiver (a substituted URL, or
Langfuse keys); then the receiver must have received spans, and for Langfuse keys, on Langfuse's path with
Basic auth.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from otel_agent_trace.testing.otlp_receiver import OTLPReceiver

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = ("README.md", "docs/*.md")
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
SLOW = os.environ.get("OTEL_AGENT_TRACE_DOCS_SLOW") == "1"
BLOCK_TIMEOUT_S = 600  # a guard against a hung block, not a performance assertion

# Blocks that are not run, matched on their commands (comments removed). Keep this short and honest.
# Patterns are searched in the block's whole command text.
SKIPPED: list[tuple[str, str]] = [
    (r"\bbash scripts/check\.sh\b", "the CI entry point: it runs the whole suite, this test included"),
    (r"\bphoenix serve\b", "installs Phoenix and runs its server until stopped; tests/e2e runs a real Phoenix"),
]
SLOW_ONLY: list[tuple[str, str]] = [
    (r"\bbenchmarks/bench_", "benchmarks: minutes of CPU (a soak, a 10,000-turn session); "
                             "OTEL_AGENT_TRACE_DOCS_SLOW=1 runs them"),
]
# Blocks known to fail today, each with why; strict, so a fix turns the mark into a failure to remove.
KNOWN_FAILURES: list[tuple[str, str]] = [
    (r"(?s)^(?!.*OTEL_EXPORTER_OTLP_PROTOCOL)(?=.*\bopentelemetry-instrument\b)",
     "opentelemetry-distro sets OTEL_EXPORTER_OTLP_PROTOCOL=grpc by default: the block sends gRPC to an "
     "OTLP/HTTP endpoint and nothing arrives (lead: state http/protobuf in the block or default it)"),
    (r"\[--", "a usage synopsis ([--option] FILE…), not a command that runs as written"),
]

_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
_URL = re.compile(r"https?://[^/\s'\"<>`]+")
_DOCKER = re.compile(r"\bdocker\b[^;&|]*")
_VENV_INSTALL = re.compile(
    r"python3? -m venv (?P<dir>\S+) && (?P=dir)/bin/pip install -e '?\.\[(?P<extras>[\w,-]+)\]'?(?: && )?")
_TRACED = re.compile(r"\botel-agent-trace (?:demo|import)\b|\bopentelemetry-instrument\b")


@dataclass(frozen=True)
class Block:
    file: str
    line: int
    text: str
    language: str = "bash"

    @property
    def script(self) -> str:
        """What bash runs: a ``console`` block's ``$ `` lines without the prompt (the rest is output)."""
        if self.language != "console":
            return self.text
        return "\n".join(line.strip()[2:] for line in self.text.splitlines() if line.strip().startswith("$ "))

    @property
    def commands(self) -> str:
        """The block's text as bash reads it: continuations joined, comments and prompts removed."""
        lines = []
        for raw in self.script.replace("\\\n", " ").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            lines.append(re.sub(r"\s+#.*$", "", line))
        return "\n".join(lines)

    def first_match(self, table: list[tuple[str, str]]) -> str | None:
        for pattern, reason in table:
            if re.search(pattern, self.commands):
                return reason
        return None


def shell_blocks() -> list[Block]:
    blocks = []
    for pattern in DOC_FILES:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            for match in _FENCE.finditer(text):
                if match.group(1).lower() in SHELL_LANGUAGES:
                    line = text.count("\n", 0, match.start()) + 1
                    blocks.append(Block(str(path.relative_to(ROOT)), line, match.group(2), match.group(1).lower()))
    return blocks


def block_params() -> list[object]:
    params = []
    for block in shell_blocks():
        marks = []
        skip = block.first_match(SKIPPED) or (None if SLOW else block.first_match(SLOW_ONLY))
        if skip:
            marks.append(pytest.mark.skip(reason=skip))
        elif reason := block.first_match(KNOWN_FAILURES):
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(block, id=f"{block.file}:{block.line}", marks=marks))
    return params


def check_extras_installed(extras: str) -> None:
    """The cheap stand-in for ``pip install -e '.[extras]'``: the extras exist and are satisfied here."""
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras.split(","):
        assert extra in optional, f"the docs install extra {extra!r}, which pyproject.toml does not define"
        for spec in optional[extra]:
            requirement = Requirement(spec)
            version = metadata.version(requirement.name)
            assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
    assert metadata.distribution("otel-agent-trace") is not None


def prepare(block: Block, receiver: OTLPReceiver, workdir: Path) -> tuple[str, bool]:
    """The block's text as it will run, and whether it points a traced command at the receiver."""
    text = block.script.replace("\\\n", " ")
    text, urls = _URL.subn(f"http://127.0.0.1:{receiver.port}", text)
    lines = []
    for line in text.splitlines():
        code, sep, comment = line.partition(" #") if not line.lstrip().startswith("#") else ("", "", line)
        code = _DOCKER.sub(":", code)
        lines.append(code + sep + comment)
    text = "\n".join(lines)
    if not SLOW and (install := _VENV_INSTALL.search(text)):
        check_extras_installed(install.group("extras"))
        (workdir / install.group("dir")).symlink_to(sys.prefix, target_is_directory=True)
        text = text.replace(install.group(0), "")
    commands = Block(block.file, block.line, text).commands
    sends = bool(_TRACED.search(commands)) and (urls > 0 or "LANGFUSE_PUBLIC_KEY" in commands)
    return text, sends


def scratch_checkout(tmp_path: Path) -> Path:
    workdir = tmp_path / "checkout"
    shutil.copytree(ROOT, workdir, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", "node_modules"))
    agent = ROOT / "examples" / "agent.py"
    for folder in (workdir, *[p for p in workdir.iterdir() if p.is_dir()]):
        if not (folder / "agent.py").exists():
            shutil.copy(agent, folder / "agent.py")
    return workdir


def block_env(receiver: OTLPReceiver) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGFUSE_", "ANTHROPIC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["LANGFUSE_BASE_URL"] = env["LANGFUSE_HOST"] = receiver.endpoint
    env.pop("VIRTUAL_ENV", None)
    return env


@pytest.mark.parametrize("block", block_params())
def test_shell_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    """The block exits 0 and, when it exports spans, the local receiver gets them."""
    workdir = scratch_checkout(tmp_path)
    with OTLPReceiver() as receiver:
        script, sends = prepare(block, receiver, workdir)
        result = subprocess.run(["bash", "-e", "-c", script], cwd=workdir, env=block_env(receiver),
                                capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL)
        output = f"{script}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        assert result.returncode == 0, output
        if sends:
            assert receiver.spans, f"no span reached the receiver\n{output}"
            if "LANGFUSE_PUBLIC_KEY" in script:
                langfuse = [r for r in receiver.requests if r.path.endswith("/api/public/otel/v1/traces")]
                assert langfuse and all(r.headers.get("authorization", "").startswith("Basic ") for r in langfuse)


def test_docs_have_shell_blocks() -> None:
    """Block discovery finds the README's and docs' shell blocks (a broken fence pattern finds none)."""
    files = {block.file for block in shell_blocks()}
    assert "README.md" in files and any(f.startswith("docs/") for f in files)


def test_substitution_changes_only_urls_and_docker(tmp_path: Path) -> None:
    """Only URL authorities (to the receiver) and docker commands (to a no-op) change in a block's text."""
    block = Block("x.md", 1, "docker run --rm -d \\\n  -p 4318:4318 img:1\n"
                             "export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://localhost:6006/v1/traces\n"
                             "cd deploy && docker compose up -d\n"
                             "LANGFUSE_BASE_URL=https://cloud.langfuse.com otel-agent-trace demo  # or agent.py\n")
    with OTLPReceiver() as receiver:
        script, sends = prepare(block, receiver, tmp_path)
        port = receiver.port
    assert script.splitlines() == [
        ":",
        f"export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:{port}/v1/traces",
        "cd deploy && :",
        f"LANGFUSE_BASE_URL=http://127.0.0.1:{port} otel-agent-trace demo  # or agent.py",
    ]
    assert sends


def test_console_blocks_run_only_prompted_lines() -> None:
    """In a ``console`` block only ``$ `` lines are commands; the rest is output and is not run."""
    block = Block("x.md", 1, "$ otel-agent-trace demo\ninvoke_agent clean-run  [3 turns]\n", "console")
    assert block.script == "otel-agent-trace demo"


def test_zero_code_block_stating_the_protocol_is_not_expected_to_fail() -> None:
    """A zero-code block that sets OTEL_EXPORTER_OTLP_PROTOCOL on any line is no longer a known failure."""
    broken = Block("x.md", 1, "export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318\n"
                              "opentelemetry-instrument python agent.py\n")
    fixed = Block("x.md", 1, "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n" + broken.text)
    assert broken.first_match(KNOWN_FAILURES) and fixed.first_match(KNOWN_FAILURES) is None
