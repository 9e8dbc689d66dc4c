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
