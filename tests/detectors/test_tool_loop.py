"""tool_loop: the same failing call, turn after turn, with no change of strategy."""

from __future__ import annotations

from otel_agent_trace.testing.scenario import bash, edit, glob, grep, read, tool, turn

from .conftest import Detect

K = "tool_loop"
NO_MATCH = "String to replace not found in file."
MISSING = "File does not exist."


def _bad_edit(old: str) -> dict:
    return edit("auth.ts", old, old + "!", NO_MATCH, error=True)


class TestToolLoop:
    def test_three_failed_string_edits_are_a_loop(self, detect: Detect) -> None:
        """Three turns of no_match edits on one file are one loop, reported at the third."""
        found = detect(K, turn(read("auth.ts")), turn(_bad_edit("a")), turn(_bad_edit("b")),
                       turn(_bad_edit("c")), turn())
        assert [(f.turn, f.turns, f.severity) for f in found] == [(4, [2, 3, 4], "warning")]
        assert found[0].evidence["error_class"] == "no_match" and "re-read" in found[0].message
        assert len(found[0].tool_use_ids) == 3

    def test_three_different_successful_reads_are_not_a_loop(self, detect: Detect) -> None:
        """Reading three different files successfully is exploring, not looping."""
        found = detect(K, turn(read("a.py")), turn(read("b.py")), turn(read("c.py")), turn())
        assert found == []

    def test_guessed_paths_are_a_loop(self, detect: Detect) -> None:
        """Three turns of different guessed paths, each not found, are a path-guessing loop."""
        guesses = [turn(read(p, MISSING, error=True)) for p in ("a/x.ts", "b/x.ts", "c/x.ts")]
        found = detect(K, *guesses, turn())
        assert [f.turn for f in found] == [3]
        assert "glob or directory listing" in found[0].message
        assert found[0].evidence["targets"] == ["a/x.ts", "b/x.ts", "c/x.ts"]

    def test_parallel_guesses_in_one_turn_are_not_a_loop(self, detect: Detect) -> None:
        """Three guesses in one turn were tried at once, not retried after an error."""
        guesses = [read(p, MISSING, error=True) for p in ("a/x.ts", "b/x.ts", "c/x.ts")]
        found = detect(K, turn(*guesses), turn(read("x.ts")), turn())
        assert found == []

    def test_a_listing_between_guesses_ends_the_streak(self, detect: Detect) -> None:
        """A successful glob between guesses is a change of strategy."""
        found = detect(K, turn(read("a/x.ts", MISSING, error=True)),
                       turn(read("b/x.ts", MISSING, error=True)), turn(glob("**/x.ts", "src/x.ts")),
                       turn(read("c/x.ts", MISSING, error=True)), turn())
        assert found == []

    def test_identical_failing_bash_commands_are_a_loop(self, detect: Detect) -> None:
        """The same command failing the same way three turns running is a loop."""
        fail = bash("npm test", "Error: Exit code 1\nTypeError: x is undefined", error=True)
        found = detect(K, turn(fail), turn(fail), turn(fail), turn())
        assert [f.turn for f in found] == [3]
        assert found[0].evidence["target"] == "npm test"

    def test_edits_between_failing_runs_are_iterations(self, detect: Detect) -> None:
        """Test runs that fail differently between code edits are TDD, not a loop."""
        fails = [bash("pytest -q", f"Exit code 1\nFAILED tests/test_a.py::{name} - AssertionError", error=True)
                 for name in ("test_parse", "test_render", "test_save")]
        found = detect(K, turn(fails[0]), turn(edit("a.py", "1", "2")), turn(fails[1]),
                       turn(edit("a.py", "2", "3")), turn(fails[2]), turn())
        assert found == []

    def test_the_very_same_command_retried_unchanged_is_a_loop_whatever_it_says(self, detect: Detect) -> None:
        """`git commit` retried three times against a signing agent that fails in other words each time:
        nothing changed between the tries, so the model did not change strategy."""
        errors = ("error: 1Password: agent returned an error", "error: gpg failed to sign the data",
                  "error: signing failed: agent refused operation")
        fails = [bash("git commit -m 'Add parser'", f"Exit code 128\n{e}\nfatal: failed to write commit object",
                      error=True) for e in errors]
        found = detect(K, turn(fails[0]), turn(fails[1]), turn(fails[2]), turn())
        assert [f.turn for f in found] == [3]

    def test_the_same_command_failing_differently_after_an_edit_is_progress(self, detect: Detect) -> None:
        """The same test command failing on another test after each edit is test-driven work."""
        fails = [bash("pytest -q", f"Exit code 1\nFAILED tests/test_a.py::{name} - AssertionError", error=True)
                 for name in ("test_parse", "test_render", "test_save")]
        found = detect(K, turn(fails[0]), turn(edit("a.py", "1", "2")), turn(fails[1]),
                       turn(bash("sed -i s/a/b/ a.py", "")), turn(fails[2]), turn())
        assert found == []

    def test_the_same_failure_after_cosmetic_edits_is_a_loop(self, detect: Detect) -> None:
        """Edits after which the command fails exactly as before (numbers aside) changed nothing: a loop."""
        fails = [bash("git commit -m wip", f"Pre-commit validation failed:\n[DIALYZER]\nTotal errors: 2, took {n}s",
                      error=True) for n in (41, 38, 44)]
        found = detect(K, turn(fails[0]), turn(edit("a.ex", "1", "2")), turn(fails[1]),
                       turn(edit("a.ex", "2", "3")), turn(fails[2]), turn())
        assert [f.turn for f in found] == [5]

    def test_a_read_that_cures_the_edits_ends_the_streak(self, detect: Detect) -> None:
        """Re-reading the file after two failed edits, then an edit that works: the read was the fix, so a
        later failure starts anew."""
        found = detect(K, turn(_bad_edit("a")), turn(_bad_edit("b")), turn(read("auth.ts")),
                       turn(edit("auth.ts", "a", "b", "ok")), turn(_bad_edit("c")), turn())
        assert found == []

    def test_edits_still_missing_after_a_read_go_on_looping(self, detect: Detect) -> None:
        """An edit fails, the model reads the lines, fails again, inspects them with the shell and fails a
        third time (each string one tab short): reading did not show it what is wrong, so it is one loop,
        and the advice is not "re-read"."""
        found = detect(K, turn(_bad_edit("a")), turn(read("auth.ts")), turn(_bad_edit("b")),
                       turn(bash("sed -n '10,20p' auth.ts", "    const token = ...")), turn(_bad_edit("c")), turn())
        assert [(f.turn, f.turns) for f in found] == [(5, [1, 3, 5])]
        assert "reading the file did not help" in found[0].message

    def test_reads_between_missing_edits_are_part_of_the_retrying(self, detect: Detect) -> None:
        """Fail, read, fail, then format, read twice and fail again: five turns apart, but the model spent
        them on the lines it keeps failing to match, so the gap counts from its last read."""
        found = detect(K, turn(_bad_edit("a")), turn(read("auth.ts")), turn(_bad_edit("b")),
                       turn(bash("gofmt -w .", "")), turn(bash("sed -n '10,20p' auth.ts", "x")),
                       turn(read("auth.ts")), turn(read("auth.ts")), turn(_bad_edit("c")), turn())
        assert [(f.turn, f.turns) for f in found] == [(8, [1, 3, 8])]

    def test_a_changed_error_class_is_a_new_streak(self, detect: Detect) -> None:
        """Failures with different error classes are progress, not the same loop."""
        found = detect(K, turn(bash("make", "make: *** No rule. Error: Exit code 2", error=True)),
                       turn(bash("make", "Permission denied", error=True)),
                       turn(bash("make", "Error: Exit code 2", error=True)), turn())
        assert found == []

    def test_a_run_that_ends_in_a_persisting_loop_gets_one_error(self, detect: Detect) -> None:
        """A 7-turn streak the run ends in: a warning at the 3rd repeat, and at the end one error (the loop
        cost the run) at its last failure, nothing more."""
        found = detect(K, *[turn(_bad_edit(str(i))) for i in range(7)], turn())
        assert [(f.turn, f.severity) for f in found] == [(3, "warning"), (7, "error")]
        assert "the run ended still looping" in found[1].message

    def test_a_long_loop_the_model_got_out_of_is_waste_not_a_failed_run(self, detect: Detect) -> None:
        """Seven failed edits, then a read and a working edit, then more work: one warning, no error."""
        found = detect(K, *[turn(_bad_edit(str(i))) for i in range(7)], turn(read("auth.ts")),
                       turn(edit("auth.ts", "a", "b", "ok")), *[turn(read(f"src/m{i}.py")) for i in range(6)], turn())
        assert [(f.turn, f.severity) for f in found] == [(3, "warning")]

    def test_a_loop_left_behind_long_before_the_end_is_not_escalated(self, detect: Detect) -> None:
        """The model gave up on the failing command and went on working: the run did not end in the loop."""
        fail = bash("npm test", "Error: Exit code 1", error=True)
        found = detect(K, *[turn(fail) for _ in range(6)], *[turn(read(f"src/m{i}.py")) for i in range(8)],
                       turn())
        assert [(f.turn, f.severity) for f in found] == [(3, "warning")]

    def test_a_long_gap_breaks_the_streak(self, detect: Detect) -> None:
        """Failures far apart (more than four turns) are new attempts, not retries."""
        fail = bash("npm test", "Error: Exit code 1", error=True)
        gap = [turn(read(c)) for c in "abcd"]
        found = detect(K, turn(fail), *gap, turn(fail), *gap, turn(fail), turn())
        assert found == []

    def test_retries_spread_over_non_adjacent_turns_are_a_loop(self, detect: Detect) -> None:
        """The same failure retried with two or three unrelated turns between is still a loop."""
        fail = bash("npm test", "Error: Exit code 1", error=True)
        found = detect(K, turn(fail), turn(read("a")), turn(read("b")), turn(fail), turn(read("c")),
                       turn(read("d")), turn(read("e")), turn(fail), turn())
        assert [f.turn for f in found] == [8]

    def test_reading_other_files_does_not_end_path_guessing(self, detect: Detect) -> None:
        """Guess, read a known file, guess, guess: the reads did not ground the guesses."""
        miss = "Error: ENOENT: no such file or directory"
        found = detect(K, turn(read("src/config.ts", miss, error=True)), turn(read("package.json")),
                       turn(read("config/app.ts", miss, error=True)), turn(read("lib/settings.ts", miss, error=True)),
                       turn())
        assert [f.turn for f in found] == [4]

    def test_a_failed_listing_of_a_guessed_directory_is_a_guess(self, detect: Detect) -> None:
        """`ls guessed/dir` failing counts with not-found reads as path guessing."""
        miss = "ls: cannot access 'src/cfg': No such file or directory"
        found = detect(K, turn(bash("ls src/cfg", miss, error=True)),
                       turn(read("src/config/app.ts", "ENOENT: no such file or directory", error=True)),
                       turn(bash("ls config", "ls: cannot access 'config': No such file or directory", error=True)),
                       turn())
        assert [f.turn for f in found] == [3]

    def test_min_repeats_is_a_setting(self, detect: Detect) -> None:
        """loop_min_repeats=4 needs a fourth failure."""
        turns = [turn(_bad_edit(str(i))) for i in range(3)]
        assert detect(K, *turns, turn(), loop_min_repeats=4) == []

    def test_unknown_tools_loop_too(self, detect: Detect) -> None:
        """A custom tool failing the same way three times is reported under its name."""
        call = tool("deploy_preview", {"env": "staging"}, "Error: quota exceeded", error=True)
        found = detect(K, turn(call), turn(call), turn(call), turn())
        assert [f.turn for f in found] == [3] and "deploy_preview" in found[0].message


