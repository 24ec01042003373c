"""Tool roles, targets and error classes."""

from __future__ import annotations

from typing import Any

import pytest

from otel_agent_trace.detectors import classify_error, classify_tool
from otel_agent_trace.detectors.errors import bad_flag, error_line, path_tokens
from otel_agent_trace.detectors.roles import call_info
from otel_agent_trace.model.records import ToolCall

EDITOR = "str_replace_based_edit_tool"


@pytest.mark.parametrize(("name", "tool_input", "role", "target"), [
    # Claude Code
    ("Read", {"file_path": "/repo/auth/session.ts"}, "read", "/repo/auth/session.ts"),
    ("Edit", {"file_path": "a.py", "old_string": "x", "new_string": "y"}, "edit", "a.py"),
    ("MultiEdit", {"file_path": "a.py", "edits": [{"old_string": "x", "new_string": "y"}]}, "edit", "a.py"),
    ("Write", {"file_path": "./new.py", "content": "print()"}, "write", "new.py"),
    ("Bash", {"command": "npx jest auth"}, "bash", "npx jest auth"),
    ("Grep", {"pattern": "expireSession", "path": "src"}, "search", "expireSession"),
    ("Glob", {"pattern": "**/*.ts"}, "search", "**/*.ts"),
    ("LS", {"path": "/repo"}, "search", "/repo"),
    ("NotebookEdit", {"notebook_path": "nb.ipynb", "new_source": "x"}, "edit", "nb.ipynb"),
    ("TodoWrite", {"todos": []}, "other", "TodoWrite"),
    ("WebFetch", {"url": "https://example.com", "prompt": "x"}, "other", "WebFetch"),
    # Anthropic text editor tool, every command
    (EDITOR, {"command": "view", "path": "/repo/app.py"}, "read", "/repo/app.py"),
    (EDITOR, {"command": "view", "path": "/repo/"}, "search", "/repo"),
    (EDITOR, {"command": "str_replace", "path": "a.py", "old_str": "x", "new_str": "y"}, "edit", "a.py"),
    (EDITOR, {"command": "create", "path": "b.py", "file_text": "x"}, "write", "b.py"),
    (EDITOR, {"command": "insert", "path": "a.py", "insert_line": 3, "new_str": "y"}, "edit", "a.py"),
    (EDITOR, {"command": "undo_edit", "path": "a.py"}, "edit", "a.py"),
    ("str_replace_editor", {"command": "view", "path": "x.md"}, "read", "x.md"),
    ("text_editor_20250728", {"command": "str_replace", "path": "x.md", "old_str": "a", "new_str": "b"},
     "edit", "x.md"),
    # bash tool: reads and searches hiding in commands
    ("bash", {"command": "cat src/app.py"}, "read", "src/app.py"),
    ("bash", {"command": "head -n 50 src/app.py"}, "read", "src/app.py"),
    ("bash", {"command": "sed -n '10,40p' src/app.py"}, "read", "src/app.py"),
    ("bash", {"command": "cd /repo && cat setup.cfg | grep version"}, "read", "setup.cfg"),
    ("bash", {"command": "ls -la src/"}, "search", "src"),
    ("bash", {"command": "find . -name '*.py'"}, "search", "find . -name '*.py'"),
    ("bash", {"command": "grep -rn TODO src"}, "search", "TODO"),
    ("bash", {"command": "rg 'fn main'"}, "search", "fn main"),
    ("bash", {"command": "git status"}, "search", "git status"),
    # git looking at trees, objects and refs reads too
    ("bash", {"command": "git ls-tree -r HEAD | grep tasks"}, "search", "git ls-tree -r HEAD | grep tasks"),
    ("bash", {"command": "git rev-parse --abbrev-ref HEAD"}, "search", "git rev-parse --abbrev-ref HEAD"),
    # GitHub's CLI fetching CI results, pull requests and repository contents; not when it writes
    ("bash", {"command": "gh pr checks 183 2>&1 | grep fail"}, "search", "gh pr checks 183 2>&1 | grep fail"),
    ("bash", {"command": "gh run view 42 --log-failed"}, "search", "gh run view 42 --log-failed"),
    ("bash", {"command": "gh api repos/o/r/contents/a.py"}, "search", "gh api repos/o/r/contents/a.py"),
    ("bash", {"command": "gh api -X POST repos/o/r/issues"}, "bash", "gh api -X POST repos/o/r/issues"),
    ("bash", {"command": "gh pr create --fill"}, "bash", "gh pr create --fill"),
    ("bash", {"command": "cat > notes.txt <<EOF\nhello\nEOF"}, "write", "notes.txt"),
    ("bash", {"command": "python -m pytest -q"}, "bash", "python -m pytest -q"),
    # hand-written tools
    ("read_file", {"path": "src/a.py"}, "read", "src/a.py"),
    ("view_file", {"filename": "a.py"}, "read", "a.py"),
    ("open_file", {"file": "a.py"}, "read", "a.py"),
    ("write_file", {"path": "a.py", "content": "x"}, "write", "a.py"),
    ("create_file", {"path": "a.py", "content": "x"}, "write", "a.py"),
    ("edit_file", {"path": "a.py", "old_str": "x", "new_str": "y"}, "edit", "a.py"),
    ("replace_in_file", {"path": "a.py", "old_string": "x", "new_string": "y"}, "edit", "a.py"),
    ("list_dir", {"path": "src"}, "search", "src"),
    ("list_files", {"path": "."}, "search", "."),
    ("ls", {"path": "src"}, "search", "src"),
    ("glob", {"pattern": "*.md"}, "search", "*.md"),
    ("grep", {"pattern": "foo"}, "search", "foo"),
    ("search", {"query": "where is auth"}, "search", "where is auth"),
    ("find_files", {"pattern": "*.py"}, "search", "*.py"),
    ("run_command", {"cmd": "make test"}, "bash", "make test"),
    ("run_bash", {"command": "cat a.py"}, "read", "a.py"),
    ("shell", {"command": "npm test"}, "bash", "npm test"),
    ("execute", {"command": "ls"}, "search", "ls"),
    ("mcp__fs__read_file", {"path": "x.ts"}, "read", "x.ts"),
    # Claude Code's PowerShell tool on Windows: cmdlets and their aliases, any case
    ("PowerShell", {"command": "Get-Content src\\color\\palette.go"}, "read", "src/color/palette.go"),
    ("PowerShell", {"command": "gc -Path 'D:\\repo\\go.mod' -Encoding utf8"}, "read", "D:/repo/go.mod"),
    ("PowerShell", {"command": "Get-ChildItem -Path src -Recurse"}, "search", "src"),
    ("PowerShell", {"command": "Select-String -Pattern 'Init' -Path src/*.go"}, "search", "Init"),
    ("PowerShell", {"command": "sls Persist src/cache.go"}, "search", "Persist"),
    ("PowerShell", {"command": "Set-Content a.txt x"}, "bash", "Set-Content a.txt x"),
    ("PowerShell", {"command": "Get-Content a.txt > b.txt"}, "bash", "Get-Content a.txt > b.txt"),
    # unknown names fall back to words and input keys
    ("readConfigFile", {"path": "cfg.yaml"}, "read", "cfg.yaml"),
    ("do_thing", {"command": "pytest"}, "bash", "pytest"),
    ("create_user", {"name": "bob"}, "other", "create_user"),
    ("weird", "not a dict", "other", "weird"),
])
def test_classify_tool(name: str, tool_input: Any, role: str, target: str) -> None:
    """Each tool name/input shape maps to its role and target."""
    got = classify_tool(name, tool_input)
    assert (got.role, got.target) == (role, target)


