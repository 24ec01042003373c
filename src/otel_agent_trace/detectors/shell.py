"""Bash commands seen as tool calls: ``cat FILE`` is a read, ``grep``/``ls``/``find`` are searches.

A cheap tokenizer instead of ``shlex``: commands are often malformed or huge heredocs, and this runs
on every bash call. Only the first meaningful simple command of the first ~500 characters is looked at.
Agents re-run the same commands (tests, ``git status``) all the time, so recent answers are remembered.
Every role built here is marked ``shell``: an unknown flag of ``git log`` (a search) is still a shell error.
"""

from __future__ import annotations

import re

from otel_agent_trace.detectors.roles import BASH, READ, SEARCH, WRITE, ToolRole, norm_path

_MAX_CHARS = 500
_SEGMENTS = re.compile(r"\s*(?:&&|\|\||;|\n)\s*")
_TOKENS = re.compile(r"'[^']*'|\"[^\"]*\"|\||[^\s|]+")
_SKIP_PROGRAMS = {"cd", "export", "source", ".", "set", "true", "pushd", "popd", "unset", "clear"}
_PREFIXES = {"sudo", "time", "env", "nice", "nohup", "command", "exec", "timeout"}
_READ_PROGRAMS = {"cat", "head", "tail", "less", "more", "nl", "bat", "sed", "awk"}
_SEARCH_PROGRAMS = {"ls", "find", "grep", "rg", "ag", "ack", "fd", "fdfind", "tree", "locate", "egrep",
                    "fgrep", "dir", "pwd", "wc", "file", "stat", "which"}
# Git commands that only look at the repository (its history, trees, objects and refs).
_GIT_SEARCH = {"status", "log", "diff", "show", "grep", "ls-files", "blame", "branch", "ls-tree", "cat-file",
               "rev-parse", "rev-list", "reflog", "shortlog", "describe", "merge-base", "show-ref", "for-each-ref",
               "ls-remote", "name-rev"}
# GitHub's CLI reading pull requests, CI runs, issues and the API: fetching what is there, like `git log`.
_GH_READ_VERBS = {"view", "list", "checks", "diff", "status", "watch"}
_GH_WRITE_OPTIONS = {"-X", "--method", "-f", "-F", "--field", "--raw-field", "--input"}
_GIT_GLOBAL = {"checkout", "reset", "stash", "restore", "pull", "merge", "rebase", "apply", "am",
               "cherry-pick", "revert", "switch"}
# Sub-commands of package managers and generators that rewrite project files (manifests, lock files,
# generated code): `npm install x`, `uv add x`, `mix deps.get`, `mix phx.gen.live`, `rails generate`.
_WRITING_WORDS = {"install", "i", "add", "remove", "rm", "uninstall", "update", "upgrade", "init", "new",
                  "generate", "g", "lock", "sync"}


def _writes_files(word: str) -> bool:
    return word in _WRITING_WORDS or word.startswith("deps.") or ".gen." in word or word.startswith("gen.")


_INLINE_OPTIONS = {"-c", "-e", "-i", "-pi", "-pie", "--eval"}
_FORMAT_WORDS = {"format", "fmt", "lint:fix", "format:write"}
_FORMATTERS = {"black", "isort", "prettier", "gofmt", "rustfmt", "autopep8", "yapf", "clang-format"}
_MODIFIERS = {"rm", "mv", "cp", "touch", "tee", "truncate", "patch", "chmod", "ln", "mkdir", "rmdir",
              "unlink"}
_LAUNCHERS = {"npx", "npm", "yarn", "pnpm", "uv", "poetry", "go", "cargo", "make", "git", "bun", "deno",
              "docker", "pip", "pip3", "dotnet", "mvn", "gradle", "bundle", "rake"}
_RUNNERS = {"npx", "bunx", "pnpx"}
_RUN_LAUNCHERS = {"uv", "poetry", "pipenv", "pdm", "hatch"}
_INTERPRETERS = {"python", "python3", "node", "ruby", "bash", "sh", "perl"}
_VALUE_OPTIONS = {"-n", "-c", "-A", "-B", "-C", "-e", "-f", "-m", "--lines", "--bytes", "-t", "--type", "-g",
                  "--glob", "-name", "-iname", "-type", "-path", "-maxdepth", "-mindepth", "-L", "-I"}


_FILE_ARG = re.compile(r"[^/\\]\.[A-Za-z][A-Za-z0-9]{0,7}$")  # ends in a file extension: "src/app.py"
_NOT_PATHS = _FORMATTERS | _FORMAT_WORDS | {"run", "exec", "x", "check"}


