"""Time: `add(timestamp=...)` dates a memory as said; relative dates in it are resolved
against that moment into words search matches; "when" questions ask for dated memories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hybridmem import Memory
from hybridmem.dates import DATE_MARKER, date_words, parse_timestamp
from hybridmem.errors import InvalidInputError

SAID = "2023-05-08T13:56:00.000000+00:00"  # a Monday


def _memory(tmp_path) -> Memory:
    return Memory.from_config({"data_dir": str(tmp_path), "embedder": {"provider": "hash"}})


@pytest.mark.parametrize("value", [
    "2023-05-08T13:56:00Z", "2023-05-08T15:56:00+02:00", "2023-05-08 13:56:00",
    datetime(2023, 5, 8, 13, 56), datetime(2023, 5, 8, 15, 56, tzinfo=timezone(timedelta(hours=2))),
    1683554160, 1683554160.0,
])
def test_a_timestamp_is_taken_in_each_accepted_form(value):
    assert parse_timestamp(value) == SAID


@pytest.mark.parametrize("value", ["8 May 2023", "yesterday", "", True, [2023], 1e20,
                                   # past year 9999 once in UTC; a 3-digit year
                                   "9999-12-31T23:59:59-01:00", "0999-05-01"])
def test_a_timestamp_of_another_kind_is_refused_clearly(value):
    with pytest.raises(InvalidInputError, match="timestamp"):
        parse_timestamp(value)


def test_a_date_past_the_calendar_is_not_indexed_and_raises_nothing():
    assert date_words("see you tomorrow, or next week", "9998-12-31T12:00:00.000000+00:00")[:3] \
        == ["1", "january", "9999"]
    assert date_words("back in 999 days", "9998-12-31T12:00:00.000000+00:00") == [DATE_MARKER]


@pytest.mark.parametrize(("text", "words"), [
    ("I went to a support group yesterday", ["7", "may", "2023"]),
    ("the day before yesterday it rained", ["6", "may", "2023"]),
    ("we went camping last weekend", ["6", "may", "2023"]),  # the Saturday before
    ("I got it last Friday", ["5", "may", "2023"]),
    ("3 days ago it broke", ["5", "may", "2023"]),
    ("two weeks ago I started", ["24", "april", "2023"]),
    ("see you next month", ["june", "2023"]),
    ("last month was hard", ["april", "2023"]),
    ("we moved there two years ago", ["2021"]),
    ("last year I ran a marathon", ["2022"]),
    ("I'll be there tomorrow", ["9", "may", "2023"]),
])
def test_relative_dates_resolve_against_when_they_were_said(text, words):
    assert date_words(text, SAID) == [*words, DATE_MARKER]


def test_a_text_without_a_date_gets_no_words():
    assert date_words("I like green tea", SAID) == []
    # dated, with nothing to resolve
    assert date_words("In May 2022 I started", SAID) == [DATE_MARKER]
    assert date_words("yesterday", None) == [DATE_MARKER]


def test_an_added_memory_keeps_its_timestamp_as_created_at(tmp_path):
    with _memory(tmp_path) as memory:
        [added] = memory.add("I adopted a cat", user_id="u", infer=False,
                             timestamp="2023-05-08T13:56:00Z")["results"]
        assert memory.get(added["id"])["created_at"] == SAID
        [hit] = memory.search("cat", user_id="u")["results"]
        assert hit["provenance"]["created_at"] == SAID
        [now] = memory.add("I adopted a dog", user_id="u", infer=False)["results"]
        created = datetime.fromisoformat(memory.get(now["id"])["created_at"])
        assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_bad_timestamp_stores_nothing(tmp_path):
    with _memory(tmp_path) as memory:
        with pytest.raises(InvalidInputError, match="timestamp"):
            memory.add("I adopted a cat", user_id="u", infer=False, timestamp="last tuesday")
        assert memory.get_all(user_id="u")["results"] == []


def test_yesterday_is_found_by_the_date_it_names(tmp_path):
    with _memory(tmp_path) as memory:
        memory.add("I went to a support group yesterday", user_id="u", infer=False,
                   timestamp=SAID)
        memory.add("I went to a concert yesterday", user_id="u", infer=False,
                   timestamp="2023-06-20T10:00:00Z")
        found = memory.search("what happened on 7 May 2023", user_id="u", limit=1,
                              signals=["bm25"])["results"]
        assert [h["memory"] for h in found] == ["I went to a support group yesterday"]
        # the date words are the index's, never the memory's text
        assert memory.get(found[0]["id"])["memory"] == "I went to a support group yesterday"


def test_a_when_question_asks_for_a_memory_that_says_when(tmp_path):
    with _memory(tmp_path) as memory:
        for text in ["Ana: the beach house is lovely", "Ana: we drove to the beach last week",
                     "Ben: the beach was crowded"]:
            memory.add(text, user_id="u", infer=False, timestamp=SAID)
        when = memory.search("When did Ana go to the beach?", user_id="u", limit=1,
                             signals=["bm25"])["results"]
        assert when[0]["memory"] == "Ana: we drove to the beach last week"
        what = memory.search("What did Ana say about the beach?", user_id="u", limit=3,
                             signals=["bm25"])["results"]
        scores = {hit["memory"]: hit["score"] for hit in what}
        # no lift for a question that asks no "when" (a tie with another is fine: ties go
        # by id, a uuid, so which of them comes first is chance)
        dated = scores.pop("Ana: we drove to the beach last week")
        assert dated <= max(scores.values())