class TestToolRoleDetails:
    def test_identical_edits_share_a_key(self) -> None:
        """Two edits with the same old→new text get the same edit key, whatever the tool."""
        a = classify_tool("Edit", {"file_path": "a.py", "old_string": "x", "new_string": "y"})
        b = classify_tool(EDITOR, {"command": "str_replace", "path": "a.py", "old_str": "x", "new_str": "y"})
        assert a.edit_key == b.edit_key and a.edit_key is not None

    def test_revert_key_is_the_reverse_edit(self) -> None:
        """The edit y→x has as key the revert key of x→y."""
        forward = classify_tool("Edit", {"file_path": "a.py", "old_string": "x", "new_string": "y"})
        back = classify_tool("Edit", {"file_path": "a.py", "old_string": "y", "new_string": "x"})
        assert back.edit_key == forward.revert_key

    def test_partial_reads_carry_their_range(self) -> None:
        """Read with offset/limit and sed -n ranges keep the range, so different parts differ."""
        partial = classify_tool("Read", {"file_path": "a", "offset": 100, "limit": 50})
        assert partial.read_range == "offset=100,limit=50"
        assert classify_tool("bash", {"command": "sed -n 1,40p a.py"}).read_range == "-n 1,40p"
        assert classify_tool("Read", {"file_path": "a"}).read_range is None

    def test_bash_program_sees_through_launchers(self) -> None:
        """uv run / python -m / npx report the program they run, so retries with other launchers match."""
        assert classify_tool("bash", {"command": "uv run pytest -x"}).program == "pytest"
        assert classify_tool("bash", {"command": "python -m pytest"}).program == "pytest"
        assert classify_tool("bash", {"command": "npx jest auth"}).program == "jest"
        assert classify_tool("bash", {"command": "npm test"}).program == "npm test"

    def test_modifying_commands_name_their_paths(self) -> None:
        """sed -i, rm and output redirection mark paths as changed; formatters change everything."""
        assert classify_tool("bash", {"command": "sed -i 's/a/b/' setup.cfg"}).changed_paths == ("setup.cfg",)
        assert classify_tool("bash", {"command": "rm build/out.txt"}).changed_paths == ("build/out.txt",)
        assert classify_tool("bash", {"command": "black ."}).global_change
        assert classify_tool("bash", {"command": "git checkout -- src"}).global_change

    def test_never_raises_on_odd_input(self) -> None:
        """None names, None inputs, lists and empty commands classify as something."""
        odd = [(None, None), ("Bash", {"command": ""}), ("Bash", {"command": ["ls", "-la"]}), ("Read", {}),
               ("Edit", {"edits": "nonsense"}), ("bash", {"command": "'"})]
        for name, tool_input in odd:
            assert classify_tool(name, tool_input).role

    def test_call_info_is_memoised_per_call(self) -> None:
        """Asking twice about the same call object returns the very same answer."""
        call = ToolCall(session="s", tool_use_id="t", name="Read", turn_index=1, input={"file_path": "a"})
        assert call_info(call) is call_info(call)

    def test_call_info_sees_a_mutated_call(self) -> None:
        """A reused ToolCall object whose result changed is classified again."""
        call = ToolCall(session="s", tool_use_id="t", name="Read", turn_index=1, input={"file_path": "a"},
                        result="ok")
        assert call_info(call).error is None
        call.result = "File does not exist."
        assert call_info(call).error == "not_found"


