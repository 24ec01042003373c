"""context_drift: re-reading unchanged files, re-applying edits."""

from __future__ import annotations

from otel_agent_trace.testing.scenario import bash, edit, read, tool, turn

from .conftest import Detect

K = "context_drift"


def _busy(n: int, start: int = 0) -> list[dict]:
    """n turns of unrelated work (edits elsewhere and test runs)."""
    return [turn(edit(f"other{start + i}.py", "a", "b")) if i % 2 == 0
            else turn(bash("pytest -q", "1 passed")) for i in range(n)]


class TestContextDrift:
    def test_reread_of_unchanged_file_is_reported(self, detect: Detect) -> None:
        """A file read at turn 3 and again at turn 28, untouched in between, is drift at turn 28."""
        found = detect(K, turn(read("x.py")), turn(read("y.py")), turn(read("auth/session.ts")), *_busy(24),
                       turn(read("auth/session.ts")), turn())
        assert [(f.turn, f.turns, f.severity) for f in found] == [(28, [3, 28], "warning")]
        assert "auth/session.ts" in found[0].message and "turn 3" in found[0].message
        assert "25 turns earlier" in found[0].message and "sub-agent" in found[0].message
        assert found[0].evidence["gap_turns"] == 25
        assert found[0].tool_use_ids == ["toolu_003_0", "toolu_028_0"]

    def test_reread_after_an_edit_is_not_drift(self, detect: Detect) -> None:
        """Re-reading a file after editing it checks the change: not drift."""
        found = detect(K, turn(read("a.py")), turn(edit("a.py", "x", "y")), *_busy(6), turn(read("a.py")),
                       turn())
        assert found == []

    def test_reread_within_the_window_is_not_drift(self, detect: Detect) -> None:
        """A re-read fewer than drift_min_turns turns later is not reported."""
        found = detect(K, turn(read("a.py")), *_busy(2), turn(read("a.py")), turn(), drift_min_turns=4)
        assert found == []

    def test_threshold_is_a_setting(self, detect: Detect) -> None:
        """drift_min_turns=2 reports a re-read two turns later."""
        found = detect(K, turn(read("a.py")), *_busy(1), turn(read("a.py")), turn(), drift_min_turns=2)
        assert [f.turn for f in found] == [3]

    def test_compaction_resets_the_window(self, detect: Detect) -> None:
        """A re-read right after compaction is expected: the history was summarised."""
        found = detect(K, turn(read("a.py")), *_busy(6), turn(read("a.py"), after_compaction=True), turn())
        assert found == []

    def test_different_ranges_are_different_reads(self, detect: Detect) -> None:
        """Reading other lines of a large file is not a re-read."""
        part = [tool("Read", {"file_path": "big.py", "offset": o, "limit": 50}, "x") for o in (0, 500)]
        found = detect(K, turn(part[0]), *_busy(5), turn(part[1]), turn())
        assert found == []

    def test_failed_read_is_not_a_read(self, detect: Detect) -> None:
        """A read that failed does not count as having seen the file."""
        failed = read("a.py", "File does not exist.", error=True)
        found = detect(K, turn(failed), *_busy(5), turn(read("a.py")), turn())
        assert found == []

    def test_bash_changes_count_as_edits(self, detect: Detect) -> None:
        """A file rewritten with sed -i in between may be re-read."""
        found = detect(K, turn(bash("cat setup.cfg", "v=1")), turn(bash("sed -i s/1/2/ setup.cfg")),
                       *_busy(4), turn(bash("cat setup.cfg", "v=2")), turn())
        assert found == []

    def test_reapplied_edit_is_reported(self, detect: Detect) -> None:
        """The same old→new edit applied again later is drift, reported at the repeat."""
        found = detect(K, turn(read("cart.py")), turn(edit("cart.py", "price", "price * qty")), *_busy(3),
                       turn(edit("cart.py", "price", "price * qty", "String to replace not found in file.",
                                 error=True)), turn())
        assert [(f.turn, f.turns) for f in found] == [(6, [2, 6])]
        assert found[0].evidence["reason"] == "repeated_edit" and "already replaced" in found[0].message

    def test_reapplying_a_reverted_edit_is_not_drift(self, detect: Detect) -> None:
        """x→y, then y→x (revert), then x→y again is a deliberate change, not a forgotten one."""
        found = detect(K, turn(edit("a.py", "x", "y")), turn(edit("a.py", "y", "x")), *_busy(2),
                       turn(edit("a.py", "x", "y")), turn())
        assert found == []

    def test_reapplying_after_undo_edit_is_not_drift(self, detect: Detect) -> None:
        """The text editor's undo_edit forgets the file's earlier edits."""
        editor = "str_replace_based_edit_tool"
        change = tool(editor, {"command": "str_replace", "path": "a.py", "old_str": "x", "new_str": "y"},
                      "ok")
        undo = tool(editor, {"command": "undo_edit", "path": "a.py"}, "ok")
        found = detect(K, turn(change), turn(undo), turn(change), turn())
        assert found == []

    def test_different_edits_of_one_file_are_not_drift(self, detect: Detect) -> None:
        """Several distinct edits of one file are normal work."""
        found = detect(K, *[turn(edit("a.py", f"v{i}", f"w{i}")) for i in range(8)], turn())
        assert found == []


