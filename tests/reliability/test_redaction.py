"""Redaction is bounded and broad: linear work per value whatever the text, and the secret families that
well-kept scanners look for (gitleaks' rule set, detect-secrets' plugins), checked on their published examples."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from otel_agent_trace.pipeline.content import REDACTED, redact
from otel_agent_trace.pipeline.redaction import FAMILIES, MAX_SCAN_CHARS, PATTERNS
from tests.reliability.support import hang_guard, scaled

if sys.version_info >= (3, 11):
    from re import _constants as sre_constants
    from re import _parser as sre_parse
else:  # pragma: no cover - Python 3.10
    import sre_constants
    import sre_parse

FUZZ = hypothesis_settings(max_examples=scaled(25, 400), deadline=None, database=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: A generous bound on one call: linear redaction of the biggest example takes well under a second; the
#: quadratic kind it replaced took 10-50 s on the same inputs.
HANG = 60
#: The longest any one repeat in a pattern may run: it bounds the work tried from one start position.
LONGEST_REPEAT = 8_192

# --- structure: every pattern does bounded work per start position -----------------------------------------


_REPEAT_OPS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None))


def _repeats(parsed: Any, depth: int = 0) -> list[tuple[int, int]]:
    """(max repeat, nesting depth) of every repeat in a parsed pattern."""
    found: list[tuple[int, int]] = []
    for op, arg in parsed:
        if op in _REPEAT_OPS:
            _, high, item = arg
            found.append((high, depth))
            found += _repeats(item, depth + (high > 1))  # an optional group (at most once) nests nothing
        elif op == sre_constants.SUBPATTERN:
            found += _repeats(arg[-1], depth)
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                found += _repeats(branch, depth)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            found += _repeats(arg[1], depth)
    return found


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.pattern[:40])
def test_every_repeat_in_every_pattern_is_bounded_and_flat(pattern):
    """No pattern has an open-ended or nested repeat, so the work tried from one position is bounded."""
    repeats = _repeats(sre_parse.parse(pattern.pattern, pattern.flags))
    assert [high for high, _ in repeats if high > LONGEST_REPEAT] == []
    assert [depth for _, depth in repeats if depth > 0] == []


def test_a_huge_value_is_cut_at_the_scan_cap_not_passed_through():
    """Text past ``MAX_SCAN_CHARS`` is dropped with a note, never returned unscanned."""
    secret = "ghp_" + "Z9" * 20
    text = "word " * (MAX_SCAN_CHARS // 5) + f"late token {secret} " + "tail " * 10_000
    out = redact(text)
    assert secret not in out and "tail" not in out
    assert len(out) <= MAX_SCAN_CHARS + 40 and out.endswith("chars]")


def test_a_token_that_straddles_the_scan_cap_leaves_no_half_behind():
    """The cut falls on whitespace before the cap: no prefix of a token cut in two reaches the output."""
    secret = "ghp_" + "Q7" * 40
    pad = "x" * (MAX_SCAN_CHARS - len(secret) // 2 - 1)
    out = redact(f"{pad} {secret} end")
    assert "Q7Q7" not in out


# --- hostile shapes: fuzzed text made of the pieces the patterns look for ----------------------------------

FRAGMENTS = ["-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN PGP PRIVATE KEY BLOCK-----", "-----END ", "PRIVATE KEY",
             "PuTTY-User-Key-File-2", "eyJ", "eyJhbGciOi.", "sk-", "sk-ant-", "ghp_", "github_pat_", "glpat-", "xoxb-",
             "AKIA", "ASIA", "AIza", "SG.", "SK", "dapi", "npm_", "hf_", "password", "token", "secret", "api_key",
             "Authorization", "Bearer ", "bearer", "://", "https://u:", "@", ":", "=", " ", "\t", "\n", ",", "'", '"',
             "-u ", "--user ", "a", "Z", "0", "9", "_", "-", ".", "/", "+", "é", "İ"]
shapes = st.tuples(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12),
                   st.integers(min_value=1, max_value=60_000))


@FUZZ
@given(shape=shapes)
def test_hostile_shapes_finish_and_stay_bounded(shape):
    """Any repetition of pattern pieces, up to twice the scan cap, is redacted without a hang and the result
    is no longer than the cap plus a note."""
    pieces, times = shape
    unit = "".join(pieces)
    text = unit * max(1, min(times, 2 * MAX_SCAN_CHARS // len(unit)))
    with hang_guard(HANG):
        out = redact(text)
    assert len(out) <= min(len(text), MAX_SCAN_CHARS) + len(REDACTED) * (MAX_SCAN_CHARS // 8) + 40


@FUZZ
@given(shape=shapes, where=st.floats(min_value=0, max_value=1))
def test_a_secret_inside_hostile_text_is_still_masked(shape, where):
    """A real key planted anywhere in the scanned part of hostile text is masked."""
    pieces, times = shape
    secret = "ghp_R3alT0kenRealT0kenRealT0kenRealT0ken"
    filler = "".join(pieces) * min(times, 20_000 // len("".join(pieces)) + 1)
    at = int(len(filler) * where)
    with hang_guard(HANG):
        out = redact(f"{filler[:at]} {secret} {filler[at:]}")
    assert "R3alT0ken" not in out


# --- families, on published examples -------------------------------------------------------------------------

# Each: (family, text, the secret part that must go). Sources name the scanner's file the example comes from.
EXAMPLES = [
    # detect-secrets tests/plugins/basic_auth_test.py
    ("url_credentials", "https://username:password@yelp.com", "password@"),
    ("url_credentials", "DATABASE_URL=postgres://app:s3cr3t-pw@db.internal:5432/app", "s3cr3t-pw"),
    ("url_credentials", "git clone https://oauth2:glcbt-64_abcdefghijklmnopqrstu@gitlab.example/x.git",
     "abcdefghijklmnopqrstu"),
    # detect-secrets tests/plugins/aws_key_test.py (AWS's documented example secret)
    ("aws_key_id", "AKIAZZZZZZZZZZZZZZZZ", "AKIAZZZZZZZZZZZZZZZZ"),
    ("setting", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("setting", 'secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI"),
    # the AWS console's credentials CSV: key id, then the secret, comma separated
    ("aws_key_pair", "Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI"),
    ("aws_key_pair", "User name,Password,Access key ID,Secret access key,Console login link\n"
     "deploy,,AKIALALEMEL33243OLIB,Zx9/Bq7+Lm3Np5Rt8Vw2Yz4Ac6De1Fg0Hj2Kl4Mn,https://1234.signin.aws.amazon.com/console",
     "Zx9/Bq7+Lm3Np5Rt8Vw2"),
    # gitleaks cmd/generate/config/rules/aws.go (true positive)
    ("aws_key_id", "aws_access_key_id: AKIALALEMEL33243OLIB", "AKIALALEMEL33243OLIB"),
    # detect-secrets tests/plugins/private_key_test.py
    ("private_key_block", "-----BEGIN RSA PRIVATE KEY-----\nc3VwZXIgZHVwZXIgc2VjcmV0IHBhc3N3b3JkLCBzdXBlciBkdXBlciBz\n"
     "-----END RSA PRIVATE KEY-----", "c3VwZXIgZHVwZXIg"),
    ("private_key_block", "some text here\n-----BEGIN PRIVATE KEY-----\nc3VwZXIgZHVwZXIgc2VjcmV0IHBhc3N3b3Jk\n"
     "-----END PRIVATE KEY-----", "c3VwZXIgZHVwZXIg"),
    ("putty_key_file", "some text here\nPuTTY-User-Key-File-2: ssh-rsa\nPrivate-Lines: 1\nAAAAgQDsecretLine\n"
     "Private-MAC: 0123abcd", "AAAAgQDsecretLine"),
    # RFC 4880 armor for PGP secret keys; OpenSSH's own header
    ("private_key_block", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGPgpgSecretBody==\n=Ab12\n"
     "-----END PGP PRIVATE KEY BLOCK-----", "lQOYBGPgpgSecretBody"),
    ("private_key_block", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
     "-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXkt"),
    ("private_key_block", "$ cat id_ed25519 | head -2\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA",
     "b3BlbnNzaC1rZXkt"),
    # gitleaks cmd/generate/config/rules/curl.go (true positives)
    ("curl_user", "curl --cacert ca.crt -u elastic:P@ssw0rd$1 https://localhost:9200", "P@ssw0rd$1"),
    ("curl_user", "curl --user roger23@gmail.com:pQ9wTxu4Fg https://www.dropbox.com/cli_link?host_id=abcdefg -v",
     "pQ9wTxu4Fg"),
    ("setting", "curl -H 'Authorization: Basic YnJvd3Nlcjo=' \\", "YnJvd3Nlcjo="),
    ("setting", 'curl -H "Authorization: Bearer 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"',
     "HxsVRClzUoqDGsfVeTJOT3"),
    ("setting", 'curl -H "Authorization: Api-Token 22cb987851bc5659l29114c62e60c79abd0d2c08" --request PUT',
     "22cb987851bc5659"),
    ("setting", 'curl -X GET -H "apikey: c4ed6c21-9dd5-4a05-8e3f-c56d1151cce8"', "c4ed6c21-9dd5"),
    ("setting", 'curl -H "X-Octopus-ApiKey: 3a16750d-d363-41a4-8ebd-035408f7730f"', "3a16750d-d363"),
    ("setting", 'curl -H "Token: 3fea6af1349166ea" -d "content=hello-curl"', "3fea6af1349166ea"),
    # bearer tokens outside an Authorization header (gitleaks curl.go's token, in a log line)
    ("bearer_token", "retrying with bearer cfcabd11c7ed9a41b1a3e063c32d5114 after 401", "cfcabd11c7ed9a41"),
    ("bearer_token", '{"token_type": "Bearer", "value": "x"} then Bearer _FXNljbSRYMWx3TWrd7lgKhLtVZX6iskC8Wcbb4b',
     "FXNljbSRYMWx3TWrd7"),
    # gitleaks cmd/generate/config/rules/github.go shapes (ghp_ + 36, github_pat_ + 82 word characters)
    ("github", "GITHUB_KEY=ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg", "XIxB7KMNdAr3zqWt"),
    ("github_fine_grained", "token github_pat_11ABCDEFG0aBcDeFgHiJkLmN_" + "x1Y2z3" * 10 + "q1 used",
     "11ABCDEFG0aBcDeFg"),
    # gitleaks cmd/generate/config/rules/gitlab.go shape (glpat- + 20)
    ("gitlab", "export GITLAB_TOKEN_VALUE glpat-Zx8wQ2pL9mN4bV7cR1tY", "Zx8wQ2pL9mN4bV7c"),
    ("slack", "posting with xoxb-2222333344445555-AbCdEfGhIjKl", "2222333344445555"),
    ("anthropic", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-yz0123", "AbCdEfGhIjKlMnOp"),
    ("anthropic", "sk-ant-admin01-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOp"),
    ("openai", "OPENAI_API_KEY is sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12", "Ab12Cd34Ef56Gh78"),
    ("google_api_key", "key AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q in url", "SyA1b2C3d4E5f6G7"),
    ("stripe", "charge with sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjt"),
    ("npm", "//registry/:_authToken npm_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78", "Ab12Cd34Ef56Gh78"),
    ("pypi", "password: pypi-AgEIcHlwaS5vcmc" + "Ab1_" * 16, "Ab1_Ab1_Ab1_"),
    ("huggingface", "HF said hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345 is invalid", "AbCdEfGhIjKlMnOpQr"),
    ("sendgrid", "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", "ngeVfQFYQlKU0ufo"),
    ("twilio", "api key SK0123456789abcdef0123456789abcdef", "0123456789abcdef01"),
    ("digitalocean", "dop_v1_" + "ab12" * 16, "ab12ab12ab12ab12"),
    ("shopify", "shpat_0123456789abcdef0123456789abcdef", "0123456789abcdef"),
    ("databricks", "host token dapi0123456789abcdef0123456789abcdef", "0123456789abcdef"),
    ("age", "AGE-SECRET-KEY-1" + "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L" + "QPZRY9X8GF2TVDW0S3JN54KHCE6M",
     "QPZRY9X8GF2TVDW0"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJzdWIiOiIxMjM0"),
    ("slack_webhook", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
     "B00000000/XXXX"),
    ("setting", 'password = "hunter22"', "hunter22"),
    ("setting", "DB_PASSWORD=Zq8x!9pL^w", "Zq8x!9pL^w"),
    ("setting", "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
     "Eby8vdM02xNOcq"),
]


@pytest.mark.parametrize(("family", "text", "secret"), EXAMPLES, ids=[f"{e[0]}-{i}" for i, e in enumerate(EXAMPLES)])
def test_published_examples_are_masked(family, text, secret):
    """Each family's published example loses its secret part (and the family is one ``redact`` names)."""
    assert family in FAMILIES
    out = redact(text)
    assert secret not in out and REDACTED in out


def test_every_family_has_an_example():
    """No family is claimed without a published or documented example that exercises it."""
    assert set(FAMILIES) - {family for family, _, _ in EXAMPLES} == set()


@pytest.mark.parametrize("text", [
    "Read auth/session.ts: 1,200 tokens, no keys here.",
    "max_tokens: 4096 and stop_reason: end_turn",
    "see https://docs.example.com/a/b?x=1 and git@github.com:org/repo.git",
    "Bearer authentication is described in RFC 6750",
    "git push -u origin main && sort -u names.txt",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "def get_token(self) -> str:",
])
def test_ordinary_text_is_left_alone(text):
    """Text that only looks near a secret (URLs, certificates, words like token) comes back unchanged."""
    assert redact(text) == text
