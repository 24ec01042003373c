"""The pytest plugin: agent_trace, fake_anthropic and trace_snapshot, as a team would use them in CI."""

from __future__ import annotations

import textwrap

import pytest

from otel_agent_trace.model.records import Finding
from otel_agent_trace.testing import text_reply, tool_reply
from otel_agent_trace.testing.demo_agent import run_agent  # your agent's loop goes here
from otel_agent_trace.testing.run import Findings

pytest_plugins = ["pytester"]


# The README's "Testing your agent" example, verbatim: it must keep running.
def test_agent_stays_on_budget(agent_trace, fake_anthropic, trace_snapshot):
    fake_anthropic.enqueue(tool_reply(("run_bash", {"command": "echo 42"})), text_reply("It printed 42."))
    run_agent(fake_anthropic.client(), "What does echo 42 print?")
    run = agent_trace.session
    assert run.clean and run.end_reason == "end_turn"
    assert run.turns <= 12 and run.tokens <= 80_000 and run.input_cost_usd < 0.01
    assert not run.findings.of("tool_loop")
    assert agent_trace.shape == trace_snapshot


def test_run_totals_come_from_the_spans(agent_trace, fake_anthropic) -> None:
    """Turns, tokens, tool calls and input cost are the session span's totals, priced by the settings."""
    usage = {"input_tokens": 1_000, "output_tokens": 50, "cache_read_input_tokens": 2_000,
             "cache_creation_input_tokens": 400}
    fake_anthropic.enqueue(tool_reply(("run_bash", {"command": "true"}), usage=usage), text_reply("ok", usage=usage))
    run_agent(fake_anthropic.client(), "Run true.")
    run = agent_trace.session
    assert (run.turns, run.tool_calls, run.input_tokens, run.output_tokens) == (2, 1, 6_800, 100)
    price = agent_trace.settings.input_price("claude-sonnet-4-6")
    assert run.input_cost_usd == pytest.approx(2 * (1_000 + 2_000 * 0.1 + 400 * 1.25) * price / 1e6)


@pytest.mark.agent_trace(capture_content=True)
def test_marker_sets_the_instrumentation_settings(agent_trace, fake_anthropic) -> None:
    """``@pytest.mark.agent_trace(...)`` fields reach the instrumentation: here, content capture."""
    fake_anthropic.enqueue(text_reply("Paris."))
    run_agent(fake_anthropic.client(), "Capital of France?")
    (chat,) = agent_trace.spans_of("chat")
    assert "Capital of France?" in chat.attributes["gen_ai.input.messages"]


def test_reading_the_run_ends_open_sessions(agent_trace, fake_anthropic) -> None:
    """A loop that gave up mid-task still yields a finished session, with its findings."""
    fake_anthropic.respond_with(lambda body: tool_reply(("read_file", {"path": "missing.py"})))
    with pytest.raises(RuntimeError, match="Turn limit"):
        run_agent(fake_anthropic.client(), "Read missing.py", max_turns=4)
    run = agent_trace.session
    assert run.turns == 4 and run.end_reason == "abandoned"
    assert {"tool_loop", "no_end_turn"} <= run.findings.kinds
    assert not run.clean


class TestFindings:
    FOUND = Findings([Finding("tool_loop", "warning", 5, "Read failed 3 times"),
                      Finding("cache_miss", "info", 2, "no cache reads"),
                      Finding("no_end_turn", "error", 9, "turn limit")])

    def test_filters_by_kind_and_severity(self) -> None:
        """``of`` filters by kind and exact severity, ``at_least`` by minimum severity."""
        assert [f.kind for f in self.FOUND.of("tool_loop")] == ["tool_loop"]
        assert [f.kind for f in self.FOUND.of(severity="info")] == ["cache_miss"]
        assert [f.kind for f in self.FOUND.at_least("warning")] == ["tool_loop", "no_end_turn"]
        assert self.FOUND.kinds == {"tool_loop", "cache_miss", "no_end_turn"}

    def test_repr_lists_every_finding_on_one_line(self) -> None:
        """A failing assertion shows each finding's turn, severity, kind and message."""
        assert repr(self.FOUND) == ("Findings([T5 warning tool_loop: Read failed 3 times; "
                                    "T2 info cache_miss: no cache reads; T9 error no_end_turn: turn limit])")