def test_the_quoted_error_is_the_line_that_reads_like_one(detect: Detect) -> None:
    """The loop's evidence quotes the OperationalError line, not the "Exit code 1" banner above it."""
    output = ("Exit code 1\nImportError while loading conftest '/repo/tests/conftest.py'.\n"
              "tests/conftest.py:14: in <module>\n    engine.connect()\n"
              "E   sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at"
              " \"db\" (10.0.0.5), port 5432 failed: Connection refused\n"
              "E   \tIs the server running on that host and accepting TCP/IP connections?")
    fail = bash("pytest -q", output, error=True)
    found = detect(K, turn(fail), turn(fail), turn(fail), turn())
    quoted = found[0].evidence["first_error"]
    assert "OperationalError" in quoted and "Connection refused" in quoted and "Exit code 1" not in quoted


def test_searches_finding_nothing_are_a_loop(detect: Detect) -> None:
    """Three turns of globs and greps with slightly varied patterns, each finding nothing, are a loop."""
    found = detect(K, turn(glob("assets/**/*.scss", "No files found")), turn(glob("assets/css/*", "No files found")),
                   turn(grep("spotter\\.css", "No matches found")), turn())
    assert [f.turn for f in found] == [3] and "finding nothing" in found[0].message


def test_claude_codes_no_output_notice_is_an_empty_search(detect: Detect) -> None:
    """Claude Code's Bash tool answers an empty output with "(Bash completed with no output)": three greps
    that got only that found nothing."""
    empty = "(Bash completed with no output)"
    found = detect(K, turn(bash("grep -rn 'walCheckpoint' internal/ | head", empty)),
                   turn(bash("grep -rn 'wal_checkpoint' internal/ | head", empty)),
                   turn(bash("find . -name '*wal*'", empty)), turn())
    assert [f.turn for f in found] == [3] and "finding nothing" in found[0].message


