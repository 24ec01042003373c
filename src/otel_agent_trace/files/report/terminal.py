"""What the CLI prints: one sanitizer for text that came from a file or a model, and the rich console.

Transcripts are untrusted: a tool result can hold ``ESC ] 52`` (a clipboard write), ``ESC [ 2 J`` (clear
screen), an OSC 8 link, C1 controls (``U+009B`` is a one-byte CSI on some terminals) or bidi overrides
that make text read differently from what it is. ``clean`` makes every such character visible as an
escape (``\\x1b``, ``\\u202e``) instead of letting the terminal act on it; ``json_text`` does the same
for JSON output with standard ``\\uXXXX`` escapes, so the data survives a round trip unchanged.

rich is imported lazily here and only by the CLI, so an instrumented agent never loads it.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

# C0 except tab and newline, DEL, C1, and the bidi controls (embeddings, overrides, isolates, marks).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_RE = re.compile(f"[{_UNSAFE}]")
_UNSAFE_LINE_RE = re.compile(f"[{_UNSAFE}\n\t]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object, *, one_line: bool = False) -> str:
    """``text`` safe to print on a terminal; ``one_line`` also turns newlines and tabs into escapes."""
    value = text if isinstance(text, str) else str(text)
    return (_UNSAFE_LINE_RE if one_line else _UNSAFE_RE).sub(_visible, value)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON whose text holds no terminal control or bidi character (they become ``\\uXXXX``)."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    # Outside strings JSON text is plain ASCII, so every such character is inside a string literal,
    # where a \\uXXXX escape decodes back to the same character.
    return _UNSAFE_RE.sub(_json_escape, text)


def use_color(stream: TextIO, disabled: bool = False) -> bool:
    """Colour on a terminal or with ``FORCE_COLOR``; never with ``--no-color`` or ``NO_COLOR`` (no-color.org)."""
    if disabled or os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or _isatty(stream)


def width_of(stream: TextIO) -> int:
    """The terminal's width, clamped to what a report reads well at; 100 when not a terminal."""
    import shutil

    columns = shutil.get_terminal_size((100, 24)).columns if _isatty(stream) else 100
    return max(60, min(160, columns))


def _isatty(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def console(stream: TextIO, *, color: bool, width: int | None = None) -> Console:
    """A rich console writing to ``stream``: colour only when asked, no markup, no emoji codes."""
    from rich.console import Console

    return Console(file=stream, force_terminal=color, no_color=not color, color_system="standard" if color else None,
                   width=width or width_of(stream), markup=False, emoji=False, highlight=False,
                   soft_wrap=False)


def render(renderables: list[Any], *, color: bool, width: int) -> str:
    """Renderables (rich ``Text`` lines, tables) as one string, for tests and for writing in one go."""
    import io

    buffer = io.StringIO()
    out = console(buffer, color=color, width=width)
    for item in renderables:
        # Lines are laid out by the caller; one too long is clipped with "…", never wrapped mid-field.
        out.print(item, no_wrap=True, overflow="ellipsis")
    return buffer.getvalue()


def styled(*parts: str | tuple[str, str], clip: bool = True) -> Any:
    """A rich Text from plain strings and (string, style) pairs, never parsed as markup; with ``clip`` it
    stays one line, cut with an ellipsis at the console's width."""
    from rich.text import Text

    line = Text(no_wrap=True, overflow="ellipsis") if clip else Text()
    for part in parts:
        if isinstance(part, tuple):
            line.append(*part)
        else:
            line.append(part)
    return line
