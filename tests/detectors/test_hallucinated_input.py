"""hallucinated_input: not-found targets the model never saw, invented commands and flags."""

from __future__ import annotations

from typing import Any

import pytest

from otel_agent_trace.testing.scenario import bash, edit, grep, ls, read, tool, turn

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

    def test_unseen_path_after_orientation_is_a_warning_too(self, detect: Detect) -> None:
        """After a listing, an invented path is still a failed call: a warning."""
        found = detect(K, turn(ls("src", ["app.py", "models.py"])),
                       turn(read("src/config/settings.py", MISSING, error=True)), turn())
        assert [(f.turn, f.severity) for f in found] == [(2, "warning")]
        assert found[0].evidence["oriented_at_turn"] == 1 and found[0].evidence["before_orientation"] is False

    def test_name_seen_in_another_directory_is_still_a_guess(self, detect: Detect) -> None:
        """src/components/index.ts is a guess when only src/index.ts was listed: its directory never was."""
        found = detect(K, turn(ls("/web", ["src/", "src/index.ts"])),
                       turn(read("src/components/index.ts", MISSING, error=True)), turn())
        assert [f.turn for f in found] == [2]

    @pytest.mark.parametrize(("earlier", "path"), [
        # A tree listing shows "auth/" and "session.ts" on separate lines: auth/session.ts was seen.
        (ls("/app", ["auth/", "  session.ts", "api/"]), "auth/session.ts"),
        # A grep hit names its file.
        (grep("def migrate", "db/migrate.py:4:def migrate(conn):"), "db/migrate.py"),
        # An import line in a read file grounds the imported path.
        (read("app.ts", "import { x } from './lib/session.ts'"), "lib/session.ts"),
        # On Windows a listing prints src\color\palette.go: the same file as D:\repo\src\color\palette.go.
        (grep("Palette", "Found 2 files\nsrc\\color\\colors.go\nsrc\\color\\palette.go"),
         "D:\\repo\\src\\color\\palette.go"),
        # A result quoting a Windows path names that file, drive and quotes aside.
        (bash("go vet ./...", "vet: checked 'D:\\repo\\src\\color\\palette.go'"), "D:\\repo\\src\\color\\palette.go"),
        # A long listing puts the name last, after permissions, sizes and a time with a colon in it.
        (bash("ls -la docs", "total 8\ndrwxr-xr-x 1 me staff 0 Jul 14 07:13 guides\n"
                             "-rw-r--r-- 1 me staff 10 Jul 14 07:13 index.mdx"), "docs/index.mdx"),
        # `git status --short` puts two status letters before each path.
        (bash("git status --short", " M website/docs/prompt.mdx\n?? website/new.txt"), "docs/prompt.mdx"),
    ], ids=["tree-listing", "grep-hit", "import-line", "windows-listing", "quoted-windows-path", "ls-long",
            "git-status"])
    def test_a_path_an_earlier_result_named_is_not_hallucinated(self, detect: Detect, earlier: dict[str, Any],
                                                                 path: str) -> None:
        """Reading a path that some earlier result named, and failing, is another problem than a guess."""
        found = detect(K, turn(earlier), turn(read(path, MISSING, error=True)), turn())
        assert found == []

    def test_a_windows_path_never_listed_is_still_a_guess(self, detect: Detect) -> None:
        """Backslashes change nothing for a file no result named."""
        found = detect(K, turn(grep("Palette", "Found 1 file\nsrc\\color\\colors.go")),
                       turn(read("D:\\repo\\src\\template\\renderer.go", MISSING, error=True)), turn())
        assert [f.turn for f in found] == [2]
        assert found[0].evidence["target"] == "D:/repo/src/template/renderer.go"

    def test_an_option_cut_off_by_a_line_break_is_not_an_invented_command(self, detect: Detect) -> None:
        """`head \\n-100` runs "-100" as a command: a typing slip, not a program the model relied on."""
        found = detect(K, turn(bash("ls", "a.txt")),
                       turn(bash("tool log | head \n-100", "Exit code 127\nzsh: command not found: -100",
                                 error=True)), turn())
        assert found == []

    def test_a_string_whose_quotes_did_not_pair_is_not_an_invented_command(self, detect: Detect) -> None:
        """`world\\"` run as a command is the piece of a broken quoted string, not a program the model made up."""
        found = detect(K, turn(bash("ls", "a.txt")),
                       turn(bash("sh -c 'printf \"hello; world\\\"\"'", "Exit code 2\n/bin/bash: line 1: world\\\":"
                                 " command not found", error=True)), turn())
        assert found == []

    def test_a_failing_cd_is_not_blamed_on_the_listing_after_it(self, detect: Detect) -> None:
        """`cd build/docs && ls category` failing on the cd: the target is what the error names, and a
        directory the model had already entered is not a guess."""
        found = detect(K, turn(bash("ls build/docs", "index.html")),
                       turn(bash("cd build/docs && ls category",
                                 "bash: line 1: cd: build/docs: No such file or directory")), turn())
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
        """An unrecognised flag is reported with the flag itself; the error line is in the evidence, not the
        message."""
        result = "pytest: error: unrecognized arguments: --coverage"
        found = detect(K, turn(bash("pytest --coverage", result)), turn())
        assert found[0].evidence["target"] == "pytest --coverage"
        assert "unrecognized arguments: --coverage" in found[0].evidence["error"]
        assert "unrecognized arguments" not in found[0].message and "`pytest --coverage`" in found[0].message

    def test_an_error_message_found_by_a_search_is_not_the_commands_error(self, detect: Detect) -> None:
        """Grepping for where an error is raised returns the source line that says it: a search hit."""
        result = 'internal/cli/root.go:183:\t\treturn fmt.Errorf("%s received unexpected arguments: %s", mode)'
        found = detect(K, turn(bash('grep -rn "received unexpected arguments" --include="*.go" .', result)),
                       turn())
        assert found == []

    def test_asking_a_program_for_help_is_not_an_invented_flag(self, detect: Detect) -> None:
        """`tool edges --help` rejected by a program without a help flag: looking up the options is the
        grounding step itself, not reliance on one that does not exist."""
        found = detect(K, turn(bash("./bin/tool edges --help", "edges received unexpected arguments: --help")),
                       turn())
        assert found == []

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


