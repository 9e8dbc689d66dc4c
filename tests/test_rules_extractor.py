"""The offline extractor, on sentences written apart from its patterns."""

from __future__ import annotations

import pytest

from hybridmem.providers.extract import SELF, Message, RulesExtractor


def triples(text: str) -> set[tuple[str, str, str, bool]]:
    out = RulesExtractor().extract([Message("user", text)])
    return {(r.source, r.relation, r.target, r.negated) for r in out.relations}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My name is Priya.", {(SELF, "name", "Priya", False)}),
        ("Everyone calls me Sam", {(SELF, "name", "Sam", False)}),
        ("I really love sourdough baking", {(SELF, "loves", "sourdough baking", False)}),
        ("I can't stand horror movies.", {(SELF, "hates", "horror movies", False)}),
        ("I do not like olives", {(SELF, "dislikes", "olives", False)}),
        ("I live in Lisbon", {(SELF, "lives_in", "Lisbon", False)}),
        ("I'm living in New York", {(SELF, "lives_in", "New York", False)}),
        ("I work for Acme Corp", {(SELF, "works_at", "Acme Corp", False)}),
        ("I'm originally from Kenya", {(SELF, "is_from", "Kenya", False)}),
        ("My sister Maria lives in Madrid",
         {(SELF, "sister", "Maria", False), ("Maria", "lives_in", "Madrid", False)}),
        ("Tom is my brother", {(SELF, "brother", "Tom", False)}),
        ("My cat is called Miso", {(SELF, "has_cat", "Miso", False)}),
        ("I have a parrot named Kiwi", {(SELF, "has_parrot", "Kiwi", False)}),
        ("Ana and Luis both love salsa dancing",
         {("Ana", "loves", "salsa dancing", False), ("Luis", "loves", "salsa dancing", False)}),
        ("Clark Kent is Superman", {("Clark Kent", "is", "Superman", False)}),
        ("Rita works at the Louvre", {("Rita", "works_at", "Louvre", False)}),
        ("I'm 41 years old", {(SELF, "age", "41", False)}),
    ],
)
def test_statements_it_understands(text, expected):
    assert triples(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I used to work at Google",
        "I might move to Toronto next year",
        "I would love a new bike",
        "I'd like to visit Japan",
        "If I lived in Paris I would walk more",
        "I think I like jazz",
        "My brother never liked football",
        "I worked at Oracle for ten years",
        "Do you like sushi?",
        "I want to learn the piano",
        "I love it",
        "She likes cats",
    ],
)
def test_statements_it_does_not_model_yield_nothing(text):
    assert triples(text) == set()


def test_no_longer_is_a_retraction_never_an_assertion():
    assert triples("I no longer work at IBM") == {(SELF, "works_at", "IBM", True)}
    assert triples("I don't live in Oslo anymore") == {(SELF, "lives_in", "Oslo", True)}


def test_facts_are_user_statements_only():
    out = RulesExtractor().extract([
        Message("user", "Hi! I enjoy chess. Where is the station?"),
        Message("assistant", "You mentioned you enjoy chess."),
    ])
    assert out.facts == ["I enjoy chess."]
    assert all(r.fact_index == 0 for r in out.relations)
