"""Opt-in content: redaction of secrets, size caps, and encoding each resent message once."""

from __future__ import annotations

import json

import pytest

from otel_agent_trace.pipeline.content import REDACTED, ContentEncoder, redact


@pytest.mark.parametrize("secret", [
    "sk-ant-api03-AbCdEfGhIjKlMnOp",
    "AKIAABCDEFGHIJKLMNOP",
    "ghp_abcdefghijklmnopqrstuvwx1234",
    "xoxb-1234567890-abcdef",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
])
def test_known_key_shapes_are_masked(secret):
    """API keys and tokens of common providers never survive redaction."""
    assert secret not in redact(f"use {secret} now")


@pytest.mark.parametrize("text", ["Authorization: Bearer abcdef123456", "x-api-key: abcdef123456",
                                  'password = "hunter22"', "API_KEY=abcdef123456"])
def test_credential_assignments_are_masked(text):
    """``key: value`` style credentials keep the key and lose the value."""
    masked = redact(text)
    assert REDACTED in masked and "abcdef123456" not in masked and "hunter22" not in masked


def test_ordinary_text_is_untouched():
    """Text with no secrets comes back unchanged (including the word tokens)."""
    text = "Read auth/session.ts: 1,200 tokens, no keys here."
    assert redact(text) == text


def test_history_is_encoded_in_semconv_shape_and_capped():
    """Input messages follow the GenAI role/parts shape and respect the size cap."""
    encoder = ContentEncoder(limit=200)
    messages = [{"role": "user", "content": "x" * 500}]
    value = encoder.input_messages(messages)
    assert len(value) <= 200 and "truncated" in value
    full = json.loads(ContentEncoder(limit=10_000).input_messages(messages))
    assert full == [{"role": "user", "parts": [{"type": "text", "content": "x" * 500}]}]


def test_each_resent_message_is_encoded_once():
    """A message object sent again on the next turn reuses its encoding instead of re-serialising it."""
    encoder = ContentEncoder(limit=100_000)
    calls = []

    class Counting(dict):
        def get(self, key, default=None):
            calls.append(key)
            return super().get(key, default)

    first = Counting(role="user", content="task")
    encoder.input_messages([first])
    seen = len(calls)
    encoder.input_messages([first, {"role": "assistant", "content": "ok"}])
    assert seen > 0 and len(calls) == seen
