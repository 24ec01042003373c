"""Secret masking with bounded work: every value costs time linear in at most ``MAX_SCAN_CHARS`` characters.

Text reaches this from tool output and prompts, so it is hostile by assumption: an agent that runs
``grep -r "PRIVATE KEY"`` feeds it thousands of key headers with no END line. Three rules keep it linear:

- **A scan cap.** Only the first ``MAX_SCAN_CHARS`` characters are scanned; the rest is dropped (never passed
  through unscanned), and the cut falls on whitespace so no half token survives at the edge.
- **Bounded, anchored patterns.** Every repeat has an upper bound and every open-ended token starts at a
  boundary (a lookbehind that the previous character is not part of the token), so a run of token
  characters is examined from one start, not from each of its positions.
- **Key blocks by hand.** ``-----BEGIN … PRIVATE KEY-----`` is found by pattern but its END by ``str.find``,
  searched once: a missing END masks to the end of the scanned text instead of rescanning it per header.

The families follow what well-kept scanners look for (gitleaks' rule set, detect-secrets' plugins): provider
keys with a known prefix, private key blocks (PEM, OpenSSH, PGP, PuTTY), credentials in URLs and ``curl -u``,
bearer tokens anywhere, AWS secret keys next to their key id (the console's CSV), and ``name = value``
assignments of passwords, secrets, tokens and keys.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"
#: Characters of one value that are scanned; anything past this is dropped, not passed through unscanned.
MAX_SCAN_CHARS = 256 * 1024
_EDGE = 512  # how far back from the cap a cut looks for whitespace, so no half token is left at the edge

# Token characters: an open-ended token never starts in the middle of a run of these.
_T = "A-Za-z0-9_\\-"


def _starts(*prefixes: str) -> str:
    """``prefix`` alternatives, each only where the character before it is not a token character.

    The lookbehind comes after the literal, not before it: a pattern that begins with a literal is searched
    for with a fast scan for that literal, one that begins with an assertion is tried at every position."""
    return "(?:" + "|".join(f"{p}(?<![{_T}]{p})" for p in prefixes) + ")"


# Case-sensitive families with a distinctive prefix: (markers, pattern). A ``k`` group is kept (the
# context before the secret); the rest of the match is masked. A family runs only on text holding a marker.
_TOKEN_FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "anthropic": (("sk-ant-",), _starts("sk-ant-") + r"[A-Za-z0-9]{2,12}-[A-Za-z0-9_\-]{8,256}"),
    "openai": (("sk-",), _starts("sk-") + r"(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,256}"),
    "github": (("gh",), _starts("ghp_", "gho_", "ghu_", "ghs_", "ghr_") + r"[A-Za-z0-9]{20,255}"),
    "github_fine_grained": (("github_pat_",), _starts("github_pat_") + r"[A-Za-z0-9_]{22,255}"),
    "gitlab": (("gl",), _starts(*(f"gl{kind}-" for kind in ("pat", "dt", "ptt", "rt", "cbt", "oas", "soat",
                                                           "ffct", "imt", "agent"))) + r"[A-Za-z0-9_\-]{20,64}"),
    "slack": (("xox", "xapp-"), _starts("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxe-", "xoxr-", "xapp-")
              + r"[A-Za-z0-9\-]{10,255}"),
    # The console's credentials CSV and most config files put the secret right after its key id.
    "aws_key_pair": (("A3T", "AKIA", "ASIA", "ABIA", "ACCA"),
                     r"(?P<k>" + _starts("A3T", "AKIA", "ASIA", "ABIA", "ACCA")
                     + r"[A-Z0-9]{16,17}[\s,;:|\"'=]{1,8})[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
    "aws_key_id": (("A3T", "AKIA", "ASIA", "ABIA", "ACCA"),
                   _starts("A3T", "AKIA", "ASIA", "ABIA", "ACCA") + r"[A-Z0-9]{16,17}"),
    "google_api_key": (("AIza",), _starts("AIza") + r"[0-9A-Za-z_\-]{35}"),
    "stripe": (("_live_", "_test_"), _starts("sk_live_", "rk_live_", "sk_test_", "rk_test_")
               + r"[0-9A-Za-z]{10,247}"),
    "npm": (("npm_",), _starts("npm_") + r"[A-Za-z0-9]{36}"),
    "pypi": (("pypi-",), _starts("pypi-") + r"AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,1000}"),
    "huggingface": (("hf_",), _starts("hf_") + r"[A-Za-z0-9]{30,40}"),
    "sendgrid": (("SG.",), _starts("SG\\.") + r"[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}"),
    "twilio": (("SK",), _starts("SK") + r"[0-9a-fA-F]{32}(?![0-9a-fA-F])"),
    "digitalocean": (("_v1_",), _starts("dop_v1_", "doo_v1_", "dor_v1_") + r"[a-f0-9]{64}"),
    "shopify": (("shp",), _starts("shpat_", "shpca_", "shppa_", "shpss_") + r"[a-fA-F0-9]{32}"),
    "databricks": (("dapi",), _starts("dapi") + r"[a-f0-9]{32}(?:-[0-9])?"),
    "age": (("AGE-SECRET-KEY-1",), r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    "jwt": (("eyJ",), _starts("eyJ") + r"[A-Za-z0-9_\-]{10,4096}\.[A-Za-z0-9_\-]{10,8192}\.[A-Za-z0-9_\-]{5,2048}"),
    "slack_webhook": (("hooks.slack.com/",), r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,120}"),
}
_TOKENS = {name: (markers, re.compile(source)) for name, (markers, source) in _TOKEN_FAMILIES.items()}

# Key blocks, (marker, begin, end): PEM (RSA, EC, DSA, OPENSSH, ENCRYPTED, plain PKCS#8), PGP ("PRIVATE KEY
# BLOCK"), and PuTTY's .ppk files (the private lines come before the closing MAC line).
_KEY_BLOCKS = (
    ("PRIVATE KEY", re.compile(r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY[ A-Z]{0,10}-----"),
     re.compile(r"-----END[ A-Z0-9]{0,40}PRIVATE KEY[ A-Z]{0,10}-----")),
    ("PuTTY-User-Key-File", re.compile(r"PuTTY-User-Key-File-[0-9]"),
     re.compile(r"Private-MAC:[ \t]{0,8}[0-9a-fA-F]{0,128}")),
)

# Matched against lowercased text (a case-insensitive pattern is several times slower); the ``k`` group
# is kept: the name of the setting, the user name in a URL, the word ``bearer``.
_CONTEXT_FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "setting": (("key", "authorization", "passw", "passphrase", "secret", "token"),
                r"(?P<k>(?:api[_-]?key|authorization|passw(?:or)?d|passphrase|secret(?:[_-]?(?:access[_-]?)?key)?"
                r"|token|access[_-]?key"
                r"|account[_-]?key|private[_-]?key)"
                r"[\"']?[ \t]{0,16}[:=][ \t]{0,16}[\"']?(?:(?:bearer|basic|token|api-token|digest|bot)[ \t]{1,8})?)"
                r"[^\s\"',;]{6,4096}"),
    "url_credentials": (("://",), r"(?P<k>://[^\s:/@\"'<>]{1,256}:)[^\s/@\"'<>]{1,256}(?=@)"),
    "bearer_token": (("bearer",), r"(?P<k>" + _starts("bearer") + r"[ \t]{1,8})(?=[a-z._~+/\-]{0,200}[0-9])"
                     r"[a-z0-9._~+/\-]{8,4096}={0,3}"),
    "curl_user": (("-u", "--user"), r"(?P<k>(?:-u(?<=[ \t]-u)|--user)(?:=|[ \t]{1,8})[\"']?[^\s:\"']{1,256}:)"
                  r"[^\s\"']{3,256}"),
}
_CONTEXT = {name: (markers, re.compile(source), re.compile(source, re.IGNORECASE))
            for name, (markers, source) in _CONTEXT_FAMILIES.items()}


def _by_marker(families: list[tuple[tuple[str, ...], Any]]) -> dict[str, tuple[int, ...]]:
    """Each marker and the families (positions in ``families``) that need it."""
    index: dict[str, tuple[int, ...]] = {}
    for position, (markers, *_) in enumerate(families):
        for marker in markers:
            index[marker] = (*index.get(marker, ()), position)
    return index


def _families_in(text: str, by_marker: dict[str, tuple[int, ...]]) -> list[int]:
    """The families whose markers ``text`` holds, in their order: one pass over the distinct markers
    instead of one generator per family (most text, a finding's message, holds none)."""
    found = {position for marker, positions in by_marker.items() if marker in text for position in positions}
    return sorted(found) if len(found) > 1 else list(found)


# A family's pattern only matches text that holds one of its markers, and masking never makes a marker:
# the families to run are found once, on the text before any masking.
_TOKEN_LIST = list(_TOKENS.values())
_TOKEN_MARKERS = _by_marker(_TOKEN_LIST)
_CONTEXT_LIST = list(_CONTEXT.values())
_CONTEXT_MARKERS = _by_marker(_CONTEXT_LIST)

#: Every compiled pattern ``redact`` runs, for the tests that check their structure.
PATTERNS = (*(pattern for _, pattern in _TOKENS.values()), *(p for _, begin, end in _KEY_BLOCKS for p in (begin, end)),
            *(pattern for _, pattern, _ in _CONTEXT.values()))
#: The secret families masked, by name.
FAMILIES = (*_TOKEN_FAMILIES, "private_key_block", "putty_key_file", *_CONTEXT_FAMILIES)


def _mask(match: re.Match[str]) -> str:
    kept = match.group("k") if "k" in match.re.groupindex else None
    return (kept or "") + REDACTED


def _mask_key_blocks(text: str, begins: re.Pattern[str], ends: re.Pattern[str]) -> str:
    """Mask every private key block; a block without END is masked to the end (a cut key still leaks)."""
    out: list[str] = []
    pos = 0
    while True:
        begin = begins.search(text, pos)
        if begin is None:
            break
        end = ends.search(text, begin.end())
        out += (text[pos:begin.start()], REDACTED)
        if end is None:  # no END after this header means none after any later one: stop, do not rescan
            return "".join(out)
        pos = end.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _mask_in_context(text: str) -> str:
    low = text.lower()
    for position in _families_in(low, _CONTEXT_MARKERS):
        _, lower, any_case = _CONTEXT_LIST[position]
        if len(low) != len(text):  # a few characters lowercase to two: positions in low would shift
            text = any_case.sub(_mask, text)
            low = text.lower()
            continue
        out: list[str] = []
        last = 0
        for match in lower.finditer(low):
            out += (text[last:match.end("k")], REDACTED)
            last = match.end()
        if out:
            out.append(text[last:])
            text = "".join(out)
            low = text.lower()
    return text


def _scan_window(text: str, limit: int) -> tuple[str, int]:
    """The part of ``text`` that is scanned (cut on whitespace near ``limit``) and how many characters were left."""
    if len(text) <= limit:
        return text, 0
    edge = limit - min(_EDGE, limit // 8)
    cut = max(text.rfind(" ", edge, limit), text.rfind("\n", edge, limit))
    cut = cut if cut > 0 else limit
    return text[:cut], len(text) - cut


def redact(text: str, limit: int = MAX_SCAN_CHARS) -> str:
    """Mask API keys, private keys, credentials and auth values in ``text``, scanning at most ``limit``
    characters (beyond that the text is dropped and a note says how much)."""
    text, dropped = _scan_window(text, max(limit, 1))
    for marker, begins, ends in _KEY_BLOCKS:
        if marker in text:
            text = _mask_key_blocks(text, begins, ends)
    for position in _families_in(text, _TOKEN_MARKERS):
        text = _TOKEN_LIST[position][1].sub(_mask, text)
    text = _mask_in_context(text)
    return f"{text}…[truncated {dropped} chars]" if dropped else text


__all__ = ["FAMILIES", "MAX_SCAN_CHARS", "PATTERNS", "REDACTED", "redact"]