def test_output_piped_into_greps_that_print_nothing_is_a_loop(detect: Detect) -> None:
    """The lint run piped into one guessed pattern after another, each grep printing nothing: whatever
    ran, the grep was the search, and it kept finding nothing."""
    found = detect(K, turn(bash("pnpm --filter web lint 2>&1 | grep 'no-explicit-any' | head -30", "")),
                   turn(bash("pnpm --filter web lint 2>&1 | grep -i 'any\\|warning' | head -30", "")),
                   turn(bash("./omp print debug --shell pwsh 2>&1 | grep -iE 'cache|restored'",
                             "(Bash completed with no output)")), turn())
    assert [f.turn for f in found] == [3] and "finding nothing" in found[0].message


def test_powershell_searches_finding_nothing_are_a_loop(detect: Detect) -> None:
    """Select-String is PowerShell's grep: three patterns, each printing nothing, are the same loop."""
    found = detect(K, *[turn(tool("PowerShell", {"command": f"Select-String -Pattern '{p}' -Path src/*.go"}, ""))
                        for p in ("cache.Init", "cache\\.Init\\(", "Init(")], turn())
    assert [f.turn for f in found] == [3] and "finding nothing" in found[0].message


def test_a_quiet_command_without_a_grep_is_not_an_empty_search(detect: Detect) -> None:
    """A type check or a formatter that prints nothing passed: no search found nothing."""
    found = detect(K, *[turn(bash("pnpm exec tsc --noEmit 2>&1 | tail -5", "")) for _ in range(3)], turn())
    assert found == []


