"""cache_miss: cache_control set but the prefix is not served from cache."""

from __future__ import annotations

from typing import Any

from otel_agent_trace.testing.scenario import read, turn

from .conftest import Detect

K = "cache_miss"


def _t(read_tokens: int, created: int = 0, context: int = 10_000, control: bool = True, **kw: Any) -> dict:
    return turn(read("a.py"), context=context, cache_read=read_tokens, cache_creation=created,
                cache_control=control, **kw)


class TestCacheMiss:
    def test_prefix_written_every_turn_is_reported_once(self, detect: Detect) -> None:
        """cache_read stays 0 while the prefix is written again each turn: one warning at turn 2."""
        found = detect(K, _t(0, 9_800), _t(0, 9_800), _t(0, 9_800), _t(0, 9_800), turn())
        assert [(f.turn, f.severity) for f in found] == [(2, "warning")]
        assert "written to the cache again" in found[0].message and "timestamp" in found[0].message
        assert found[0].evidence["cache_creation_input_tokens"] == 9_800

    def test_first_turn_miss_is_expected(self, detect: Detect) -> None:
        """Turn 1 writes the cache; only later turns can read it."""
        assert detect(K, _t(0, 9_800), _t(9_500), _t(9_600), turn()) == []

    def test_healthy_hits_are_silent(self, detect: Detect) -> None:
        """Steady high hit ratios give no finding."""
        assert detect(K, _t(0, 9_800), *[_t(8_500 + i * 10) for i in range(6)], turn()) == []

    def test_no_cache_control_no_cache_is_silent(self, detect: Detect) -> None:
        """Without cache_control and without any cache usage, zero reads are expected."""
        assert detect(K, *[_t(0, control=False) for _ in range(4)], turn()) == []

    def test_cache_usage_implies_cache_control(self, detect: Detect) -> None:
        """Imported transcripts without the flag: earlier cache writes show caching is on."""
        found = detect(K, _t(0, 9_800, control=False), _t(0, 9_800, control=False), turn())
        assert [f.turn for f in found] == [2]

    def test_short_prefix_is_not_reported(self, detect: Detect) -> None:
        """Contexts below the minimum cacheable length cannot be cached."""
        assert detect(K, _t(0, context=800), _t(0, context=900), turn()) == []

    def test_nothing_written_either_explains_the_minimum_length(self, detect: Detect) -> None:
        """With no cache write at all, the message points at the marker and the minimum length."""
        found = detect(K, _t(0), _t(0), turn())
        assert "minimum cacheable length" in found[0].message

    def test_hit_ratio_collapse_is_reported(self, detect: Detect) -> None:
        """A ratio falling from ~90 % to 20 % is reported once at the fall."""
        found = detect(K, _t(0, 9_800), *[_t(9_000) for _ in range(4)], _t(2_000), _t(2_100), _t(9_000),
                       turn())
        assert [(f.turn, f.evidence["reason"]) for f in found] == [(6, "ratio_collapse")]

    def test_a_new_miss_streak_is_reported_again(self, detect: Detect) -> None:
        """Miss, hits, miss again: two findings."""
        found = detect(K, _t(0, 9_800), _t(0, 9_800), _t(9_000), _t(9_000), _t(0, 9_800), turn())
        assert [f.turn for f in found] == [2, 5]

    def test_expired_ttl_is_info(self, detect: Detect) -> None:
        """A miss after a pause longer than the 5-minute cache TTL is expected: info."""
        found = detect(K, _t(0, 9_800, start_s=0, end_s=5), _t(9_000, start_s=10, end_s=15),
                       _t(0, 9_800, start_s=400, end_s=405), turn())
        assert [(f.turn, f.severity) for f in found] == [(3, "info")]
        assert found[0].evidence["ttl_expired"] is True

    def test_a_pause_within_the_one_hour_lifetime_is_a_real_miss(self, detect: Detect) -> None:
        """Entries written with the one-hour lifetime outlast a 20-minute pause: missing them then is waste
        (a warning), and only a pause of more than an hour is the expected expiry (info)."""
        def written_for_an_hour(start_s: int) -> dict:
            return _t(0, 9_800, cache_creation_1h=9_800, start_s=start_s, end_s=start_s + 5)

        found = detect(K, written_for_an_hour(0), _t(9_000, start_s=10, end_s=15), written_for_an_hour(1_215),
                       _t(9_000, start_s=1_230, end_s=1_235), written_for_an_hour(5_000), turn())
        assert [(f.turn, f.severity, f.evidence["ttl_expired"]) for f in found] == [
            (3, "warning", False), (5, "info", True)]
        assert "more than an hour passed" in found[1].message

    def test_min_turn_is_a_setting(self, detect: Detect) -> None:
        """cache_min_turn=3 tolerates a miss at turn 2."""
        assert [f.turn for f in detect(K, _t(0, 9_800), _t(0, 9_800), _t(0, 9_800), turn(),
                                       cache_min_turn=3)] == [3]