@pytest.mark.parametrize(("text", "flag", "expected"), [
    ("File does not exist.", True, "not_found"),
    ("cat: foo.py: No such file or directory", None, "not_found"),
    ("Error: ENOENT: no such file or directory, open 'x.json'", False, "not_found"),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'x'", None, "not_found"),
    ("String to replace not found in file.\nString: foo", True, "no_match"),
    ("No replacement was performed, old_str `x` did not appear verbatim in /a.py.", True, "no_match"),
    ("No replacement was performed. Multiple occurrences of old_str `x` in lines [3, 9].", True, "no_match"),
    ("Found 2 matches of the string to replace, but replace_all is false.", True, "no_match"),
    ("Error: no match for old_string in a.py", None, "no_match"),
    ("old_str is not unique in the file", None, "no_match"),
    ("/bin/bash: line 1: pnpm: command not found", True, "command_not_found"),
    ("sh: 1: rg: not found", None, "command_not_found"),
    ("pytest: error: unrecognized arguments: --coverage", None, "bad_option"),
    ("ls: invalid option -- 'z'", None, "bad_option"),
    ("error: unknown option '--frozen'", None, "bad_option"),
    ("Error: Exit code 1\nFAILED tests/test_a.py", True, "nonzero_exit"),
    ("Command exited with code 2", None, "nonzero_exit"),
    ("Process returned non-zero exit status 1", None, "nonzero_exit"),
    ("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad", None, "traceback"),
    ("bash: ./deploy.sh: Permission denied", True, "permission"),
    ("Something odd happened", True, "other_error"),
    ("Error: the server said no", None, "other_error"),
    ("3 passed in 0.12s", None, None),
    ("3 passed in 0.12s", False, None),
    ("", None, None),
])
def test_classify_error(text: str, flag: bool | None, expected: str | None) -> None:
    """Error text and is_error flag map to one short error class (None: success)."""
    assert classify_error(text, flag) == expected


