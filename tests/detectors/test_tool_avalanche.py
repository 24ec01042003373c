"""tool_avalanche: many small read/search turns and no commitment."""

from __future__ import annotations

from otel_agent_trace.testing.scenario import bash, edit, glob, grep, read, tool, turn

from .conftest import Detect

K = "tool_avalanche"


def _explore(n: int, start_ctx: int = 4_000, step: int = 400) -> list[dict]:
    kinds = (lambda i: read(f"src/m{i}.py"), lambda i: grep(f"def f{i}", "src/a.py:1:x"),
             lambda i: glob(f"**/*{i}.py", "src/b.py"))
    return [turn(kinds[i % 3](i), context=start_ctx + i * step) for i in range(n)]


class TestToolAvalanche:
    def test_eight_exploring_turns_are_reported_once(self, detect: Detect) -> None:
        """Twelve read/search-only turns give one finding, at the eighth."""
        found = detect(K, *_explore(12), turn(context=9_000))
        assert [(f.turn, f.turns, f.severity) for f in found] == [(8, list(range(1, 9)), "warning")]
        assert found[0].evidence["avg_growth_tokens"] == 400 and "plan" in found[0].message

    def test_the_clean_six_turn_run_is_not_an_avalanche(self, detect: Detect) -> None:
        """Read, read, grep, edit, bash, answer commits at turn 4."""
        found = detect(K, turn(read("a.ts")), turn(read("b.ts")), turn(grep("x", "a.ts:1:x")),
                       turn(edit("a.ts", "x", "y")), turn(bash("npx jest", "PASS")), turn())
        assert found == []

    def test_an_edit_resets_the_run(self, detect: Detect) -> None:
        """Six exploring turns, an edit, six more: no run reaches eight."""
        found = detect(K, *_explore(6), turn(edit("a.py", "x", "y")), *_explore(6), turn())
        assert found == []

    def test_a_changing_bash_command_is_commitment(self, detect: Detect) -> None:
        """Running the tests in the middle breaks the run; cat/ls in bash do not."""
        found = detect(K, *_explore(5), turn(bash("pytest -q", "ok")), *_explore(5), turn())
        assert found == []
        found = detect(K, *_explore(5), turn(bash("cat README.md", "hi")), turn(bash("ls src", "a.py")),
                       *_explore(3), turn())
        assert [f.turn for f in found] == [8]

    def test_a_new_run_is_reported_again(self, detect: Detect) -> None:
        """After a commitment, a second long run is a second finding."""
        found = detect(K, *_explore(8), turn(edit("a.py", "x", "y")), *_explore(8), turn())
        assert [f.turn for f in found] == [8, 17]

    def test_big_steps_are_jumps_not_an_avalanche(self, detect: Detect) -> None:
        """Eight reads that each add 20k tokens are token jumps, not small increments."""
        found = detect(K, *_explore(8, step=20_000), turn())
        assert found == []

    def test_other_tools_end_the_run(self, detect: Detect) -> None:
        """A planning call (TodoWrite) between reads is not pure exploration."""
        found = detect(K, *_explore(4), turn(tool("TodoWrite", {"todos": []}, "ok")), *_explore(4), turn())
        assert found == []

    def test_min_turns_is_a_setting(self, detect: Detect) -> None:
        """avalanche_min_turns=4 reports at the fourth exploring turn."""
        assert [f.turn for f in detect(K, *_explore(5), turn(), avalanche_min_turns=4)] == [4]


def test_a_token_jump_inside_a_run_restarts_it(detect: Detect) -> None:
    """Five small steps, one +20k jump, six small steps: no eight similar increments in a row."""
    first = _explore(5)
    jump = turn(read("big.json"), context=30_000)
    found = detect(K, *first, jump, *_explore(6, start_ctx=30_400), turn())
    assert found == []


def test_a_jump_after_the_finding_does_not_report_the_same_stretch_again(detect: Detect) -> None:
    """Eight small steps (reported), a +20k read, eight more small steps, no commitment: one finding."""
    jump = turn(read("big.json"), context=30_000)
    found = detect(K, *_explore(8), jump, *_explore(8, start_ctx=30_400), turn())
    assert [f.turn for f in found] == [8]


def test_web_searches_and_fetches_are_exploration_too(detect: Detect) -> None:
    """Reads interleaved with WebFetch/WebSearch calls make one run of eight exploring turns."""
    web = [turn(tool("WebFetch", {"url": f"https://docs.example/{i}", "prompt": "x"}, "text"),
                context=6_000 + i * 400) for i in range(3)]
    found = detect(K, *_explore(5), *web, turn())
    assert [f.turn for f in found] == [8]



def _empty_searches(n: int, start_ctx: int) -> list[dict]:
    return [turn(grep(f"def g{i}", "No matches found"), context=start_ctx + i * 50) for i in range(n)]


def test_a_run_of_mostly_empty_searches_is_retrying_not_an_avalanche(detect: Detect) -> None:
    """Eight read/search turns, four of them finding nothing: a loop's retries, not exploration."""
    turns = _explore(4) + _empty_searches(4, 6_000)
    found = detect(K, *turns, turn(context=7_000))
    assert found == []


def test_a_few_empty_searches_do_not_hide_an_avalanche(detect: Detect) -> None:
    """Two fruitless turns among ten exploring ones: still an avalanche, at the eighth turn."""
    turns = _explore(3) + _empty_searches(2, 5_300) + [turn(read(f"src/n{i}.py"), context=5_500 + i * 300)
                                                       for i in range(5)]
    found = detect(K, *turns, turn(context=9_000))
    assert [f.turn for f in found] == [8] and found[0].evidence["fruitless_turns"] == 2


def test_a_5k_step_late_in_a_conversation_is_not_a_small_step(detect: Detect) -> None:
    """At 60k of context a +6k read is only 10 %, under the token-jump ratio, but no small step beside
    reads of 400 tokens: read-only work adding large, uneven amounts (a review) is not an avalanche."""
    first = _explore(4, start_ctx=60_000)
    big = turn(read("big.go"), context=67_200)
    found = detect(K, *first, big, *_explore(4, start_ctx=67_600), turn())
    assert found == []
