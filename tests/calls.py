"""Every way an agent can call the Messages API, behind one function, so one parametrized test covers
sync / async × create / ``stream=True`` / the ``.stream()`` helper × plain / beta."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic

CALL_STYLES = ("create", "async_create", "create_stream", "async_create_stream", "helper", "async_helper")

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 512,
    "messages": [{"role": "user", "content": "List the files."}],
}


def clients(base_url: str, **options: Any) -> tuple[anthropic.Anthropic, anthropic.AsyncAnthropic]:
    options.setdefault("max_retries", 0)
    return (anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=base_url, **options),
            anthropic.AsyncAnthropic(api_key="sk-ant-test-key-000000", base_url=base_url, **options))


def summarize(message: Any) -> dict[str, Any]:
    """What a caller observes of a response: comparable across call styles."""
    return {
        "type": type(message).__name__,
        "stop_reason": message.stop_reason,
        "content": [block.model_dump(exclude_none=True) for block in message.content],
        "usage": {k: v for k, v in message.usage.model_dump().items()
                  if k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                           "cache_creation_input_tokens")},
    }


def call(style: str, base_url: str, *, beta: bool = False, **overrides: Any) -> dict[str, Any]:
    """Make one model call in ``style`` and return the final message's summary."""
    sync_client, async_client = clients(base_url)
    request = {**REQUEST, **overrides}

    def messages(client: Any) -> Any:
        return client.beta.messages if beta else client.messages

    if style == "create":
        return summarize(messages(sync_client).create(**request))
    if style == "create_stream":
        events = list(messages(sync_client).create(stream=True, **request))
        return {"events": [event.type for event in events]}
    if style == "helper":
        with messages(sync_client).stream(**request) as stream:
            return summarize(stream.get_final_message())

    async def run_async() -> dict[str, Any]:
        if style == "async_create":
            return summarize(await messages(async_client).create(**request))
        if style == "async_create_stream":
            stream = await messages(async_client).create(stream=True, **request)
            return {"events": [event.type async for event in stream]}
        async with messages(async_client).stream(**request) as stream:
            return summarize(await stream.get_final_message())

    return asyncio.run(run_async())
