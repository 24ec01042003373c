"""hallucinated_input: a call on something that does not exist and that the model never saw.

A not-found path is only suspicious when nothing earlier in the session grounded it: no listing,
search, read, write or other tool result mentioned its name. Paths named in a result and then failing
are a wrong directory or a deleted file — different problems. Hallucinations cluster before the first
orientation call (a search, glob or directory listing), so those are reported stronger. Unknown
commands and flags (``command not found``, ``unrecognized arguments: --foo``) count too.
"""

from __future__ import annotations

from ..records import Finding, ToolCall
from ._util import BoundedDict, short
from .base import Detector, Thresholds
from .errors import HEAD_CHARS, bad_flag, error_line, path_tokens
from .roles import BASH, SEARCH, WRITE, ToolRole, call_info, norm_path

_LISTING_CHARS = 16_384  # listings and search results are read further than ordinary results
_OTHER_CHARS = 4_096
_MAX_TOKENS = 512


def _names(path: str) -> tuple[str, ...]:
    """'src/auth/session.ts' → ('session.ts', 'auth'); 'session.ts' → ('session.ts',)."""
    parts = path.rstrip("/").rsplit("/", 2)
    if len(parts) > 1 and parts[-2] not in ("", ".", "..", "~"):
        return parts[-1], parts[-2]
    return (parts[-1],)


class HallucinatedInput(Detector):
    """Not-found errors on targets never seen before; unknown commands and flags."""

    kind = "hallucinated_input"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        cap = self.thresholds.max_tracked_targets
        # File and directory names seen so far, not whole paths: a listing often shows "session.ts" under a
        # heading "auth/". A target counts as seen when its name and its directory's name both were.
        self._known: BoundedDict[str, int] = BoundedDict(cap)
        self._reported: BoundedDict[str, int] = BoundedDict(cap)
        self._oriented_at: int | None = None
        # Consecutive guesses are one episode (tool_loop counts the repeats); report its first guess only.
        self._in_burst = False

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        info = call_info(call)
        role, t = info.role, call.turn_index
        if info.error is None:
            self._learn(call, role, t)
            return []
        target, what = self._target(call, role, info.error)
        if target is None or target in self._reported:
            return []
        if what == "path" and self._seen(target):
            return []
        if self._in_burst:
            return []
        self._in_burst = True
        self._reported.put(target, t)
        before = self._oriented_at is None
        if what == "path" and _names(target)[0] in self._known:
            head = (f"{call.name} on {target} at turn {t}: not found; its name was seen earlier, but never in"
                    " that directory")
        elif what == "path":
            head = (f"{call.name} on {target} at turn {t}: not found, and no earlier listing, search or"
                    " result named it")
        elif what == "command":
            head = f"`{target}` at turn {t}: command not found"
        else:
            head = f"`{target}` at turn {t}: {error_line(call.result, info.error, 80) or 'unknown option'}"
        if before:
            fix = ("no search or listing yet: the model acted before grounding itself; a forced orientation"
                   " step (directory listing, project structure) at the start prevents this")
        else:
            fix = "look at what the model read before this turn: that input was probably ambiguous"
        return [Finding(
            kind=self.kind, severity="warning" if before else "info", turn=t, turns=[t],
            tool_use_ids=[call.tool_use_id], message=f"{head} — {fix}",
            evidence={"target": target, "target_type": what, "error_class": info.error, "tool": call.name,
                      "before_orientation": before, "oriented_at_turn": self._oriented_at,
                      "error": short(error_line(call.result, info.error), 200)},
        )]

    def _target(self, call: ToolCall, role: ToolRole, error: str) -> tuple[str | None, str]:
        if error == "not_found":
            if role.path and role.role != WRITE:
                return role.path, "path"
            if role.role == BASH and role.target:
                # `python scripts/x.py` → the argument the error message complains about.
                text = call.result[:HEAD_CHARS]
                for token in path_tokens(role.target, 500, 16):
                    if token in text:
                        return norm_path(token), "path"
            return None, "path"
        if role.role != BASH:
            return None, ""
        program = (role.program or role.target or "").split(" ", 1)[0]
        if error == "command_not_found" and program:
            return program, "command"
        if error == "bad_option":
            flag = bad_flag(call.result)
            return (f"{program} {flag}" if flag else program) or None, "flag"
        return None, ""

    def _learn(self, call: ToolCall, role: ToolRole, t: int) -> None:
        self._in_burst = False
        names: set[str] = set(_names(role.path)) if role.path else set()
        text = call.result
        if role.role == SEARCH:
            if self._oriented_at is None:
                self._oriented_at = t
            # Listings and grep hits name one entry per line ("src/a.py:12: …", "Makefile", "auth/").
            for line in text[:_LISTING_CHARS].splitlines()[:_MAX_TOKENS]:
                entry = line.strip().split(":", 1)[0].rstrip("/")
                if entry and " " not in entry:
                    names.update(_names(entry))
        elif text:
            for token in path_tokens(text, _OTHER_CHARS, _MAX_TOKENS):
                names.update(_names(token))
        known = self._known
        for name in names:
            known.put(name, t)

    def _seen(self, path: str) -> bool:
        return all(name in self._known for name in _names(path))

    def tracked(self) -> int:
        return len(self._known) + len(self._reported)