def test_a_search_that_finds_something_ends_the_empty_streak(detect: Detect) -> None:
    """Two empty globs, a grep with hits, an empty glob: the search moved on, no loop."""
    found = detect(K, turn(glob("a/*", "No files found")), turn(glob("b/*", "No files found")),
                   turn(grep("x", "src/a.py:1:x")), turn(glob("c/*", "No files found")), turn())
    assert found == []


def test_an_empty_git_diff_is_not_an_empty_search(detect: Detect) -> None:
    """Commands that print nothing when all is well (git diff) are not searches finding nothing."""
    found = detect(K, *[turn(bash("git diff", "")) for _ in range(3)], turn())
    assert found == []


def test_github_cli_reads_that_fetch_nothing_are_a_loop(detect: Detect) -> None:
    """A CI run's log asked for again and again with other flags and filters, each time printing nothing."""
    found = detect(K, turn(bash("gh run view 22 --log-failed 2>&1 | tail -40", "")),
                   turn(bash("gh run view 22 --log-failed 2>&1 | grep -E 'fail' | head -20", "")),
                   turn(bash("gh run view 22 --log 2>&1 | grep -i fail", "")), turn())
    assert [f.turn for f in found] == [3] and "finding nothing" in found[0].message


def test_edits_refused_for_not_reading_first_are_a_loop(detect: Detect) -> None:
    """Writes to three files, each refused because it was not read first: the same missing step."""
    refused = "<tool_use_error>File has not been read yet. Read it first before writing to it.</tool_use_error>"
    found = detect(K, *[turn(tool("Write", {"file_path": f"src/m{i}.swift", "content": "x"}, refused, error=True))
                        for i in range(3)], turn())
    assert [f.turn for f in found] == [3] and "not read first" in found[0].message


def test_reading_the_file_ends_the_refused_edits(detect: Detect) -> None:
    """A read between refused writes is the cure: the next refusal starts anew."""
    refused = "File has been modified since read, either by the user or by a linter. Read it again."
    write = tool("Write", {"file_path": "a.py", "content": "x"}, refused, error=True)
    found = detect(K, turn(write), turn(write), turn(read("a.py")), turn(write), turn())
    assert found == []