class TestShellCallsWhateverTheirRole:
    @pytest.mark.parametrize(("command", "result", "target"), [
        ("git log --since=yesterday --grep-author=alice --oneline",
         "Exit code 128\nfatal: unrecognized argument: --grep-author=alice", "git log --grep-author"),
        ("ls -y src", "ls: invalid option -- 'y'\nTry 'ls --help' for more information.", "ls -y"),
        ("grep --colour-always -rn TODO src", "grep: unrecognized option '--colour-always'", "grep --colour-always"),
    ])
    def test_unknown_flag_of_a_search_command(self, detect: Detect, command: str, result: str,
                                              target: str) -> None:
        """An unknown flag is reported even when the command itself counts as a search."""
        found = detect(K, turn(bash(command, result, error=True)), turn())
        assert [(f.evidence["target"], f.evidence["target_type"]) for f in found] == [(target, "flag")]

    def test_command_not_found_for_a_read_command(self, detect: Detect) -> None:
        """`bat FILE` is a read, but `bat: command not found` is still an invented command."""
        found = detect(K, turn(bash("bat src/app.py", "bash: bat: command not found", error=True)), turn())
        assert [(f.evidence["target"], f.evidence["target_type"]) for f in found] == [("bat", "command")]


class TestNamesFromTheError:
    @pytest.mark.parametrize("result", [
        "Exit code 127\nbash: poetry: command not found",
        "sh: 1: poetry: not found",
        "zsh: command not found: poetry",
        "command not found: poetry",
    ])
    def test_command_name_comes_from_the_error_text(self, detect: Detect, result: str) -> None:
        """`poetry run pytest` failing with `poetry: command not found` names poetry, not pytest."""
        found = detect(K, turn(bash("poetry run pytest tests", result, error=True)), turn())
        assert found[0].evidence["target"] == "poetry" and "`poetry`" in found[0].message

    def test_unknown_flag_names_the_script(self, detect: Detect) -> None:
        """A script's unknown flag is reported with the script: `python scripts/export.py --format`."""
        result = "usage: export.py [-h] [--csv]\nexport.py: error: unrecognized arguments: --format csv"
        found = detect(K, turn(bash("python scripts/export.py --format csv", result, error=True)), turn())
        assert found[0].evidence["target"] == "python scripts/export.py --format"


    def test_an_option_rejected_further_down_a_pipe_names_that_program(self, detect: Detect) -> None:
        """`sed -n 1,5p f | cat -W` → "cat: illegal option -- W": the wrong option is cat's -W."""
        result = "Exit code 1\ncat: illegal option -- W\nusage: cat [-belnstuv] [file ...]"
        found = detect(K, turn(bash("sed -n '1,5p' src/app.go | cat -W", result, error=True)), turn())
        assert found[0].evidence["target"] == "cat -W"