class TestClassifyErrorEdges:
    def test_error_words_inside_a_successful_read_are_ignored(self) -> None:
        """A long successful result mentioning "No such file" in its middle is not an error."""
        source = "def load(p):\n" + "    pass\n" * 200 + "# raises: No such file or directory\n" + "x\n" * 200
        assert classify_error(source, False) is None

    @pytest.mark.parametrize("numbered", [
        "     1→package color\n     2→\n    13→\tpaletteKeyError = \"palette: color %s does not exist\"\n",
        "1\tpackage color\n2\t\n13\t\tpaletteKeyError = \"palette: color %s does not exist\"\n",
    ])
    def test_a_read_file_that_talks_about_errors_did_not_fail(self, numbered: str) -> None:
        """A read quotes the file with line numbers (Claude Code's two formats, `cat -n`): an error message
        the file's code raises is the file's text, not the read failing."""
        assert classify_error(numbered, None) is None
        assert classify_error(numbered, False) is None

    def test_a_numbered_file_does_not_hide_the_tools_own_error(self) -> None:
        """The read tool's own message, on a line without a number, still counts."""
        text = "File does not exist.\n     1→but this one does\n"
        assert classify_error(text, None) == "not_found"

    @pytest.mark.parametrize("passed", [
        "@chkit/core:test: (pass) parseFlags > throws UnknownFlagError for unknown flags [1.53ms]\n",
        " ✓ rejects an unknown option --frobnicate (3 ms)\n",
        "--- PASS: TestReadReportsNoSuchFileOrDirectory (0.00s)\n",
        "tests/test_cli.py::test_unrecognized_arguments_exit_2 PASSED\n",
    ])
    def test_a_passing_test_named_after_an_error_is_not_one(self, passed: str) -> None:
        """Test output grepped for errors lists tests that passed; an error phrase in a test's name is not
        the run failing. A failing line beside it still counts."""
        assert classify_error(passed * 3, None) is None
        assert classify_error(passed + "grep: unrecognized option '--colour-always'\n", None) == "bad_option"

    def test_quoted_file_lines_and_passing_tests_are_left_out_together(self) -> None:
        """A result quoting both a file's numbered lines and a passing test's name, each with an error
        phrase in it: neither is the call failing."""
        text = "    12→    raise FileNotFoundError('No such file or directory')\n ✓ rejects an unknown option\n"
        assert classify_error(text, None) is None

    def test_exit_code_at_the_end_of_long_output_counts(self) -> None:
        """Bash tools that append the exit status after long output are still failures."""
        assert classify_error("line\n" * 2000 + "[exit code: 1]", None) == "nonzero_exit"

    def test_only_the_first_two_kilobytes_are_searched(self) -> None:
        """An error pattern beyond the first ~2 KB of a flagged result is not looked for."""
        assert classify_error("x" * 5000 + "No such file", True) == "other_error"

    def test_error_line_picks_the_offending_line(self) -> None:
        """The line shown for an error is the one that matched, not a usage banner."""
        text = "usage: pytest [options]\npytest: error: unrecognized arguments: --coverage"
        assert error_line(text, "bad_option") == "pytest: error: unrecognized arguments: --coverage"
        assert bad_flag(text) == "--coverage"

    def test_path_tokens_are_bounded(self) -> None:
        """Path extraction reads a bounded prefix and returns a bounded number of tokens."""
        text = " ".join(f"src/m{i}.py" for i in range(10_000))
        tokens = path_tokens(text, limit_chars=4096, max_tokens=50)
        assert tokens[:2] == ["src/m0.py", "src/m1.py"] and len(tokens) == 50


