"""Words the extractors and the relation renderer share."""

from __future__ import annotations

#: Words for people in someone's life; as relations they read "X is Y's <word>".
KINSHIP = (
    "friend", "best friend", "boyfriend", "girlfriend", "brother", "sister", "mother",
    "father", "mom", "mum", "dad", "wife", "husband", "son", "daughter", "partner",
    "colleague", "coworker", "boss", "manager", "cousin", "uncle", "aunt", "grandmother",
    "grandfather", "grandma", "grandpa", "niece", "nephew", "roommate", "neighbor",
    "neighbour", "fiance", "fiancee", "mentor", "teacher", "classmate",
)

# Relation names models use for one relation, folded onto one name so conflict rules and
# relation search see one relation ("moved_to Berlin" is "lives_in Berlin" from then on).
RELATION_ALIASES = {
    "moved_to": "lives_in", "relocated_to": "lives_in", "resides_in": "lives_in",
    "lives_at": "lives_in", "living_in": "lives_in", "based_in": "lives_in",
    "works_for": "works_at", "employed_at": "works_at", "employed_by": "works_at",
    "job_at": "works_at", "started_at": "works_at", "started_job_at": "works_at",
    "started_working_at": "works_at", "new_job_at": "works_at", "hired_by": "works_at",
    "is_named": "name", "named": "name", "called": "name", "has_name": "name",
    "name_is": "name", "goes_by": "name", "is_called": "name",
    "is_married_to": "married_to", "spouse": "married_to", "was_born_in": "born_in",
    "comes_from": "is_from", "from": "is_from", "originally_from": "is_from",
    "is_a": "works_as", "job_title": "works_as", "occupation": "works_as",
    "profession": "works_as", "does_not_like": "dislikes", "doesnt_like": "dislikes",
    "do_not_like": "dislikes", "dont_like": "dislikes", "cannot_stand": "hates",
    "cant_stand": "hates", "is_friend_of": "friend", "friends_with": "friend",
    "best_friend_of": "best_friend", "is_sister_of": "sister", "is_brother_of": "brother",
    "is_allergic_to": "allergic_to", "studies_in": "studies_at", "is_dating": "partner",
    "dating": "partner", "boyfriend": "partner", "girlfriend": "partner",
    "like": "likes", "love": "loves", "enjoy": "enjoys", "dislike": "dislikes",
    "hate": "hates", "prefer": "prefers", "live_in": "lives_in", "work_at": "works_at",
}

_OBJECT_TYPES = {
    "lives_in": "place", "is_from": "place", "born_in": "place", "works_at": "organization",
    "studies_at": "organization", "works_as": "concept", "name": "name", "age": "number",
    "married_to": "person", "partner": "person", "is": "person", "lives_with": "person",
}
_PREFERENCES = {"likes", "loves", "enjoys", "prefers", "dislikes", "hates"}


def object_type(relation: str) -> str:
    """The entity type a relation's object has ("lives_in" -> place)."""
    if relation in _OBJECT_TYPES:
        return _OBJECT_TYPES[relation]
    if relation in _PREFERENCES:
        return "activity"
    if relation.replace("_", " ") in KINSHIP or relation == "best_friend":
        return "person"
    if relation.startswith("has_"):
        return "animal"
    return "other"


_PERSON_SUBJECTS = {"name", "lives_in", "works_at", "works_as", "married_to", "partner",
                    "is_from", "born_in", "age", "studies_at"}


def subject_type(relation: str) -> str:
    """The entity type a relation's subject has: a person for a name, a home, a job, a
    relative or a pet ("Kim lives_in Oslo": Kim is a person); else "other"."""
    if relation in _PERSON_SUBJECTS or relation.startswith("has_"):
        return "person"
    if relation.replace("_", " ") in KINSHIP or relation == "best_friend":
        return "person"
    return "other"


#: Instruments: what one plays ("works_as drums", a small model's answer, is "plays drums").
INSTRUMENTS = frozenset("""
    cello violin viola piano guitar bass drums flute clarinet saxophone sax trumpet trombone
    harp ukulele banjo oboe accordion keyboard keyboards harmonica mandolin tuba bassoon
    organ synthesizer double-bass
""".split())  # noqa: SIM905 - a word list reads best as text

#: Relations that name a pastime: an ending told of one ("gave up the cello", "I don't
#: like football anymore") ends whichever of them the subject held with that object.
ACTIVITY_RELATIONS = frozenset({"plays", "likes", "loves", "enjoys", "does", "practices",
                                "prefers", "is_into"})

#: Names one tie is stored under: "I broke up with Tom" ends "boyfriend Tom" as well.
TIE_FAMILIES: dict[str, frozenset[str]] = {
    "partner": frozenset({"partner", "boyfriend", "girlfriend", "fiance", "fiancee"}),
    "married_to": frozenset({"married_to", "wife", "husband", "spouse"}),
}


def ended_together(relation: str) -> frozenset[str]:
    """The relation names a retraction of `relation` ends (itself, its family, and for a
    pet every `has_*` kind when told as `has_pet`)."""
    if relation in ACTIVITY_RELATIONS:
        return ACTIVITY_RELATIONS
    for family in TIE_FAMILIES.values():
        if relation in family:
            return family
    return frozenset({relation})


def is_tie(relation: str) -> bool:
    """Whether a relation is a tie between people or an identity (kinship, a partner,
    `name`, `is`) or a pet's owner (`has_dog`): such an edge is judged only when a new
    statement speaks of that tie ("Biscuit thinks he's the boss", told as `likes
    Biscuit`, once ended `has_dog Biscuit` on the local model)."""
    if relation in ("name", "is", "married_to", "partner", "best_friend") or \
            relation.startswith("has_"):
        return True
    return relation.replace("_", " ") in KINSHIP or any(
        relation in family for family in TIE_FAMILIES.values())