class TestWhatCountsAsTheSameWork:
    def test_a_repeated_partial_read_is_not_drift(self, detect: Detect) -> None:
        """The same offset/limit slice read again asks for what the model needs now (edit-verify)."""
        part = tool("Read", {"file_path": "big.py", "offset": 100, "limit": 40}, "x")
        found = detect(K, turn(part), *_busy(6), turn(part), turn())
        assert found == []

    def test_a_whole_read_after_partial_reads_is_not_drift(self, detect: Detect) -> None:
        """Only a whole-file read repeats an earlier whole-file read."""
        part = tool("Read", {"file_path": "a.py", "offset": 1, "limit": 40}, "x")
        found = detect(K, turn(part), *_busy(6), turn(read("a.py")), turn())
        assert found == []

    def test_a_placeholder_path_names_no_file(self, detect: Detect) -> None:
        """A sanitized path ([REDACTED_PATH]/config.yml) may stand for several files."""
        path = "/home/[USER]/[REDACTED_PATH]/config.yml"
        found = detect(K, turn(read(path)), *_busy(6), turn(read(path)), turn())
        assert found == []

    def test_a_failed_edit_makes_a_reread_legitimate(self, detect: Detect) -> None:
        """After a failed string-match edit, re-reading the file is the cure, not drift."""
        failed = edit("a.py", "old", "new", "String to replace not found in file.", error=True)
        found = detect(K, turn(read("a.py")), *_busy(5), turn(failed), turn(read("a.py")), turn())
        assert found == []

    def test_a_sub_agent_run_may_change_any_file(self, detect: Detect) -> None:
        """A Task (sub-agent) between the reads changed the file: the re-read shows new content."""
        task = tool("Task", {"description": "fix it", "prompt": "fix a.py"}, "done")
        found = detect(K, turn(read("a.py", "1\told\n")), *_busy(5), turn(task), turn(read("a.py", "1\tnew\n")),
                       turn())
        assert found == []

    def test_a_file_a_sub_agent_left_alone_is_drift_after_all(self, detect: Detect) -> None:
        """A sub-agent ran in between, but the re-read returns exactly what the first read did: the file was
        not changed, and reading it again was repeated work."""
        task = tool("Task", {"description": "find the callers", "prompt": "search for uses of f"}, "3 callers")
        found = detect(K, turn(read("a.py", "1\tdef f(): ...\n")), *_busy(5), turn(task),
                       turn(read("a.py", "1\tdef f(): ...\n")), turn())
        assert [f.turn for f in found] == [8]

    def test_an_inline_script_may_change_any_file(self, detect: Detect) -> None:
        """`python3 - <<EOF` between the reads is the model editing through the shell."""
        script = bash("python3 - <<'EOF'\nopen('a.py','w').write('x')\nEOF", "")
        found = detect(K, turn(read("a.py", "1\told\n")), *_busy(5), turn(script), turn(read("a.py", "1\tx\n")),
                       turn())
        assert found == []

    def test_a_change_nobody_traced_shows_in_the_content(self, detect: Detect) -> None:
        """No edit or command in the trace, but the re-read returns other content: someone else changed the
        file (the user, an editor), so it is new information, not repeated work."""
        found = detect(K, turn(read("SKILL.md", "1\tone\n")), *_busy(6), turn(read("SKILL.md", "1\tone\n2\ttwo\n")),
                       turn())
        assert found == []

    def test_claude_codes_unchanged_stub_is_a_repeated_read(self, detect: Detect) -> None:
        """Claude Code answers a re-read of an unchanged file with a stub instead of the content: the model
        asked for what it already had."""
        stub = "Wasted call — file unchanged since your last Read. Refer to that earlier tool_result instead."
        found = detect(K, turn(read("INSTALL.md", "1\tinstall\n")), *_busy(5), turn(read("INSTALL.md", stub)), turn())
        assert [f.turn for f in found] == [7]

    def test_a_context_that_halves_is_a_rewritten_history(self, detect: Detect) -> None:
        """A compaction without a marker shows as the context falling below half: earlier reads are gone."""
        busy = [turn(bash("pytest -q", "1 passed"), context=80_000 + i) for i in range(5)]
        found = detect(K, turn(read("a.py"), context=70_000), *busy, turn(read("a.py"), context=20_000), turn())
        assert found == []

    def test_a_context_cut_by_a_fifth_is_a_rewritten_history(self, detect: Detect) -> None:
        """A plan implemented in a cleared context (or a microcompaction) keeps 55 % of the context: the
        file read before the cut is no longer in view, so reading it again is not repeated work."""
        busy = [turn(bash("pytest -q", "1 passed"), context=78_000 + i) for i in range(5)]
        found = detect(K, turn(read("a.py"), context=70_000), *busy, turn(read("a.py"), context=43_000), turn())
        assert found == []

    def test_a_context_that_shrinks_a_little_keeps_its_reads(self, detect: Detect) -> None:
        """A shrink of a few percent removes no read: the re-read is still drift."""
        busy = [turn(bash("pytest -q", "1 passed"), context=78_000 + i) for i in range(5)]
        found = detect(K, turn(read("a.py"), context=70_000), *busy, turn(read("a.py"), context=75_000), turn())
        assert [f.turn for f in found] == [7]

    def test_a_file_re_read_again_and_again_is_one_finding(self, detect: Detect) -> None:
        """Re-reads at turns 7 and 12 of a file read at turn 1, unchanged throughout: one finding, at 7."""
        found = detect(K, turn(read("a.py")), *_busy(5), turn(read("a.py")), *_busy(4, start=10),
                       turn(read("a.py")), turn())
        assert [f.turn for f in found] == [7]

    def test_after_a_change_the_count_starts_again(self, detect: Detect) -> None:
        """Reported, then edited and read, then re-read unchanged much later: a second finding."""
        found = detect(K, turn(read("a.py")), *_busy(5), turn(read("a.py")), turn(edit("a.py", "x", "y")),
                       turn(read("a.py")), *_busy(5, start=10), turn(read("a.py")), turn())
        assert [f.turn for f in found] == [7, 15]

    def test_a_background_commands_output_file_is_polled_not_drift(self, detect: Detect) -> None:
        """Re-reading tasks/b06ff87.output (a running command writes it) checks progress."""
        path = "/tmp/claude/-Users-m/tasks/b06ff87.output"
        found = detect(K, turn(read(path)), *_busy(6), turn(read(path)), turn())
        assert found == []