class TestGuessClusters:
    def test_a_cluster_of_different_files_ends_in_one_finding_listing_every_guess(self, detect: Detect) -> None:
        """Guesses of three different files: the cluster's last finding lists every guess turn and path."""
        paths = ("src/config.py", "config/settings.py", "app/defaults.toml")
        found = detect(K, *[turn(read(p, MISSING, error=True)) for p in paths], turn(ls(".", ["myapp/"])), turn())
        cluster = found[-1]
        assert cluster.turns == [1, 2, 3] and cluster.evidence["targets"] == list(paths)
        assert all(p in cluster.message for p in paths)

    def test_findings_are_not_changed_after_they_were_emitted(self, detect: Detect) -> None:
        """A growing cluster adds a finding at the new guess; the earlier finding keeps its single turn."""
        found = detect(K, turn(read("src/config.py", MISSING, error=True)),
                       turn(read("config/settings.py", MISSING, error=True)), turn())
        assert [(f.turn, f.turns) for f in found] == [(1, [1]), (2, [1, 2])]

    def test_parallel_guesses_in_one_turn_are_one_finding(self, detect: Detect) -> None:
        """Different files guessed at once in one turn are one finding, at that turn."""
        found = detect(K, turn(read("a/x.ts", MISSING, error=True), read("b/y.ts", MISSING, error=True)), turn())
        assert [f.turn for f in found] == [1]