def _named_files(args: list[str]) -> list[str]:
    """The files a formatter was given, when every argument after its name or sub-command names a file (has
    an extension); [] when one may be a directory (``src``, ``.``) or there is none."""
    anchor = max((i for i, a in enumerate(args) if a in _FORMATTERS or a in _FORMAT_WORDS), default=-1)
    args = args[anchor + 1:]
    files = [a for a in args if _FILE_ARG.search(a)]
    others = [a for a in args if a not in files and a not in _NOT_PATHS]
    return files if files and not others else []


def _gh_reads(head: list[str]) -> bool:
    """`gh pr checks`, `gh run view --log-failed`, `gh api repos/o/r/contents/x`, `gh search code …`: a
    GitHub CLI command that only fetches (``gh api`` sends a GET unless given a method or fields)."""
    if head[1] == "api":
        return not any(t in _GH_WRITE_OPTIONS or t.startswith(("--method=", "-X")) for t in head[2:])
    if head[1] == "search":
        return True
    return len(head) > 2 and head[2] in _GH_READ_VERBS


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _without_prefixes(tokens: list[str]) -> list[str]:
    """The command itself: ``VAR=1``, ``sudo``, ``env`` … in front of it dropped."""
    start = 0
    while start < len(tokens) and (("=" in tokens[start] and not tokens[start].startswith("-"))
                                   or tokens[start] in _PREFIXES):
        start += 1
    return tokens[start:]


# PowerShell (Claude Code's PowerShell tool on Windows): the cmdlets that read, list and search, by name or
# alias, matched case-insensitively as PowerShell does.
_PS_READ = {"get-content", "gc"}
_PS_LIST = {"get-childitem", "gci"}
_PS_SEARCH = {"select-string", "sls"}
_PS_CMDLETS = _PS_READ | _PS_LIST | _PS_SEARCH
_PS_PATH_OPTIONS = {"-path", "-literalpath"}
_PS_PART_OPTIONS = {"-totalcount", "-head", "-tail", "-first", "-last"}  # Get-Content reading part of a file
_PS_VALUE_OPTIONS = _PS_PART_OPTIONS | {"-encoding", "-delimiter", "-readcount", "-pattern", "-filter", "-include",
                                        "-exclude", "-depth", "-context"}
_PS_PART_PIPE = re.compile(r"\|\s*select-object\s+-(?:first|last|skip|index)\b(?:\s+\d+)?", re.IGNORECASE)


def _ps_arguments(tokens: list[str]) -> tuple[str | None, list[str], list[str]]:
    """A cmdlet's ``-Path`` (or ``-LiteralPath``) value, its positional arguments and its other options with
    their values."""
    path: str | None = None
    positional: list[str] = []
    options: list[str] = []
    i = 1
    while i < len(tokens):
        token = tokens[i]
        name = token.lower().split(":", 1)[0]
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if name in _PS_PATH_OPTIONS and value is not None:
            path, i = _unquote(value), i + 2
        elif name in _PS_VALUE_OPTIONS:
            options += [token] if value is None else [token, _unquote(value)]
            i += 2
        elif name.startswith("-") and len(name) > 1:
            options.append(token)
            i += 1
        else:
            positional.append(_unquote(token))
            i += 1
    return path, positional, options


def _powershell(head: list[str], text: str, invoked: str) -> ToolRole | None:
    """The role of a PowerShell read, listing or search (``Get-Content``, ``Get-ChildItem``,
    ``Select-String`` or their aliases); None for a read without a path."""
    cmdlet = _base(head[0]).lower()
    path, positional, options = _ps_arguments(head)
    if cmdlet in _PS_SEARCH:  # Select-String [-Pattern] p [-Path] f: a grep
        pattern = next((options[i + 1] for i, o in enumerate(options[:-1]) if o.lower() == "-pattern"), None)
        return ToolRole(SEARCH, target=pattern or (positional[0] if positional else text), program="select-string",
                        shell=True, command=text, invoked=invoked)
    path = norm_path(path or (positional[0] if positional else ""))
    if cmdlet in _PS_LIST:
        return ToolRole(SEARCH, target=path or text, path=path, program="get-childitem", shell=True, command=text,
                        invoked=invoked)
    if not path:
        return None
    part = [o for o in options if o.lower() in _PS_PART_OPTIONS]
    piped = _PS_PART_PIPE.search(text)
    read_range = " ".join(options) if part else (piped.group(0).lstrip("| ") if piped else None)
    return ToolRole(READ, target=path, path=path, read_range=read_range, program="get-content", shell=True,
                    command=text, invoked=invoked)


def _simple_command(command: str) -> list[str]:
    text = command[:_MAX_CHARS]
    separated = "&&" in text or ";" in text or "\n" in text or "||" in text
    for segment in _SEGMENTS.split(text) if separated else (text,):
        tokens = _without_prefixes(_TOKENS.findall(segment))
        if tokens and tokens[0] not in _SKIP_PROGRAMS:
            return tokens
    return []


