"""The record model that flows through everything: requests, turns, tool calls, findings, sessions."""