class TestFormatterRuns:
    def test_a_formatter_given_another_file_does_not_change_this_one(self, detect: Detect) -> None:
        """`ruff format app.py` rewrites app.py only: re-reading an untouched template is still drift."""
        found = detect(K, turn(read("/repo/templates/nav.html")),
                       turn(bash("ruff format app.py", "1 file reformatted")),
                       *_busy(5), turn(read("/repo/templates/nav.html")), turn())
        assert [f.turn for f in found] == [8]

    def test_a_formatter_given_the_file_by_a_relative_path_changed_it(self, detect: Detect) -> None:
        """The relative path a command names and the absolute path the model reads are one file."""
        found = detect(K, turn(read("/repo/src/app.py")), *_busy(3),
                       turn(bash("ruff format src/app.py", "1 file reformatted")), turn(read("/repo/src/app.py")),
                       turn())
        assert found == []

    def test_a_formatter_over_a_directory_may_change_any_file(self, detect: Detect) -> None:
        """`ruff format .` names no file: every earlier read may be stale, none is drift."""
        found = detect(K, turn(read("/repo/templates/nav.html", "1\t<nav>\n")),
                       turn(bash("ruff format .", "3 files reformatted")),
                       *_busy(5), turn(read("/repo/templates/nav.html", "1\t<nav >\n")), turn())
        assert found == []


def test_an_edit_cancelled_before_it_ran_changes_nothing(detect: Detect) -> None:
    """Claude Code cancels the other calls of a turn when one fails ("Sibling tool call errored"): the
    cancelled edit of index.mdx never ran, so re-reading index.mdx unchanged later is still repeated work,
    and the edit of astro.config.mjs that did fail still makes its re-read normal."""
    cancelled = "<tool_use_error>Sibling tool call errored</tool_use_error>"
    failed = "<tool_use_error>String to replace not found in file.</tool_use_error>"
    found = detect(K, turn(read("astro.config.mjs", "1\tconfig\n"), read("index.mdx", "1\tindex\n")),
                   turn(edit("astro.config.mjs", "a", "b", failed, error=True),
                        edit("index.mdx", "c", "d", cancelled, error=True)),
                   *_busy(4), turn(read("astro.config.mjs", "1\tconfig\n"), read("index.mdx", "1\tindex\n")), turn())
    assert [(f.turn, f.evidence["path"]) for f in found] == [(7, "index.mdx")]


def test_a_powershell_whole_file_reread_is_drift_and_a_head_is_not(detect: Detect) -> None:
    """On Windows the model reads through Claude Code's PowerShell tool: Get-Content of a whole file, read
    whole again six turns later and unchanged, is the same drift as a Read; its first 40 lines are not."""
    body = "package cache\n\nfunc Init() {}\n"

    def gc(command: str) -> dict:
        return tool("PowerShell", {"command": command}, body)

    found = detect(K, turn(gc("Get-Content src\\cache\\cache.go")), *_busy(5),
                   turn(gc("Get-Content src/cache/cache.go")), turn())
    assert [(f.turn, f.turns) for f in found] == [(7, [1, 7])]
    found = detect(K, turn(gc("Get-Content src/cache/cache.go")), *_busy(5),
                   turn(gc("Get-Content src/cache/cache.go -TotalCount 40")), turn())
    assert found == []