def _split_pipes(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Tokens before the first pipe, and the redirect targets (``> file``) of that part."""
    for tok in tokens:
        if tok[0] in "|<>&12":
            break
    else:
        return tokens, []  # nothing but words: the usual case
    head: list[str] = []
    redirects: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "|":
            break
        if tok in (">", ">>", "1>", "1>>"):
            if i + 1 < len(tokens):
                redirects.append(_unquote(tokens[i + 1]))
            i += 2
            continue
        if tok in ("2>", "2>>", "&>", "<", "<<", "<<<"):
            i += 2  # stderr or input redirection: the next token is not an argument
            continue
        if tok.startswith(">"):
            redirects.append(_unquote(tok.lstrip(">")))
        elif not tok.startswith(("2>", "&>", "<", "1>")):  # 2>&1, <<EOF, <input …
            head.append(tok)
        i += 1
    files = [r for r in redirects if r and not r.startswith(("&", "/dev/"))]
    return head, files


def _arguments(tokens: list[str]) -> list[str]:
    """Non-option arguments, skipping the value of options known to take one (``head -n 50 FILE``)."""
    args: list[str] = []
    skip = False
    for tok in tokens[1:]:
        if skip:
            skip = False
            continue
        if tok.startswith("-") and len(tok) > 1:
            skip = tok in _VALUE_OPTIONS
            continue
        args.append(_unquote(tok))
    return args


def _base(token: str) -> str:
    return _unquote(token).rsplit("/", 1)[-1]


def _program(tokens: list[str]) -> str:
    """What a command runs, seen through launchers: ``uv run pytest -x`` and ``python -m pytest`` → pytest."""
    prog, rest = _base(tokens[0]), tokens[1:]
    if prog in _RUNNERS and rest:
        prog, rest = _base(rest[0]), rest[1:]
    elif prog in _RUN_LAUNCHERS and rest[:1] == ["run"] and len(rest) > 1:
        prog, rest = _base(rest[1]), rest[2:]
    if prog.startswith("python") and rest[:1] == ["-m"] and len(rest) > 1:
        return _base(rest[1])
    if rest and not rest[0].startswith("-"):
        if prog in _INTERPRETERS:
            return f"{prog} {_base(rest[0])}"
        if prog in _LAUNCHERS:
            return f"{prog} {_unquote(rest[0])}"
    return prog


def _invoked(tokens: list[str]) -> str:
    """What a command runs, as typed (program base name, then its script or sub-command), for messages:
    ``python scripts/export.py``, ``git log``, ``uv run pytest``, ``npx jest``, ``ls``."""
    prog = _base(tokens[0])
    words = [prog]
    rest = tokens[1:]
    if prog in _RUNNERS and rest:
        words.append(_unquote(rest[0]))
    elif prog in _RUN_LAUNCHERS and rest[:1] == ["run"] and len(rest) > 1:
        words += ["run", _unquote(rest[1])]
    elif prog.startswith("python") and rest[:1] == ["-m"] and len(rest) > 1:
        words += ["-m", _unquote(rest[1])]
    elif rest and not rest[0].startswith("-") and (prog in _INTERPRETERS or prog in _LAUNCHERS):
        words.append(_unquote(rest[0]))
    return " ".join(words)


def invoked_with(command: str, argument: str) -> str | None:
    """What the one part of ``command`` whose arguments hold ``argument`` runs, as typed (``_invoked``):
    in ``cd x && git add a.go\ngit rebase --continue --no-edit | cat``, ``--no-edit`` → ``git rebase``.
    None when no part, or more than one, holds it."""
    found: set[str] = set()
    for segment in _SEGMENTS.split(command[:_MAX_CHARS]):
        tokens = _TOKENS.findall(segment)
        start = 0
        for end in range(len(tokens) + 1):
            if end < len(tokens) and tokens[end] != "|":
                continue
            part = _without_prefixes(tokens[start:end])
            start = end + 1
            if part and any(t == argument or t.startswith(argument + "=") for t in part[1:]):
                found.add(_invoked(part))
    return found.pop() if len(found) == 1 else None


_MEMO: dict[str, ToolRole] = {}  # command text → role; roles are immutable, so sharing them is safe
_MEMO_MAX = 256


def classify_command(command: str) -> ToolRole:
    """Role of one shell command: read of FILE, search, write via redirect, or plain bash."""
    role = _MEMO.get(command)
    if role is None:
        role = _classify(command)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()  # atomic, unlike evicting one entry while another thread may write
        _MEMO[command] = role
    return role


def _classify(command: str) -> ToolRole:
    text = command.strip()
    target = text[:_MAX_CHARS]
    tokens = _simple_command(text)
    if not tokens:
        return ToolRole(BASH, target=target or None, shell=True, command=target or None)
    head, redirected = _split_pipes(tokens)
    if not head:
        return ToolRole(BASH, target=target, shell=True, command=target)
    prog = _base(head[0])
    args = _arguments(head)
    options = [t for t in head[1:] if t.startswith("-")]
    invoked = _invoked(head)
    if prog.lower() in _PS_CMDLETS and not redirected:  # `Get-Content a > b` writes b, like `cat a > b`
        role = _powershell(head, target, invoked)
        if role is not None:
            return role
    # `gh run view --log > /tmp/run.log`: whatever the command is, its redirect wrote that file.
    changed = tuple(p for p in (norm_path(r) for r in redirected) if p) if redirected else ()
    if redirected and prog in {"cat", "echo", "printf", "tee"}:
        path = norm_path(redirected[-1])
        return ToolRole(WRITE, target=path, path=path, changed_paths=(path,) if path else (), shell=True,
                        command=target, invoked=invoked)
    if prog == "sed" and any(o.startswith("-i") for o in options):
        path = norm_path(args[-1]) if len(args) >= 2 else None
        return ToolRole(BASH, target=target, program="sed -i", changed_paths=(path,) if path else (),
                        shell=True, command=target, invoked=invoked)
    if prog in _READ_PROGRAMS and not redirected:
        # sed/awk take their script as the first argument unless given with -e/-f.
        scripted = prog in ("sed", "awk") and not any(o in ("-e", "-f") for o in options)
        if prog in ("sed", "awk"):
            args = [_unquote(t) for t in head[1:] if not t.startswith("-") or len(t) == 1]
        files = args[1:] if scripted else args
        if files and prog in ("cat", "less", "more", "bat"):
            path = norm_path(files[0])
            rng = " ".join(["with", *files[1:]]) if len(files) > 1 else None
            return ToolRole(READ, target=path, path=path, read_range=rng, program=prog, shell=True,
                            command=target, invoked=invoked)
        if files:
            path = norm_path(files[-1])
            # Everything between the program and the file (-n 50, '1,40p') says which part was read.
            rng = " ".join(_unquote(t) for t in head[1:-1]) or None
            return ToolRole(READ, target=path, path=path, read_range=rng, program=prog, shell=True,
                            command=target, invoked=invoked)
    if prog in _SEARCH_PROGRAMS:
        pattern = args[0] if prog in ("grep", "rg", "ag", "ack", "egrep", "fgrep") and args else None
        path = norm_path(args[-1]) if args and prog in ("ls", "tree", "dir") else None
        return ToolRole(SEARCH, target=pattern or path or target, path=path, program=prog, changed_paths=changed,
                        shell=True, command=target, invoked=invoked)
    if prog == "git" and len(head) > 1:
        sub = head[1]
        if sub in _GIT_SEARCH:
            return ToolRole(SEARCH, target=target, program=f"git {sub}", changed_paths=changed, shell=True,
                            command=target, invoked=invoked)
        if sub in _GIT_GLOBAL:
            return ToolRole(BASH, target=target, program=f"git {sub}", global_change=True, shell=True,
                            command=target, invoked=invoked)
    if prog == "gh" and len(head) > 1 and _gh_reads(head):
        return ToolRole(SEARCH, target=target, program=" ".join(head[:3] if head[1] != "api" else head[:2]),
                        changed_paths=changed, shell=True, command=target, invoked=invoked)
    program = _program(head)
    if prog in _MODIFIERS:
        changed += tuple(p for p in (norm_path(a) for a in args) if p)
    # `mix format`, `cargo fmt`, `npm run format`, `dotnet format`: a formatter behind a launcher. An inline
    # script (`python3 - <<EOF`, `perl -pi -e`, `node -e`) is the model editing through the shell.
    formatter = (prog in _FORMATTERS or "--fix" in options or "--write" in options or "-w" in options
                 or any(word in _FORMAT_WORDS for word in head[1:4]))
    global_change = (any(prog != "git" and _writes_files(word) for word in head[1:3])
                     or (prog in _INTERPRETERS and ("<<" in text[:_MAX_CHARS] or "-" in head[1:2]
                                                    or any(o in _INLINE_OPTIONS for o in options))))
    if formatter and not global_change:
        # `ruff format src/app.py`, `black a.py b.py`: a formatter given files rewrites those files only.
        named = _named_files(args)
        if named:
            changed += tuple(p for p in (norm_path(a) for a in named) if p)
        else:
            global_change = True  # a directory, the project, or arguments we cannot tell apart
    return ToolRole(BASH, target=target, program=program, changed_paths=changed, global_change=global_change,
                    shell=True, command=target, invoked=invoked)