@pytest.mark.parametrize(("text", "expected"), [
    ("flag provided but not defined: -x\nUsage of ./server:", "bad_option"),
    ("fatal: ambiguous argument 'v2.9': unknown revision or path not in the working tree.", "not_found"),
    ("error: pathspec 'src/old.py' did not match any file(s) known to git", "not_found"),
    ("make: *** No rule to make target 'deploy'.  Stop.", "not_found"),
])
def test_classify_error_knows_go_git_and_make_errors(text: str, expected: str) -> None:
    """Go's flag package, git's unknown revisions and pathspecs and make's missing targets are classified."""
    assert classify_error(text, True) == expected


def test_bad_flag_reads_go_flag_errors() -> None:
    """`flag provided but not defined: -x` names the flag -x."""
    assert bad_flag("flag provided but not defined: -x\nUsage of ./server:") == "-x"


def test_fast_classifier_agrees_with_the_rules_in_order() -> None:
    """The single-pass classifier gives the first matching rule in rule order, for every phrase in any context."""
    from otel_agent_trace.detectors.errors import _RULES, classify_window

    def reference(low: str) -> str | None:
        return next((rule.name for rule in _RULES if rule.find(low) >= 0), None)

    samples = ["", "3 passed", "if not x: return None  # no such luck", "exit code 0", "returncode=0"]
    for rule in _RULES:
        for phrase in rule.phrases + rule.gate:
            samples += [phrase, f"line one\n{phrase} tail", f"x {phrase}: not found: /tmp", f"{phrase} exit code 3"]
    for low in samples:
        assert classify_window(low) == reference(low), low


@pytest.mark.parametrize(("raw", "expected"), [
    ("./src//a.py/", "src/a.py"),
    ("D:\\oh-my-posh\\src\\color\\palette.go", "D:/oh-my-posh/src/color/palette.go"),
    ("src\\color\\palette.go", "src/color/palette.go"),
    ("my\\ file.txt", "my\\ file.txt"),  # a shell escape, not a separator
])
def test_norm_path_gives_one_spelling_per_file(raw: str, expected: str) -> None:
    """Windows separators become slashes, so a file read as ``D:\\x\\a.go`` has the names any path has."""
    from otel_agent_trace.detectors.roles import norm_path

    assert norm_path(raw) == expected


@pytest.mark.parametrize(("command", "read_range"), [
    ("Get-Content src/a.go", None),
    ("Get-Content src/a.go -TotalCount 40", "-TotalCount 40"),
    ("Get-Content -Tail 20 src/a.go", "-Tail 20"),
    ("gc src/a.go | Select-Object -First 10", "Select-Object -First 10"),
])
def test_a_powershell_read_of_part_of_a_file_says_which_part(command: str, read_range: str | None) -> None:
    """A head or tail of a file is not a whole-file read: context_drift never counts it as a re-read."""
    role = classify_tool("PowerShell", {"command": command})
    assert (role.role, role.path, role.read_range) == ("read", "src/a.go", read_range)


def test_a_powershell_listing_without_a_path_has_none() -> None:
    """`Get-ChildItem -Recurse` lists the working directory: no path, as for a bare `ls`."""
    role = classify_tool("PowerShell", {"command": "Get-ChildItem -Recurse"})
    assert (role.role, role.path) == ("search", None)
