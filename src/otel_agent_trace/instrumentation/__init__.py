"""Live capture from the anthropic SDK: patching, turn lifecycle, sessions, streams, tools."""