def test_without_a_recorded_cache_control_the_message_says_caching_is_in_use(detect: Detect) -> None:
    """Imported sessions do not record cache_control: the message cites the earlier cache use instead."""
    found = detect(K, _t(0, 9_800, control=False), _t(0, 9_800, control=False), turn())
    assert "caching is in use (cache reads/writes seen earlier)" in found[0].message
    assert "cache_control is set" not in found[0].message


def test_a_big_new_read_lowers_the_ratio_without_a_miss(detect: Detect) -> None:
    """Hit ratio 48 % because 20k new tokens arrived, but the whole cached prefix was read: no miss."""
    found = detect(K, _t(0, 18_000, context=18_500), _t(18_000, 400, context=18_600),
                   _t(18_400, 19_800, context=38_400), turn())
    assert found == []


def test_only_the_system_prompt_cached_is_not_a_miss(detect: Detect) -> None:
    """A constant cache read of the marked prefix, while the rest grows uncached, is the prefix served."""
    found = detect(K, _t(0, 40_000, context=45_000), _t(40_000, context=50_000), _t(40_000, context=60_000),
                   turn())
    assert found == []


def test_a_model_change_starts_a_new_prefix(detect: Detect) -> None:
    """Caches are per model: the first call on another model cannot read the old prefix."""
    found = detect(K, _t(0, 9_800, model="claude-sonnet-4-5"), _t(9_500, model="claude-sonnet-4-5"),
                   _t(0, 9_800, model="claude-haiku-4-5"), turn())
    assert found == []


def test_a_small_unread_segment_is_not_a_broken_prefix(detect: Detect) -> None:
    """1.2k tokens written and not read next time is below what every model caches: no miss."""
    found = detect(K, _t(3_000, 0, context=4_200), _t(3_000, 1_200, context=4_500), _t(3_000, 1_500, context=4_700),
                   turn())
    assert found == []


def test_an_unmarked_compaction_starts_a_new_prefix(detect: Detect) -> None:
    """The context falling from 90k to 20k is a rewritten history: its cache miss is expected."""
    found = detect(K, _t(0, 89_000, context=90_000), _t(89_000, 500, context=90_500),
                   _t(15_000, 5_000, context=20_000), turn())
    assert found == []



def test_a_history_cut_part_way_reads_only_what_is_left(detect: Detect) -> None:
    """A microcompaction or a plan implemented in a cleared context cuts the context to 55 %: reading only
    the part before the cut is expected, not a broken prefix."""
    found = detect(K, _t(0, 77_000, context=78_000), _t(77_000, 1_000, context=78_500),
                   _t(35_000, 8_000, context=43_000), _t(43_000, 500, context=43_600), turn())
    assert found == []


def test_a_history_cut_part_way_that_reads_nothing_is_still_a_miss(detect: Detect) -> None:
    """The system prompt and tools in front of the cut did not change: a cache read of zero is a miss."""
    found = detect(K, _t(0, 77_000, context=78_000), _t(77_000, 1_000, context=78_500),
                   _t(0, 60_000, context=60_100), turn())
    assert [f.turn for f in found] == [3]
