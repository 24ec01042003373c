"""Every attribute, event and span name this package emits, in one place.

GenAI semantic-convention names are spelled out rather than imported: the `gen_ai` module of
opentelemetry-semantic-conventions is still incubating and renames attributes between releases, while a
trace backend (Langfuse, Phoenix, Grafana dashboards) matches on the exact strings below.
Our own names use the ``agent_trace.`` prefix.
"""

from __future__ import annotations

# --- GenAI semantic conventions -------------------------------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_PREFIX = "gen_ai.usage."
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE = "gen_ai.usage.cache_write.input_tokens"
# Langfuse reads cache writes only under this older name, so both are set.
USAGE_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
CONVERSATION_ID = "gen_ai.conversation.id"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

OP_CHAT = "chat"
OP_EXECUTE_TOOL = "execute_tool"
OP_INVOKE_AGENT = "invoke_agent"

PROVIDER_ANTHROPIC = "anthropic"
PROVIDER_BEDROCK = "aws.bedrock"
PROVIDER_VERTEX = "gcp.vertex_ai"
PROVIDER_AZURE = "azure.ai.inference"

# --- agent_trace.* --------------------------------------------------------------------------------------
TURN_INDEX = "agent_trace.turn.index"
STOP_REASON = "agent_trace.stop_reason"
TOOL_USE_NAMES = "agent_trace.tool_use.names"
CACHE_HIT_RATIO = "agent_trace.cache.hit_ratio"
CACHE_SAVED_USD = "agent_trace.cache.saved_usd"
HTTP_ATTEMPTS = "agent_trace.http.attempts"
REQUEST_MESSAGES = "agent_trace.request.messages"
REQUEST_CACHE_CONTROL = "agent_trace.request.cache_control"
# A message thread's turn: the id of the reply it continues (the server holds the messages before it).
REQUEST_CONTINUES = "agent_trace.request.continues"
CONTEXT_TOKENS = "agent_trace.context_tokens"
# Everything the call consumed where ``usage.iterations`` holds more than the top-level counts.
USAGE_CONSUMED_INPUT_TOKENS = "agent_trace.usage.consumed.input_tokens"
USAGE_CONSUMED_OUTPUT_TOKENS = "agent_trace.usage.consumed.output_tokens"
# A model call that failed before any response (HTTP error, network error, a refusal by the SDK itself):
# its error span keeps the turn index the retry will take, and does not count as a turn.
TURN_FAILED_ATTEMPT = "agent_trace.turn.failed_attempt"
# Set on a turn span that leaves gen_ai.usage.* to another library's span for the same call (foreign.py).
USAGE_REPORTED_BY = "agent_trace.usage.reported_by"
TURNS = "agent_trace.turns"
TOKENS_INPUT = "agent_trace.tokens.input"
TOKENS_OUTPUT = "agent_trace.tokens.output"
TOKENS_CACHE_READ = "agent_trace.tokens.cache_read"
TOKENS_CACHE_WRITE = "agent_trace.tokens.cache_write"
END_REASON = "agent_trace.end_reason"
PARENT_SESSION = "agent_trace.session.parent"
TOOL_SOURCE = "agent_trace.tool.source"
TOOL_RESULT_CHARS = "agent_trace.tool.result.chars"
TOOL_IS_ERROR = "agent_trace.tool.is_error"
TOOL_CALLS = "agent_trace.tool_calls"
FINDINGS_COUNT = "agent_trace.findings.count"
FINDINGS_KINDS = "agent_trace.findings.kinds"

FINDING_EVENT = "agent_trace.finding"
FINDING_KIND = "agent_trace.finding.kind"
FINDING_SEVERITY = "agent_trace.finding.severity"
FINDING_TURN = "agent_trace.finding.turn"
FINDING_TURNS = "agent_trace.finding.turns"
FINDING_MESSAGE = "agent_trace.finding.message"
FINDING_SPAN_ID = "agent_trace.finding.span_id"
FINDING_TOOL_USE_IDS = "agent_trace.finding.tool_use_ids"

# --- what Langfuse reads (it shows no span events) ------------------------------------------------------
LANGFUSE_SESSION_ID = "session.id"
LANGFUSE_LEVEL = "langfuse.observation.level"
LANGFUSE_STATUS_MESSAGE = "langfuse.observation.status_message"
LANGFUSE_COMPLETION_START = "langfuse.observation.completion_start_time"

# --- metrics --------------------------------------------------------------------------------------------
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_TOOL_DURATION = "agent_trace.tool.duration"
METRIC_FINDINGS = "agent_trace.findings"

INSTRUMENTATION_SCOPE = "otel_agent_trace"
