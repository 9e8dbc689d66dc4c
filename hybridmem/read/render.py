"""Relations as natural-language sentences: what search shows and BM25 scores."""

from __future__ import annotations

from hybridmem.vocabulary import KINSHIP

_TEMPLATES = {
    "name": "{s}'s name is {t}",
    "age": "{s} is {t} years old",
    "lives_in": "{s} lives in {t}",
    "lives_with": "{s} lives with {t}",
    "works_at": "{s} works at {t}",
    "works_as": "{s} works as {t}",
    "is_from": "{s} is from {t}",
    "born_in": "{s} was born in {t}",
    "married_to": "{s} is married to {t}",
    "is": "{s} is {t}",
}
_KIN = {k.replace(" ", "_") for k in KINSHIP}


def render(source: str, relation: str, target: str) -> str:
    """ "Alice", "name", "Alice" -> "Alice's name is Alice"; "John", "has_dog", "Tommy" ->
    "John has a dog named Tommy"; "Alice", "friend", "Peter" -> "Peter is Alice's friend"."""
    if relation in _TEMPLATES:
        return _TEMPLATES[relation].format(s=source, t=target)
    if relation in _KIN:
        return f"{target} is {source}'s {relation.replace('_', ' ')}"
    if relation.startswith("has_") and len(relation) > 4:
        thing = relation[4:].replace("_", " ")
        article = "an" if thing[0] in "aeiou" else "a"
        return f"{source} has {article} {thing} named {target}"
    return f"{source} {relation.replace('_', ' ')} {target}"