# -- the plugin seen from a user's test suite (pytester runs an inner pytest session) --------------------
USER_TEST = textwrap.dedent('''
    import pytest
    from otel_agent_trace.testing import text_reply, tool_reply
    from otel_agent_trace.testing.demo_agent import run_agent

    def test_echo(agent_trace, fake_anthropic, trace_snapshot):
        fake_anthropic.enqueue(tool_reply(("run_bash", {"command": "echo hi"})), text_reply("hi"))
        run_agent(fake_anthropic.client(), "Say hi")
        assert agent_trace.shape == trace_snapshot

    def test_stuck(agent_trace, fake_anthropic):
        fake_anthropic.respond_with(lambda body: tool_reply(("read_file", {"path": "nope.py"})))
        with pytest.raises(RuntimeError):
            run_agent(fake_anthropic.client(), "Read nope.py", max_turns=4)
        assert agent_trace.session.clean
''')


def test_missing_snapshot_fails_with_the_command_to_record_it(pytester: pytest.Pytester) -> None:
    """Without a stored snapshot the test fails and says how to record one."""
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest("-k", "echo")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no trace snapshot at*test_echo.txt*", "*--agent-trace-update-snapshots*"])


def test_update_flag_records_and_later_runs_compare(pytester: pytest.Pytester) -> None:
    """``--agent-trace-update-snapshots`` writes the shape; the next run passes against it."""
    pytester.makepyfile(test_user=USER_TEST)
    pytester.runpytest("-k", "echo", "--agent-trace-update-snapshots").assert_outcomes(passed=1)
    stored = (pytester.path / "__snapshots__" / "test_user" / "test_echo.txt").read_text()
    assert stored == ("invoke_agent agent  [end_reason=end_turn]\n"
                      "  chat claude-sonnet-4-6\n"
                      "    execute_tool run_bash\n"
                      "  chat claude-sonnet-4-6\n")
    pytester.runpytest("-k", "echo").assert_outcomes(passed=1)


def test_changed_shape_shows_a_line_diff(pytester: pytest.Pytester) -> None:
    """A shape that no longer matches fails with a unified diff against the snapshot."""
    pytester.makepyfile(test_user=USER_TEST)
    snapshot = pytester.path / "__snapshots__" / "test_user" / "test_echo.txt"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_text("invoke_agent agent  [end_reason=end_turn]\n  chat claude-sonnet-4-6\n")
    result = pytester.runpytest("-k", "echo")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*trace shape differs from*", "*+    execute_tool run_bash"])


def test_failed_clean_assertion_shows_the_findings(pytester: pytest.Pytester) -> None:
    """``assert agent_trace.session.clean`` failing prints the session with its findings."""
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest("-k", "stuck")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*where False = <session *: 4 turns, ended abandoned; findings: *warning tool_loop*"])


def test_instrumentation_is_removed_after_the_test(pytester: pytest.Pytester) -> None:
    """After a test using ``agent_trace`` the SDK is no longer instrumented."""
    from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor

    pytester.makepyfile(test_user=USER_TEST)
    pytester.runpytest("-k", "stuck")
    assert not AnthropicAgentInstrumentor().is_instrumented_by_opentelemetry


def test_unknown_marker_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A misspelt setting in the marker stops the test with its name instead of being ignored."""
    pytester.makepyfile(test_user='''
        import pytest

        @pytest.mark.agent_trace(capture_contents=True)
        def test_x(agent_trace):
            pass
    ''')
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*unknown setting 'capture_contents'*"])
    assert result.ret != 0


def test_readme_example_is_the_one_that_runs_here() -> None:
    """The README's agent regression test is this module's first test, line for line, and under 15 lines."""
    from pathlib import Path

    source = Path(__file__).read_text(encoding="utf-8")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Testing your agent", 1)[1].split("```python\n", 1)[1].split("```", 1)[0].strip()
    imports, test = block.split("\n\n\n")
    assert len(block.splitlines()) < 15
    assert all(line in source.splitlines() for line in imports.splitlines())
    assert test in source


def test_agent_instrumented_at_import_is_taken_over(pytester: pytest.Pytester) -> None:
    """An agent module that calls ``instrument()`` on import still has its calls in ``agent_trace``."""
    pytester.makeconftest('''
        from opentelemetry.sdk.trace import TracerProvider
        import otel_agent_trace

        otel_agent_trace.instrument(tracer_provider=TracerProvider())
    ''')
    pytester.makepyfile(test_user='''
        from otel_agent_trace.testing import text_reply
        from otel_agent_trace.testing.demo_agent import run_agent

        def test_x(agent_trace, fake_anthropic):
            fake_anthropic.enqueue(text_reply("hi"))
            run_agent(fake_anthropic.client(), "Say hi")
            assert agent_trace.session.turns == 1
    ''')
    pytester.runpytest().assert_outcomes(passed=1)
