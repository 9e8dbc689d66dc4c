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
        # what follows a liked thing is not part of it; lists are items
        ("I adore sailing with my uncle Bram",
         {(SELF, "loves", "sailing", False), (SELF, "uncle", "Bram", False)}),
        ("I prefer trains over planes", {(SELF, "prefers", "trains", False)}),
        ("I enjoy knitting in the evening", {(SELF, "enjoys", "knitting", False)}),
        ("I like both jazz and blues",
         {(SELF, "likes", "jazz", False), (SELF, "likes", "blues", False)}),
        ("I like living in Lund", {(SELF, "likes", "living in Lund", False)}),
        # changes of state, told as events: the new state
        ("I moved to Quito in May", {(SELF, "lives_in", "Quito", False)}),
        ("We relocated to Perth last year", {(SELF, "lives_in", "Perth", False)}),
        ("I joined Umbra as a tester", {(SELF, "works_at", "Umbra", False),
                                        (SELF, "works_as", "tester", False)}),
        ("I adopted a puppy named Olive", {(SELF, "has_dog", "Olive", False)}),
        ("I'm now dating Noor", {(SELF, "partner", "Noor", False)}),
        ("My friend Ode moved to Accra",
         {(SELF, "friend", "Ode", False), ("Ode", "lives_in", "Accra", False)}),
        ("Ravi works as a nurse at Mercy", {("Ravi", "works_as", "nurse", False),
                                            ("Ravi", "works_at", "Mercy", False)}),
        ("I broke up with Lars", {(SELF, "partner", "Lars", True)}),
        ("I quit my job at Vance", {(SELF, "works_at", "Vance", True)}),
        ("My favourite sport is rugby now", {(SELF, "favorite_sport", "rugby", False)}),
        ("I moved out of Leeds", {(SELF, "lives_in", "Leeds", True)}),
        # changes of state that end one relation and start another
        ("Oskar gave up the cello and took up the drums.",
         {("Oskar", "plays", "cello", True), ("Oskar", "plays", "drums", False)}),
        ("Piet switched from the trumpet to the trombone.",
         {("Piet", "plays", "trumpet", True), ("Piet", "plays", "trombone", False)}),
        ("Ravi stopped skiing after his knee surgery.", {("Ravi", "likes", "skiing", True)}),
        ("Tariq stopped playing chess.", {("Tariq", "plays", "chess", True)}),
        ("I quit teaching and became a carpenter.",
         {(SELF, "likes", "teaching", True), (SELF, "works_as", "carpenter", False)}),
        ("Priti became a product manager.", {("Priti", "works_as", "product manager", False)}),
        ("I left Nordbank and joined Solvia.", {(SELF, "works_at", "Solvia", False)}),
        ("Bram left Philips and now works at ASML.", {("Bram", "works_at", "ASML", False)}),
        ("Leo switched to Oakwood Academy.", {("Leo", "studies_at", "Oakwood Academy", False)}),
        ("Max dropped out of MIT.", {("Max", "studies_at", "MIT", True)}),
        ("My sister Nell quit the flute.",
         {(SELF, "sister", "Nell", False), ("Nell", "plays", "flute", True)}),
        ("I don't have any pets anymore.", {(SELF, "has_pet", "*", True)}),
        ("I no longer have a cat.", {(SELF, "has_cat", "*", True)}),
        ("Sadly, Kiwi died last week.", {(SELF, "has_pet", "Kiwi", True)}),
        ("Elena and I broke up.", {(SELF, "partner", "Elena", True)}),
        ("I'm Greta and I work as a nurse.",
         {(SELF, "name", "Greta", False), (SELF, "works_as", "nurse", False)}),
        ("My partner Jonas and I live in Utrecht.",
         {(SELF, "partner", "Jonas", False), (SELF, "lives_in", "Utrecht", False)}),
        ("My brother Tariq plays chess and lives in Cairo.",
         {(SELF, "brother", "Tariq", False), ("Tariq", "plays", "chess", False),
          ("Tariq", "lives_in", "Cairo", False)}),
        ("My friend Ben lives in Paris too.",
         {(SELF, "friend", "Ben", False), ("Ben", "lives_in", "Paris", False)}),
    ],
)
def test_statements_it_understands(text, expected):
    assert triples(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I used to work at Google",
        "I might move to Toronto next year",
        "I may move to Toronto in May",
        "I want to join Hooli",
        "I never moved to Madrid",
        "I would love a new bike",
        "I'd like to visit Japan",
        "If I lived in Paris I would walk more",
        "I think I like jazz",
        "My brother never liked football",
        "I worked at Oracle for ten years",
        "Do you like sushi?",
        "Does my brother still play the cello?",
        "I left Lisbon.",
        "Kiwi gave up on me",
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


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi, I'm Alex.", {(SELF, "name", "Alex", False)}),
    ("I am Alex", {(SELF, "name", "Alex", False)}),
    ("Hey there, I'm Sam Lee!", {(SELF, "name", "Sam Lee", False)}),
    ("Hello I am Grace Okafor.", {(SELF, "name", "Grace Okafor", False)}),
    ("I'm Tobias, nice to meet you!", {(SELF, "name", "Tobias", False)}),
    ("I'm Nora, I live in Bergen", {(SELF, "name", "Nora", False),
                                    (SELF, "lives_in", "Bergen", False)}),
    ("My wife is Maria", {(SELF, "wife", "Maria", False)}),
    ("My best friend is Jo Kim.", {(SELF, "best_friend", "Jo Kim", False)}),
])
def test_self_introductions_and_named_relatives(text, expected):
    assert triples(text) == expected


@pytest.mark.parametrize("text", [
    "I am tired", "I am a teacher", "I'm from Porto", "I'm 30", "I'm Italian",
    "I am Catholic", "I'm OK", "I'm INFJ", "I'm Alex's mom", "I'm The Boss",
    "My boss is Italian", "My sister is Maria's friend", "My wife is a doctor",
    "Hi, I'm not Alex", "I'm Alex, I think",
])
def test_what_follows_i_am_is_a_name_only_when_it_is_one(text):
    assert not {t for t in triples(text) if t[1] in ("name", "wife", "boss", "sister")}


def test_an_origin_stays_an_origin():
    assert triples("I'm from Porto") == {(SELF, "is_from", "Porto", False)}


def test_precision_on_the_labelled_sets_stays_at_least_095():
    from benchmarks.extraction_gold import MESSAGES, RULES_HELDOUT
    from benchmarks.extraction_quality import score_triples

    for messages in (MESSAGES, RULES_HELDOUT):
        counts, _, _ = score_triples(RulesExtractor(), "rules", messages)
        tp, fp, _ = counts["all"]
        assert tp / (tp + fp) >= 0.95