def test_the_message_describes_the_error_without_quoting_the_output(detect: Detect) -> None:
    """The loop message names the error class in words; no text of the tool's output is in it."""
    fail = bash("make deploy", "Error: upstream said: zebra-unicorn-quota-marker\n[exit code 1]", error=True)
    found = detect(K, turn(fail), turn(fail), turn(fail), turn())
    assert found and "zebra-unicorn" not in found[0].message and "upstream" not in found[0].message



def test_reads_and_other_queries_do_not_end_an_empty_search_streak(detect: Detect) -> None:
    """Empty greps with a read and a `git diff` between them: neither answered the search, still a loop."""
    found = detect(K, turn(grep("def render_page", "No matches found")), turn(grep("render_page", "No matches found")),
                   turn(bash("git diff --name-only", "src/app.py")), turn(read("src/app.py")),
                   turn(grep("render_page", "No matches found")), turn())
    assert [f.turn for f in found] == [5]


def _pyright(line: int, message: str) -> dict:
    return bash("uv run pyright", f"/repo/src/conv.py\n  /repo/src/conv.py:{line}:17 - error: {message}\n"
                "1 error, 0 warnings, 0 informations", error=True)


def test_edits_that_go_round_in_circles_are_a_loop(detect: Detect) -> None:
    """Type errors at the same lines after each edit are one failure tweaked, not progress (TDD)."""
    found = detect(K, turn(_pyright(184, 'Type of "value" is unknown')), turn(edit("src/conv.py", "a", "b")),
                   turn(_pyright(184, 'Type of "value" is unknown')), turn(edit("src/conv.py", "b", "c")),
                   turn(_pyright(183, "Unnecessary isinstance call")), turn())
    assert [f.turn for f in found] == [5]


def test_an_earlier_failure_coming_back_continues_the_streak(detect: Detect) -> None:
    """A, B, A between edits: the edits went round in a circle; the third failure is the loop."""
    fails = [bash("pytest -q", f"Exit code 1\nE   {msg}", error=True)
             for msg in ("KeyError: 'user'", "TypeError: bad operand", "KeyError: 'user'")]
    found = detect(K, turn(fails[0]), turn(edit("a.py", "1", "2")), turn(fails[1]),
                   turn(edit("a.py", "2", "3")), turn(fails[2]), turn())
    assert [f.turn for f in found] == [5]


def test_errors_far_apart_in_a_file_after_edits_are_progress(detect: Detect) -> None:
    """Each edit fixes one type error and the checker moves on to another part of the file: TDD."""
    found = detect(K, turn(_pyright(40, "a")), turn(edit("src/conv.py", "a", "b")), turn(_pyright(120, "b")),
                   turn(edit("src/conv.py", "b", "c")), turn(_pyright(300, "c")), turn())
    assert found == []


def test_running_the_failing_tests_one_by_one_is_diagnosing_not_a_loop(detect: Detect) -> None:
    """The suite fails, then one failing test and then another are run to read their errors, with no edit
    between: each run tells the model something new (different errors), a change of strategy."""
    suite = bash("pytest t.py --tb=no", "Exit code 1\n===== test session starts =====\n2 failed, 80 passed",
                 error=True)
    one = bash("pytest t.py::test_octets -x", "Exit code 1\nE   AssertionError: assert 'a' not in ['a']", error=True)
    other = bash("pytest t.py::test_lines -x", "Exit code 1\nE   KeyError: 'line'", error=True)
    assert detect(K, turn(suite), turn(one), turn(other), turn()) == []


def test_a_retry_the_shell_rejects_continues_the_loop(detect: Detect) -> None:
    """The same search fails twice with one error; the third try varies a flag with an unquoted glob, and
    the shell refuses it before the program runs: a retry that failed on the way, not a new failure that
    teaches the model something, so the loop is reported at the third attempt."""
    remote = "Exit code 1\ncould not find 'origin' remote: remote not found"
    calls = [bash('tool search "x" --json', remote, error=True),
             bash('tool search "x" --json --repo "org/name"', remote, error=True),
             bash('tool search "x" --json repo:*', "Exit code 1\n(eval):1: no matches found: repo:*", error=True)]
    found = detect(K, *[turn(c) for c in calls], turn())
    assert [f.turn for f in found] == [3]


