"""The LLM's extraction checked against the rules extractor's, which is nearly always
right when it says anything (precision 0.99 on our labelled set, 1.00 on messages written
apart from its patterns) and silent otherwise.

Small models confuse subjects and relations in ways the patterns do not ("Bruce Wayne is
Batman" -> USER is Batman; "I joined Tyrell as a designer" -> works_as Tyrell) and miss
plain ones ("My son Leo ..." -> no son relation). So a relation the rules found is kept,
and an LLM relation about the same object gives way to it. The LLM keeps everything the
rules have nothing to say about. No extra model call.
"""

from __future__ import annotations

from hybridmem.providers.extract.base import ExtractedRelation, Extraction
from hybridmem.text import entity_key, stems


def with_rules(llm: Extraction, rules: Extraction) -> Extraction:
    """`llm` with the rules' relations added and the LLM relations they contradict removed."""
    if not rules.relations:
        return llm
    facts = list(llm.facts)
    trusted: list[ExtractedRelation] = []
    for rel in rules.relations:
        sentence = rules.facts[rel.fact_index] if rel.fact_index is not None else ""
        trusted.append(_at(rel, _closest(facts, sentence)))
    objects = {entity_key(r.target) for r in trusted}
    kept = [r for r in llm.relations if entity_key(r.target) not in objects]
    have = {_key(r) for r in kept}
    merged = kept + [r for r in trusted if _key(r) not in have]
    dropped = llm.dropped + len(llm.relations) - len(kept)
    return Extraction(facts=facts, relations=merged, dropped=dropped)


def _closest(facts: list[str], sentence: str) -> int:
    """The index of the fact sharing most words with `sentence` (appended when none does)."""
    words = set(stems(sentence))
    best, index = 0, -1
    for i, fact in enumerate(facts):
        shared = len(words & set(stems(fact)))
        if shared > best:
            best, index = shared, i
    if index < 0:
        facts.append(sentence)
        index = len(facts) - 1
    return index


def _at(rel: ExtractedRelation, index: int) -> ExtractedRelation:
    return ExtractedRelation(rel.source, rel.relation, rel.target, rel.source_type,
                             rel.target_type, index, rel.negated)


def _key(rel: ExtractedRelation) -> tuple:
    return rel.source, rel.relation, entity_key(rel.target), rel.negated
