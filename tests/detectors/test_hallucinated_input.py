"""hallucinated_input: not-found targets the model never saw, invented commands and flags."""

from __future__ import annotations

from otel_agent_trace.detectors.scenario import bash, edit, grep, ls, read, tool, turn

from .conftest import Detect

K = "hallucinated_input"
MISSING = "File does not exist."


class TestHallucinatedInput:
    def test_unseen_path_before_orientation_is_a_warning(self, detect: Detect) -> None:
        """A not-found read at turn 1, before any listing, is a warning at that turn."""
        found = detect(K, turn(read("src/helpers/formatDate.ts", MISSING, error=True)), turn())
        assert [(f.turn, f.severity) for f in found] == [(1, "warning")]
        assert found[0].evidence["before_orientation"] is True and "orientation" in found[0].message
        assert found[0].evidence["target"] == "src/helpers/formatDate.ts"

    def test_path_listed_earlier_that_fails_is_not_hallucinated(self, detect: Detect) -> None:
        """A path named in an earlier listing was grounded; its failure is another problem."""
        found = detect(K, turn(ls("/repo", ["src/", "src/legacy.py"])),
                       turn(read("src/legacy.py", MISSING, error=True)), turn())
        assert found == []

    def test_unseen_path_after_orientation_is_info(self, detect: Detect) -> None:
        """After a listing, an invented path is still reported, as info."""
        found = detect(K, turn(ls("src", ["app.py", "models.py"])),
                       turn(read("src/config/settings.py", MISSING, error=True)), turn())
        assert [(f.turn, f.severity) for f in found] == [(2, "info")]
        assert found[0].evidence["oriented_at_turn"] == 1

    def test_name_seen_in_another_directory_is_still_a_guess(self, detect: Detect) -> None:
        """src/components/index.ts is a guess when only src/index.ts was listed: its directory never was."""
        found = detect(K, turn(ls("/web", ["src/", "src/index.ts"])),
                       turn(read("src/components/index.ts", MISSING, error=True)), turn())
        assert [f.turn for f in found] == [2]

    def test_names_listed_under_a_heading_count_as_seen(self, detect: Detect) -> None:
        """A tree listing shows "auth/" and "session.ts" on separate lines: auth/session.ts was seen."""
        found = detect(K, turn(ls("/app", ["auth/", "  session.ts", "api/"])),
                       turn(read("auth/session.ts", MISSING, error=True)), turn())
        assert found == []

    def test_names_from_search_results_count_as_seen(self, detect: Detect) -> None:
        """A grep hit names its file: reading it later and failing is not a hallucination."""
        found = detect(K, turn(grep("def migrate", "db/migrate.py:4:def migrate(conn):")),
                       turn(read("db/migrate.py", MISSING, error=True)), turn())
        assert found == []

    def test_names_in_ordinary_results_count_as_seen(self, detect: Detect) -> None:
        """An import line in a read file grounds the imported path."""
        found = detect(K, turn(read("app.ts", "import { x } from './lib/session.ts'")),
                       turn(read("lib/session.ts", MISSING, error=True)), turn())
        assert found == []

    def test_consecutive_guesses_are_reported_once(self, detect: Detect) -> None:
        """A burst of guesses is one finding (tool_loop counts the repeats)."""
        guesses = [turn(read(p, MISSING, error=True)) for p in ("a/x.ts", "b/x.ts", "c/x.ts")]
        found = detect(K, *guesses, turn())
        assert [f.turn for f in found] == [1]

    def test_a_success_ends_the_burst(self, detect: Detect) -> None:
        """After a successful call, a new unseen not-found path is reported again."""
        found = detect(K, turn(read("a/x.ts", MISSING, error=True)), turn(read("README.md", "hello")),
                       turn(read("b/y.ts", MISSING, error=True)), turn())
        assert [f.turn for f in found] == [1, 3]

    def test_same_path_is_reported_once(self, detect: Detect) -> None:
        """Failing twice on one invented path gives one finding."""
        miss = read("a/x.ts", MISSING, error=True)
        found = detect(K, turn(miss), turn(read("README.md", "hello")), turn(miss), turn())
        assert [f.turn for f in found] == [1]

    def test_invented_command(self, detect: Detect) -> None:
        """`command not found` names the invented program."""
        found = detect(K, turn(bash("pnpm test", "/bin/bash: line 1: pnpm: command not found", error=True)),
                       turn())
        assert found[0].evidence["target"] == "pnpm" and found[0].evidence["target_type"] == "command"

    def test_invented_flag(self, detect: Detect) -> None:
        """An unrecognised flag is reported with the flag itself."""
        result = "pytest: error: unrecognized arguments: --coverage"
        found = detect(K, turn(bash("pytest --coverage", result)), turn())
        assert found[0].evidence["target"] == "pytest --coverage"
        assert "unrecognized arguments: --coverage" in found[0].message

    def test_script_path_in_a_bash_command(self, detect: Detect) -> None:
        """`python scripts/x.py` failing with No such file is a hallucinated path."""
        result = "python: can't open file '/repo/scripts/x.py': [Errno 2] No such file or directory"
        found = detect(K, turn(bash("python scripts/x.py", result, error=True)), turn())
        assert found[0].evidence["target"] == "scripts/x.py"

    def test_failing_tests_are_not_hallucinations(self, detect: Detect) -> None:
        """A test run failing on a missing module names no path the model invented in its input."""
        result = "Error: Cannot find module 'jest-config'"
        found = detect(K, turn(bash("npm test", result, error=True)), turn())
        assert found == []

    def test_edit_of_a_missing_file(self, detect: Detect) -> None:
        """str_replace on a file that does not exist is a hallucinated path."""
        call = tool("str_replace_based_edit_tool",
                    {"command": "str_replace", "path": "/repo/nope.py", "old_str": "a", "new_str": "b"},
                    "Error: The path /repo/nope.py does not exist.", error=True)
        found = detect(K, turn(call), turn())
        assert [f.turn for f in found] == [1]

    def test_written_file_counts_as_seen(self, detect: Detect) -> None:
        """A file the model wrote was real to it, even if a later read fails (e.g. deleted by a script)."""
        found = detect(K, turn(tool("Write", {"file_path": "out/report.md", "content": "x"}, "ok")),
                       turn(read("out/report.md", MISSING, error=True)), turn())
        assert found == []

    def test_successful_edits_do_not_count(self, detect: Detect) -> None:
        """Edits and reads that work never produce findings."""
        found = detect(K, turn(read("a.py")), turn(edit("a.py", "x", "y")), turn())
        assert found == []