def test_a_different_failure_of_the_program_itself_is_still_progress(detect: Detect) -> None:
    """Against the rule above: when the third try runs and fails differently, the model learned something."""
    remote = "Exit code 1\ncould not find 'origin' remote: remote not found"
    calls = [bash('tool search "x" --json', remote, error=True),
             bash('tool search "x" --json --repo "org/name"', remote, error=True),
             bash('tool search "x" --json --all', "Exit code 1\nError: index is empty, run `tool index` first",
                  error=True)]
    assert detect(K, *[turn(c) for c in calls], turn()) == []


def test_the_same_refusal_told_at_more_length_is_a_similar_error(detect: Detect) -> None:
    """"requires approval" in a long and a short wording, three times: similar errors, a loop."""
    long = "This Bash command contains multiple operations. The following part requires approval: claude -p x"
    calls = [bash('claude -p "x" | head', long, error=True), bash('claude -p "x"', "This command requires approval",
                                                                   error=True),
             bash("claude --version", "This command requires approval", error=True)]
    found = detect(K, *[turn(c) for c in calls], turn())
    assert [f.turn for f in found] == [3]


REFUSED = "<tool_use_error>File has not been read yet. Read it first before writing to it.</tool_use_error>"


def test_edits_refused_file_after_file_over_the_session_are_one_habit(detect: Detect) -> None:
    """Each edit refused for want of a read is cured by one read, but it happens again on another file,
    and again, turns apart: the model keeps editing from old reads. One loop, at the third file."""
    turns = []
    for name in ("a.py", "b.py", "c.py", "d.py"):
        turns += [turn(edit(name, "x", "y", REFUSED, error=True)), turn(read(name)), turn(edit(name, "x", "y")),
                  *[turn(bash(f"echo {i}", "ok")) for i in range(6)]]
    found = detect(K, *turns, turn())
    assert [(f.turn, f.severity) for f in found] == [(19, "warning")]
    assert found[0].turns == [1, 10, 19] and "3 files" in found[0].message


def test_one_file_refused_again_after_reads_is_not_a_habit(detect: Detect) -> None:
    """The same file refused three times over the session (a formatter keeps changing it): each time the
    read cured it; no habit across files, no loop."""
    turns = []
    for _ in range(3):
        turns += [turn(edit("a.py", "x", "y", REFUSED, error=True)), turn(read("a.py")), turn(edit("a.py", "x", "y")),
                  *[turn(bash(f"echo {i}", "ok")) for i in range(6)]]
    assert detect(K, *turns, turn()) == []


def _ruff_missing(path: str) -> dict:
    return bash(f"ruff check {path}", f"{path}:1:1: E902 No such file or directory (os error 2)\nFound 1 error.",
                error=True)


class TestWrongWorkingDirectory:
    def test_relative_paths_that_exist_elsewhere_failing_again_and_again_are_a_loop(self, detect: Detect) -> None:
        """Known files named relative to the wrong directory, retried far apart: one loop, at the third."""
        found = detect(K, turn(read("/repo/src/app.py")), turn(read("/repo/tests/test_app.py")),
                       turn(_ruff_missing("src/app.py")),
                       turn(bash("ruff check /repo/src/app.py", "All checks passed!")),
                       *[turn(read(f"/repo/src/m{i}.py")) for i in range(6)],
                       turn(_ruff_missing("tests/test_app.py")), turn(read("/repo/src/m9.py")),
                       turn(_ruff_missing("src/app.py")), turn())
        assert [f.turn for f in found] == [13]
        assert "another directory" in found[0].message and found[0].evidence["target"] is None

    def test_a_relative_path_that_works_again_ends_it(self, detect: Detect) -> None:
        """`cd` back to the project: relative paths resolve again, the earlier failures are over."""
        found = detect(K, turn(read("/repo/src/app.py")), turn(_ruff_missing("src/app.py")),
                       turn(_ruff_missing("src/app.py")),
                       turn(bash("cd /repo && ruff check src/app.py", "All checks passed!")),
                       turn(_ruff_missing("src/app.py")), turn())
        assert found == []

    def test_unknown_relative_paths_far_apart_are_not_this_loop(self, detect: Detect) -> None:
        """Paths nothing showed to exist, failing many turns apart: no wrong-directory loop."""
        found = detect(K, *[t for i in range(3) for t in (turn(_ruff_missing(f"lib/x{i}.py")),
                                                           *[turn(read(f"/repo/a{i}{j}.py")) for j in range(6)])],
                       turn())
        assert found == []