class TestLazyGrounding:
    def test_successful_results_are_not_tokenised_when_they_arrive(self, detect: Detect,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        """Names are looked up in earlier results only when a not-found error needs them."""
        import otel_agent_trace.detectors.errors as errors
        import otel_agent_trace.detectors.hallucinated_input as module

        tokenised: list[str] = []

        def spy(text: str, *args: int) -> list[str]:
            tokenised.append(text)
            return []

        monkeypatch.setattr(errors, "path_tokens", spy)
        monkeypatch.setattr(module, "path_tokens", spy, raising=False)
        listing = "\n".join(f"src/pkg{i}/module_{i}.py" for i in range(200))
        detect(K, turn(grep("handler", listing)), turn(read("src/app.py", "import lib/session.ts")), turn())
        assert tokenised == []

    def test_a_name_in_a_long_earlier_listing_still_grounds_the_path(self, detect: Detect) -> None:
        """A path listed a few hundred entries into a listing counts as seen when it later fails."""
        listing = "\n".join(f"src/pkg{i}/module_{i}.py" for i in range(400))
        found = detect(K, turn(grep("handler", listing)), turn(read("README.md", "hello")),
                       turn(read("src/pkg333/module_333.py", MISSING, error=True)), turn())
        assert found == []

    def test_lazy_lookup_sees_exactly_what_indexing_every_result_would(self) -> None:
        """Below the "seen everywhere" cap, a name counts as seen exactly when indexing the results would have."""
        import random

        from otel_agent_trace.detectors.errors import path_tokens
        from otel_agent_trace.detectors.hallucinated_input import HallucinatedInput, _components
        from otel_agent_trace.detectors.roles import classify_tool

        def indexed(text: str, listing: bool) -> set[str]:
            names: set[str] = set()
            if listing:  # its entries, and the names its lines mention
                lines = text[:16_384].splitlines()[:512]
                for line in lines:
                    entry = line.strip().split(":", 1)[0].rstrip("/")
                    if entry and " " not in entry:
                        names.update(_components(entry))
                for token in path_tokens("\n".join(lines), 16_384, 100_000):
                    names.update(_components(token))
            else:
                for token in path_tokens(text, 4_096, 512):
                    names.update(_components(token))
            return names

        rng = random.Random(7)
        parts = ["src", "lib", "auth", "a.py", "session.ts", "x", "index.ts", "cfg.yaml", ".", "..", "~"]
        probes = ["src", "lib", "auth", "a.py", "session.ts", "index.ts", "cfg.yaml", "session", "yaml"]
        for _ in range(300):
            detector, seen = HallucinatedInput(), set()
            for _ in range(rng.randint(1, 3)):
                listing = rng.random() < 0.5
                entries = []
                for _ in range(rng.randint(1, 20)):
                    path = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
                    mark = rng.choice(["", "'", "(", ",", "/", "./", "`", "\t"])
                    entries.append(rng.choice([f"{mark}{path}{mark}", f"{path}:12: x", f"{path} foo"]))
                text = ("\n" if listing or rng.random() < 0.5 else " ").join(entries)
                role = classify_tool("Grep", {"pattern": "x"}) if listing else classify_tool("Bash", {"command": "x"})
                detector._learn(text, role, 1)
                seen |= indexed(text, listing)
            for name in probes:  # each occurs fewer times than the cap in these texts
                assert detector._saw(name) == (name in seen), (name, text)


class TestNotTheModelsInput:
    def test_an_alias_that_rejects_a_valid_flag_is_not_hallucinated(self, detect: Detect) -> None:
        """`tree -L 3` answered by lsd (the user's alias) rejects a flag tree has: not the model's error."""
        result = "lsd: unknown option '-L'\nUsage: lsd [OPTIONS] [FILE]..."
        found = detect(K, turn(bash("tree src -L 3", result, error=True)), turn())
        assert found == []

    def test_the_invoked_program_rejecting_a_flag_is_still_reported(self, detect: Detect) -> None:
        """When the program the model named is the one complaining, the flag is the model's."""
        result = "grep: unrecognized option '--recursive-x'"
        found = detect(K, turn(bash("grep --recursive-x foo src", result, error=True)), turn())
        assert [f.turn for f in found] == [1]

    def test_a_windows_invalid_parameter_is_a_bad_flag(self, detect: Detect) -> None:
        """`powercfg /change …` failing with "Invalid Parameters" is a flag the program does not take."""
        result = 'Exit code 1\nInvalid Parameters -- try "/?" for help'
        found = detect(K, turn(bash("powercfg /change monitor-timeout-ac 10", result, error=True)), turn())
        assert [f.evidence["target_type"] for f in found] == ["flag"]

    def test_an_unknown_option_deep_in_test_output_is_not_the_models_flag(self, detect: Detect) -> None:
        """A failing test run whose log mentions "unknown option" far down used no invented flag."""
        log = "\n".join(["Exit code 1", *[f"test {i} ok" for i in range(10)], "warning: unknown option :colour",
                         "1 test failed"])
        found = detect(K, turn(bash("mix test", log, error=True)), turn())
        assert found == []

    def test_a_named_flag_the_command_does_not_hold_is_not_the_models(self, detect: Detect) -> None:
        """"unknown flag: --bar" from `make deploy` (the Makefile passed it) is not the model's input."""
        found = detect(K, turn(bash("make deploy", "Error: unknown flag: --bar", error=True)), turn())
        assert found == []

    def test_an_existence_check_that_finds_nothing_is_info(self, detect: Detect) -> None:
        """`ls .pre-commit-config.yaml` failing is a check, not a reliance on the file: info."""
        miss = "ls: cannot access '.pre-commit-config.yaml': No such file or directory"
        check = bash("ls -la .pre-commit-config.yaml", miss, error=True)
        found = detect(K, turn(read("README.md", "# app")), turn(check), turn())
        assert [(f.turn, f.severity) for f in found] == [(2, "info")]

    def test_the_sessions_first_look_around_finding_nothing_is_not_reported(self, detect: Detect) -> None:
        """A Grep in a directory that is not there, as the session's very first call: the model looked
        around before relying on anything, which is what orienting means. A read of a missing file there is
        still a guess."""
        miss = "<tool_use_error>Path does not exist: cmd/app/commands</tool_use_error>"
        probe = tool("Grep", {"pattern": "func New", "path": "cmd/app/commands"}, miss, error=True)
        assert detect(K, turn(probe), turn()) == []
        guess = read("cmd/app/commands/root.go", MISSING, error=True)
        assert [f.turn for f in detect(K, turn(guess), turn())] == [1]

    def test_a_config_warning_in_remote_output_is_not_a_flag(self, detect: Detect) -> None:
        """uci's "unknown option 'log'" about a config section is not a flag of the command the model ran."""
        out = "enabled\n[!] Section @defaults[0] specifies unknown option 'log'"
        found = detect(K, turn(bash("ssh root@router \"uci commit firewall && echo enabled\"", out)), turn())
        assert found == []

    def test_a_missing_program_the_command_does_not_name_is_not_the_models(self, detect: Detect) -> None:
        """`eval "$(tool info)"` running a word the tool printed ("hello: command not found"): the model
        wrote no such command; the same call naming the program itself is still reported."""
        result = "(eval):1: command not found: hello\nExit code 1"
        assert detect(K, turn(bash('eval "$(erk exec capture-session-info)"', result, error=True)), turn()) == []
        found = detect(K, turn(bash("hello --world", result, error=True)), turn())
        assert [f.evidence["target"] for f in found] == ["hello"]

    def test_a_directory_on_the_way_to_a_seen_path_is_not_invented(self, detect: Detect) -> None:
        """`git rm -r .erk/ctx/` failing ("did not match any files") after the model read
        /repo/.erk/ctx/plan/plan.md: every directory of a path that exists exists too."""
        miss = "Exit code 128\nfatal: pathspec '.erk/ctx/' did not match any files"
        found = detect(K, turn(read("/repo/.erk/ctx/plan/plan.md", "# Plan")),
                       turn(bash("git rm -r .erk/ctx/", miss, error=True)), turn())
        assert found == []
        found = detect(K, turn(read("/repo/.erk/ctx/plan/plan.md", "# Plan")),
                       turn(bash("git rm -r .erk/other/", miss.replace("ctx", "other"), error=True)), turn())
        assert [f.turn for f in found] == [2]

    def test_a_path_from_the_task_read_at_the_start_stays_grounded(self, detect: Detect) -> None:
        """The plan read at turn 1 lists a file far into its text; eighty turns of other output later (more
        than the window of recent results keeps), a search of that file (which the repository no longer
        has) follows the plan: it is not invented."""
        plan = "# Plan\n" + "filler line of the plan\n" * 400 + "| `tests/integration/test_store.py` | 747 |\n"
        busy = [turn(read(f"src/m{i}.py", f"src/m{i}.py\n" + "x = 1 # src/other.py\n" * 400)) for i in range(80)]
        miss = "<tool_use_error>Path does not exist: tests/integration/test_store.py</tool_use_error>"
        probe = tool("Grep", {"pattern": "x", "path": "tests/integration/test_store.py"}, miss, error=True)
        assert detect(K, turn(read("plan.md", plan)), *busy, turn(probe), turn()) == []
        assert [f.turn for f in detect(K, turn(read("plan.md", "# Plan")), *busy, turn(probe), turn())] == [82]



IMPORT_ERROR = ("Traceback (most recent call last):\n  File \"<string>\", line 2, in <module>\n"
                "ImportError: cannot import name 'parse_log_file' from 'app.parser' (/repo/app/parser.py)")


class TestNamesTheCodeDoesNotHave:
    def test_an_unseen_imported_function_is_a_hallucinated_input(self, detect: Detect) -> None:
        """The model imports a function no result ever showed, and the module has no such name."""
        found = detect(K, turn(read("/repo/app/models.py", "class Entry:\n    pass")),
                       turn(bash('python -c "from app.parser import parse_log_file"', IMPORT_ERROR, error=True)),
                       turn())
        assert [(f.turn, f.severity) for f in found] == [(2, "warning")]
        assert found[0].evidence["target"] == "parse_log_file" and found[0].evidence["target_type"] == "name"

    def test_a_name_an_earlier_result_showed_is_not_invented(self, detect: Detect) -> None:
        """The function was in a read file: importing it from the wrong module is another mistake."""
        found = detect(K, turn(read("/repo/app/loader.py", "def parse_log_file(path):\n    ...")),
                       turn(bash('python -c "from app.parser import parse_log_file"', IMPORT_ERROR, error=True)),
                       turn())
        assert found == []

    def test_an_import_failing_inside_the_project_is_not_the_models_input(self, detect: Detect) -> None:
        """`pytest` failing on an ImportError in the project's code: the model never wrote that name."""
        found = detect(K, turn(bash("pytest -q", IMPORT_ERROR, error=True)), turn())
        assert found == []

    def test_a_missing_module_attribute_counts_too(self, detect: Detect) -> None:
        """`AttributeError: module 'x' has no attribute 'y'` names a function that does not exist."""
        result = "Traceback (most recent call last):\nAttributeError: module 'app.cli' has no attribute 'run_all'"
        found = detect(K, turn(bash('python -c "import app.cli; app.cli.run_all()"', result, error=True)), turn())
        assert [f.evidence["target"] for f in found] == ["run_all"]


@pytest.mark.parametrize("command", ["ss -tlnp", "tree -L 2", "netstat -tlnp", "zsh -n script.zsh", "fish -c echo"])
def test_a_standard_utility_missing_from_the_machine_is_not_invented(detect: Detect, command: str) -> None:
    """`ss: command not found` in a minimal image, `zsh` on a machine with only bash: the program exists,
    this machine lacks it."""
    program = command.split()[0]
    found = detect(K, turn(bash(command, f"/bin/sh: 1: {program}: not found", error=True)), turn())
    assert found == []


@pytest.mark.parametrize(("command", "result"), [
    ("sed -n '1,5p' src/app.go | cat -A", "cat: illegal option -- A\nusage: cat [-belnstuv] [file ...]"),
    ("/bin/cat -A src/app.go", "cat: illegal option -- A"),
    ('date -d "2 days ago" +%F', "date: illegal option -- d\nusage: date [-jnRu] [-I[date|hours|minutes|seconds]]"),
    ("stat -c %s build/app", "stat: illegal option -- c"),
    ("du --max-depth=1 -h .", "du: unrecognized option `--max-depth=1'"),
    ("grep -P '\\d+' src/app.go", "grep: invalid option -- P"),
])
def test_a_gnu_option_on_a_bsd_tool_is_not_invented(detect: Detect, command: str, result: str) -> None:
    """`cat -A` on macOS: GNU's cat has -A, the machine's BSD cat does not. The model relied on another
    system's version of a real tool, like a standard tool the machine lacks."""
    found = detect(K, turn(bash(command, f"Exit code 1\n{result}", error=True)), turn())
    assert found == []


def test_an_option_no_version_of_the_tool_has_is_still_invented(detect: Detect) -> None:
    """GNU's sed has -z but no -y: on any system `sed -y` is an option the model made up."""
    found = detect(K, turn(bash("sed -y 's/a/b/' f.txt", "sed: illegal option -- y", error=True)), turn())
    assert [f.evidence["target"] for f in found] == ["sed -y"]

@pytest.mark.parametrize("create", ["touch /tmp/marker", "mkdir -p /tmp/marker", "echo x > /tmp/marker",
                                    "echo x | tee /tmp/marker", "curl -s -o /tmp/marker https://example.com"])
def test_a_scratch_path_the_command_creates_is_the_models_own(detect: Detect, create: str) -> None:
    """An experiment that creates a marker and checks for it: finding it missing is the experiment's
    outcome (the substitution did not run), not a path the model relied on without seeing it."""
    command = f"bash -c 'x=\"$({create})\"; echo \"$x\"'\nls -la /tmp/marker 2>&1 || echo 'not executed'"
    result = "ls: cannot access '/tmp/marker': No such file or directory\nnot executed"
    found = detect(K, turn(bash(command, result, error=True)), turn())
    assert found == []


def test_a_path_the_command_only_reads_is_still_a_guess(detect: Detect) -> None:
    """Only creating a path makes it the model's own: reading a never-seen one is still reported."""
    result = "cat: /tmp/report.txt: No such file or directory"
    found = detect(K, turn(bash("cat /tmp/report.txt", result, error=True)), turn())
    assert [f.evidence["target"] for f in found] == ["/tmp/report.txt"]


@pytest.mark.parametrize(("error", "name"), [
    ("gh: Field 'body' doesn't accept argument 'truncate'", "truncate"),
    ("gh: Cannot query field 'reviewThreadz' on type 'PullRequest'.", "reviewThreadz"),
    ("gh: Field 'securityAdvisory' doesn't exist on type 'Repository'", "securityAdvisory"),
])
def test_an_argument_or_field_the_graphql_schema_lacks_is_invented(detect: Detect, error: str, name: str) -> None:
    """A GraphQL query asking for an argument or field the API does not have relies on an invented name,
    and the finding names it."""
    command = ("gh api graphql -f query='{ repository(owner:\"o\", name:\"r\") { pullRequest(number: 1) {"
               " reviewThreadz securityAdvisory body(truncate: 9) } } }'")
    found = detect(K, turn(bash(command, error, error=True)), turn())
    assert [(f.turn, f.evidence["target"], f.evidence["target_type"]) for f in found] == [(1, name, "field")]
    assert "GraphQL schema does not have" in found[0].message


def test_a_program_checked_for_with_a_fallback_is_not_relied_on(detect: Detect) -> None:
    """`staticcheck ./... || echo "not installed"`: the model planned for the program's absence, and the
    command succeeded through its fallback."""
    result = "(eval):1: command not found: staticcheck\nstaticcheck not installed, skipping"
    found = detect(K, turn(bash('staticcheck ./... 2>&1 || echo "staticcheck not installed, skipping"', result)),
                   turn())
    assert found == []


def test_a_dotfile_named_in_a_pull_requests_json_was_not_invented(detect: Detect) -> None:
    """`gh pr view --json` prints the review as one JSON line; a dotfile it names (`.env.example`) was shown
    to the model, so reading it where it is missing is a wrong checkout, not an invented file."""
    review = ('{"reviews":[{"author":{"login":"bot"},"body":"- Add `.env.example` and update the settings",'
              '"path":".env.example"}],"number":191}')
    found = detect(K, turn(read("/repo/main.go")), turn(bash("gh pr view --json reviews,number", review)),
                   turn(read("/repo/.env.example", "File does not exist.", error=True)), turn())
    assert found == []


def test_a_failure_the_command_prints_its_exit_status_for_was_expected(detect: Detect) -> None:
    """`./entire-test sessio 2>&1; echo "Exit code: $?"`: the model tries how its own program answers a
    wrong subcommand and asked to see the exit status; it expected the failure and did not rely on the
    name. The same call without the status check is still a guess."""
    answer = 'Unknown command "sessio" for "entire".\nSee "entire --help" for a list of available commands.'
    probe = bash('./entire-test sessio 2>&1; echo "Exit code: $?"', f"{answer}\nExit code: 1")
    assert detect(K, turn(probe), turn()) == []
    relied = bash("./entire-test sessio", f"Exit code 1\n{answer}", error=True)
    assert [f.evidence["target"] for f in detect(K, turn(relied), turn())] == ["sessio"]


def test_a_quoted_pattern_a_program_misreads_as_an_option_is_a_quoting_slip(detect: Detect) -> None:
    """`grep -c "--- PASS"`: grep takes the pattern for an option; the model invented no option."""
    result = "Exit code 2\ngrep: unrecognized option `--- PASS'\nusage: grep [-abcdDEFGHhIiJLlMmnOopqRSsUVvwXxZz]"
    found = detect(K, turn(bash('go test ./... -v 2>&1 | grep -c "--- PASS"', result, error=True)), turn())
    assert found == []


def test_an_output_path_the_command_writes_is_the_models_own(detect: Detect) -> None:
    """`--output /tmp/x.html` names a file the command creates; a warning about something missing while
    writing it is not a path the model guessed."""
    result = "Warning: failed to generate manifest: file does not exist\n/tmp/x.html"
    found = detect(K, turn(bash("rm -rf /tmp/x.html && ./tool export --output /tmp/x.html", result)), turn())
    assert found == []


def test_a_path_a_failed_test_run_printed_was_seen(detect: Detect) -> None:
    """The test suite fails and prints where its full log went; reading that log is not a guess, even when
    the file is gone by then."""
    run = ("Exit code 1\n 1307 pass\n 2 fail\nerror: script \"test\" exited with code 1\n"
           "[full output: logs/tee/1771501992_test.log]")
    found = detect(K, turn(bash("wrapper test bun run test", run, error=True)),
                   turn(bash("tail -50 logs/tee/1771501992_test.log",
                             "tail: logs/tee/1771501992_test.log: No such file or directory", error=True)),
                   turn())
    assert found == []


def test_a_name_the_failing_call_itself_reports_missing_is_still_invented(detect: Detect) -> None:
    """Learning from failed runs starts after the call is judged: its own ImportError still counts."""
    error = ("Traceback (most recent call last):\n  File \"<string>\", line 5, in <module>\n"
             "ImportError: cannot import name 'parse_jsonl_file' from 'app.parser'")
    found = detect(K, turn(bash("python -c 'from app.parser import parse_jsonl_file'", error, error=True)),
                   turn())
    assert [f.turn for f in found] == [1]


def test_a_listing_that_finds_a_guessed_directory_missing_is_a_check(detect: Detect) -> None:
    """After a guessed binary path fails, listing its directory to see what is there is the model
    grounding itself: it does not grow the guess into a second finding."""
    found = detect(K, turn(ls("/repo", ["src/", "package.json"])),
                   turn(bash("./node_modules/.bin/tsc --noEmit",
                             "(eval):1: no such file or directory: ./node_modules/.bin/tsc", error=True)),
                   turn(bash("ls /repo/node_modules/.bin/",
                             "ls: /repo/node_modules/.bin/: No such file or directory", error=True)),
                   turn())
    assert [f.turn for f in found] == [2]


@pytest.mark.parametrize(("command", "result", "target"), [
    # git names a long option without its dashes, and the line that got it is the rebase, not the add.
    ("cd /repo\ngit add src/a.go\ngit rebase --continue --no-edit 2>&1",
     "error: unknown option `no-edit'\nusage: git rebase [-i] [options] [--exec <cmd>]", "git rebase --no-edit"),
    # The listing before it worked; the program given the flag is the one that rejected it.
    ('ls -la "$DIR" && ./bin/omp print primary --debug 2>&1 | grep -i error | head -20',
     "total 4\nError: unknown flag: --debug\n  omp print [primary|secondary] [flags]", "omp --debug"),
], ids=["git-long-option", "later-part-of-a-chain"])
def test_an_unknown_option_names_the_program_that_was_given_it(detect: Detect, command: str, result: str,
                                                               target: str) -> None:
    """A reader fixes the option where it was typed: the finding names that part of the command."""
    found = detect(K, turn(bash(command, result, error=True)), turn())
    assert [f.evidence["target"] for f in found] == [target]


@pytest.mark.parametrize("command", ["command -v ruby gfortran; ruby --version", "which rbenv && rbenv versions",
                                     "type ruby", "ruby -v"])
def test_asking_whether_a_program_is_installed_is_not_relying_on_it(detect: Detect, command: str) -> None:
    """`command -v ruby`, `ruby --version`: "not found" is the answer the model asked for."""
    program = "rbenv" if "rbenv" in command else "ruby"
    found = detect(K, turn(bash(command, f"bash: {program}: command not found", error=True)), turn())
    assert found == []


def test_a_program_an_earlier_result_named_is_missing_not_invented(detect: Detect) -> None:
    """The project's package.json runs `astro build`; `astro: command not found` means the dependencies are
    not installed, not that the model made the program up. One no result named is still reported."""
    package = read("apps/docs/package.json", '{"scripts": {"build": "astro build"}, "devDependencies": {}}')
    missing = "sh: astro: command not found"
    assert detect(K, turn(package), turn(bash("npx astro build --root apps/docs", missing, error=True)), turn()) == []
    roadmap = read("ROADMAP.md", "- [x] Add a local IPFS node to Docker for offline testing")
    assert detect(K, turn(roadmap), turn(bash("docker compose up -d", "zsh: command not found: docker", error=True)),
                  turn()) == []
    found = detect(K, turn(package), turn(bash("starlight build", "sh: starlight: command not found", error=True)),
                   turn())
    assert [f.evidence["target"] for f in found] == ["starlight"]


@pytest.mark.parametrize("path", ["/Users/me/.claude/projects/-Users-me-repo/memory/MEMORY.md",
                                  "/repo/.claude/skills/project-knowledge/SKILL.md"])
def test_a_path_in_the_harness_own_directory_comes_from_its_system_prompt(detect: Detect, path: str) -> None:
    """Claude Code's system prompt names its memory file and skills; a transcript does not record it, so a
    read there that fails is no evidence of an invented path."""
    assert detect(K, turn(read(path, MISSING, error=True)), turn()) == []


def test_a_worktree_under_the_harness_directory_holds_project_files(detect: Detect) -> None:
    """Claude Code checks worktrees out under .claude/worktrees/: a guessed file there is a project file."""
    found = detect(K, turn(read("/repo/.claude/worktrees/agent-1/src/helpers/formatDate.ts", MISSING, error=True)),
                   turn())
    assert [f.turn for f in found] == [1]


def test_a_file_an_earlier_command_wrote_is_not_a_guess(detect: Detect) -> None:
    """`gh run view --log > /tmp/run.log` made the file: reading it later and failing (the read tool maps
    /tmp elsewhere on Windows) is not a path the model invented."""
    found = detect(K, turn(bash("gh run view 42 --log 2>&1 > /tmp/run.log; wc -l /tmp/run.log", "9120 /tmp/run.log")),
                   turn(read("/tmp/run.log", MISSING, error=True)), turn())
    assert found == []


def test_what_a_failing_command_still_listed_was_seen(detect: Detect) -> None:
    """`cd website/build/docs && …; echo ---; ls` fails on the cd (the shell was already there) and still
    lists the directory: a later path through a name in that listing is a wrong directory, not a guess."""
    listed = ("bash: line 1: cd: website/build/docs: No such file or directory\n---\ncategory\ninstallation\n"
              "index.html")
    found = detect(K, turn(bash("ls website/build", "docs\nassets")),
                   turn(bash("cd website/build/docs && ls category; echo ---; ls", listed, error=True)),
                   turn(bash("ls build/docs/category",
                             "ls: cannot access 'build/docs/category': No such file or directory", error=True)),
                   turn())
    assert found == []


_NO_REPO = "GraphQL: Could not resolve to a Repository with the name 'cipherbox-official/cipher-box'. (repository)"


@pytest.mark.parametrize("command", [
    "gh pr list --repo cipherbox-official/cipher-box",
    "gh api graphql -f query='{ repository(owner: \"cipherbox-official\", name: \"cipher-box\") { id } }'",
], ids=["repo-flag", "graphql-owner-and-name"])
def test_a_github_repository_the_model_made_up_is_invented(detect: Detect, command: str) -> None:
    """An owner no result named, given to gh as `owner/name` or as GraphQL arguments: GitHub has no such
    repository, and the model did not get it from anywhere."""
    found = detect(K, turn(bash(command, _NO_REPO, error=True)), turn())
    assert [(f.evidence["target"], f.evidence["target_type"]) for f in found] == [
        ("cipherbox-official/cipher-box", "account")]


def test_a_github_repository_an_earlier_result_named_is_not_invented(detect: Detect) -> None:
    """`git remote -v` showed the owner and name: GitHub refusing them is another problem (access, a rename)."""
    remote = bash("git remote -v", "origin\tgit@github.com:cipherbox-official/cipher-box.git (fetch)")
    found = detect(K, turn(remote), turn(bash("gh pr list --repo cipherbox-official/cipher-box", _NO_REPO,
                                              error=True)), turn())
    assert found == []


_SCHEMA_ERROR = ("<tool_use_error>InputValidationError: {tool} failed due to the following issue{s}:\n{lines}"
                 "</tool_use_error>")


@pytest.mark.parametrize(("name", "tool_input", "lines", "target"), [
    ("Grep", {"pattern": "TODO", "-l": True}, "An unexpected parameter `-l` was provided", "Grep -l"),
    ("Read", {"path": "src/app.py"},
     "The required parameter `file_path` is missing\nAn unexpected parameter `path` was provided", "Read path"),
])
def test_a_parameter_the_tool_does_not_have_is_invented(detect: Detect, name: str, tool_input: dict[str, Any],
                                                        lines: str, target: str) -> None:
    """Grep has `output_mode`, not `-l`: a parameter the tool's schema lacks is a flag the model made up."""
    result = _SCHEMA_ERROR.format(tool=name, s="s" if "\n" in lines else "", lines=lines)
    found = detect(K, turn(tool(name, tool_input, result, error=True)), turn())
    assert [(f.evidence["target"], f.evidence["target_type"]) for f in found] == [(target, "parameter")]
    assert "a parameter the tool does not have" in found[0].message


def test_guessed_parameters_of_a_tool_whose_schema_was_never_sent_are_not_invented(detect: Detect) -> None:
    """A deferred tool called before it was loaded: the harness says the model never saw its parameters."""
    lines = ("The required parameter `command` is missing\nAn unexpected parameter `query` was provided\n\n"
             "This tool's schema was not sent to the API — it was not in the discovered-tool set.")
    result = _SCHEMA_ERROR.format(tool="Monitor", s="s", lines=lines)
    found = detect(K, turn(tool("Monitor", {"query": "errors"}, result, error=True)), turn())
    assert found == []
