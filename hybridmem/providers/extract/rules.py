"""The offline extractor: explicit English patterns, precision first.

Every user sentence that states something becomes a fact (the vector path keeps it). A
relation is produced only when a clause matches one of the patterns below *exactly*; a
clause with negation, tense or modality it does not model ("I no longer work at IBM",
"I used to live in Rome", "I might move to Oslo") yields no relation rather than a wrong
one. "I no longer X" / "I don't X anymore" for the retractable relations yields a
*negated* relation, which only ends the matching active edge.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hybridmem.providers.extract.base import ANY, SELF, ExtractedRelation, Extraction, Message
from hybridmem.text import STOPWORDS, as_said, clean_text, said_text
from hybridmem.vocabulary import INSTRUMENTS, KINSHIP, object_type

# A proper name: capitalised words ("Mary Jane", "Spider-Man", "O'Brien", "McDonald's").
# Case-sensitive even inside the case-insensitive patterns: that is what marks a name.
_NAME_WORD = r"[A-Z][\w'\-]*"
NAME = rf"(?-i:{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}})"
# An object noun phrase: a few plain words.
OBJ = r"(?:[\w'\-]+(?:\s+[\w'\-]+){0,4})"
# The same, as short as what follows it allows ("a chef at Vandelay": "chef").
SHORT_OBJ = r"(?:[\w'\-]+(?:\s+[\w'\-]+){0,4}?)"
_AT_NAME = rf"(?:\s+(?:at|for|with)\s+(?:the\s+)?({NAME}))?"

_KIN = "|".join(sorted((re.escape(k) for k in KINSHIP), key=len, reverse=True))
_KIN_CANON = {
    "best friend": "best_friend", "mom": "mother", "mum": "mother", "dad": "father",
    "grandma": "grandmother", "grandpa": "grandfather", "coworker": "colleague",
    "neighbour": "neighbor", "fiancee": "fiance",
}

ANIMALS = (
    "dog", "cat", "puppy", "kitten", "horse", "rabbit", "bunny", "hamster", "parrot", "bird",
    "fish", "turtle", "snake", "lizard", "guinea pig", "ferret", "pony",
)
_ANIMAL = "|".join(sorted((re.escape(a) for a in ANIMALS), key=len, reverse=True))

_POSITIVE = {"like": "likes", "love": "loves", "enjoy": "enjoys", "adore": "loves",
             "prefer": "prefers", "likes": "likes", "loves": "loves", "enjoys": "enjoys",
             "adores": "loves", "prefers": "prefers"}
_NEGATIVE = {"dislike": "dislikes", "hate": "hates", "detest": "hates", "loathe": "hates",
             "can't stand": "hates", "cannot stand": "hates", "don't like": "dislikes",
             "do not like": "dislikes", "don't enjoy": "dislikes", "do not enjoy": "dislikes",
             "dislikes": "dislikes", "hates": "hates", "detests": "hates",
             "doesn't like": "dislikes", "does not like": "dislikes"}
_FIRST_PREF = "|".join(sorted((re.escape(v) for v in [*_POSITIVE, *_NEGATIVE]
                               if not v.endswith("s") or v.endswith("ss")), key=len, reverse=True))
_THIRD_PREF = "|".join(sorted((re.escape(v) for v in [*_POSITIVE, *_NEGATIVE]
                               if v.endswith("s") or "doesn't" in v or "does not" in v),
                              key=len, reverse=True))
_ADVERB = r"(?:(?:really|also|absolutely|truly|totally|just|still|do|does)\s+)?"
_JUST = r"(?:(?:just|recently|finally|now)\s+)?"

# Words that make a clause something the patterns do not model ("may" only in lower case:
# "May" is a month).
_HEDGES = re.compile(
    r"\b(?:not|never|no|nobody|nothing|neither|nor|without|used to|anymore|any more|"
    r"no longer|stopped|quit|would|could|might|(?-i:may)|maybe|perhaps|probably|wish|hope|"
    r"want|wants|wanted|going to|gonna|will|shall|should|if|unless|whether|plan|plans|"
    r"planning|think|thinks|thought|guess|suppose|pretend|sometimes|rarely|seldom|"
    r"hardly|barely|once|was|were|had|did|been|liked|loved|enjoyed|hated|lived|worked)\b"
    r"|n't|'d\b",
    re.IGNORECASE,
)
_PRONOUN_OBJECTS = {"it", "that", "this", "them", "him", "her", "you", "us", "me", "those",
                    "these", "everything", "nothing", "something", "anything", "everyone",
                    "someone", "anyone", "one", "lot", "a lot", "lots"}
_GREETINGS = re.compile(
    r"^(?:hi|hello|hey|thanks|thank you|ok|okay|bye|goodbye|yes|no|sure|cool|great|lol)\b[\s!.]*$",
    re.IGNORECASE,
)
# A greeting that opens a clause ("Hi, I'm Alex", "Hey there I'm Sam"): not part of it.
_GREETING_OPENER = re.compile(
    r"^(?:hi|hello|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening))"
    r"(?:\s+(?:there|all|everyone|everybody|folks))?(?:\s*[,!.:\-]+\s*|\s+)(?=\S)",
    re.IGNORECASE,
)
# Capitalised words that follow "I am" or "my wife is" without being a name: peoples,
# faiths, languages, and a few words said capitalised for emphasis.
_NOT_NAMES = frozenset("""
    american british english scottish welsh irish canadian australian mexican brazilian
    argentinian argentine chilean colombian peruvian venezuelan cuban jamaican spanish
    portuguese french italian german dutch belgian swiss austrian swedish norwegian danish
    finnish icelandic polish czech slovak hungarian romanian bulgarian serbian croatian
    greek turkish russian ukrainian israeli arab arabic lebanese iranian persian egyptian
    moroccan nigerian kenyan ghanaian ethiopian african asian european latino latina
    hispanic chinese japanese korean vietnamese thai filipino indonesian malaysian indian
    pakistani bangladeshi nepali catholic christian protestant orthodox muslim jewish hindu
    buddhist sikh mormon atheist agnostic vegan vegetarian ok okay fine good great sorry
    single married divorced engaged back home here
""".split())  # noqa: SIM905 - a word list reads best as text
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")
_CLAUSE_SPLIT = re.compile(r",?\s+(?:and|but)\s+(?=(?:I|my|My)\b)|;\s*")
_RETRACTABLE = {"work at": "works_at", "work for": "works_at", "live in": "lives_in",
                "like": "likes", "love": "loves", "enjoy": "enjoys", "live with": "lives_with"}


class RulesExtractor:
    """Pattern-based extraction of first- and third-person statements (English)."""

    name = "rules"

    def extract(self, messages: list[Message], *, user_name: str | None = None) -> Extraction:
        """Facts are the user's statements; relations come only from exact pattern matches."""
        out = Extraction()
        for message in messages:
            if message.role not in ("user", "human"):
                continue
            for said in _sentences(message.content):
                # Patterns read the folded sentence; the fact and the names are kept as said.
                sentence = clean_text(said)
                if not _is_statement(sentence):
                    continue
                index = len(out.facts)
                out.facts.append(said)
                # "Elena and I broke up" is one clause, not "Elena" and "I broke up".
                together = re.match(rf"(?:my\s+(?:{_KIN})\s+)?({NAME})\s+and\s+I\b", sentence,
                                    re.IGNORECASE)
                together = together if together and _is_name(together.group(1)) and \
                    not together.group(1).casefold().startswith(("i'", "i’")) else None
                for clause in [sentence] if together else _CLAUSE_SPLIT.split(sentence):
                    for rel in _clause_relations(clause.strip(" .!;,")):
                        out.relations.append(_with_fact(rel, index, said))
        return out


def _with_fact(rel: ExtractedRelation, index: int, said: str) -> ExtractedRelation:
    """`rel` tied to its fact, its names as the sentence said them."""
    source = rel.source if rel.source == SELF else as_said(rel.source, said)
    return ExtractedRelation(source, rel.relation, as_said(rel.target, said), rel.source_type,
                             rel.target_type, index, rel.negated)


def statements(text: str) -> list[str]:
    """The sentences of a message that state something, as said: not questions,
    greetings or one-word answers (what an extractor should be shown at all)."""
    return [s for s in _sentences(text) if _is_statement(clean_text(s))]


def _sentences(text: str) -> Iterator[str]:
    """The sentences of a message, as said."""
    for raw in _SENTENCE_SPLIT.split(said_text(text)):
        sentence = raw.strip()
        if sentence:
            yield sentence


def _is_statement(sentence: str) -> bool:
    if sentence.endswith("?") or _GREETINGS.match(sentence):
        return False
    return len(re.findall(r"\w+", sentence)) >= 2


# Words that open a clause without being part of what it states ("Sadly, Kiwi died").
_OPENER = re.compile(r"^(?:sadly|unfortunately|actually|well|so|anyway|oh|also|and|yes|yeah|"
                     r"yep|right|indeed|true)\s*,?\s+", re.IGNORECASE)
# "also" and a closing "too" add to what is known; the patterns read the clause without them.
_ADDITIVE = re.compile(r"\s+also\b|\s+(?:too|as\s+well)$", re.IGNORECASE)


def _clause_relations(clause: str) -> list[ExtractedRelation]:
    clause = _ADDITIVE.sub("", _OPENER.sub("", _GREETING_OPENER.sub("", clause)))
    retraction = _retraction(clause)
    if retraction is not None:
        return [retraction]
    # Changes of state carry "quit"/"stopped", which the hedge test below refuses.
    changed = _change_of_state(clause)
    if changed:
        return changed
    # "Dislike" forms contain negations of their own; let them through before the hedge test.
    if m := re.fullmatch(
        rf"I\s+{_ADVERB}({_FIRST_PREF})\s+(?:to\s+)?({OBJ})", clause, re.IGNORECASE
    ):
        verb = m.group(1).lower()
        if verb in _NEGATIVE and not _HEDGES.search(_strip_verb(clause, m.group(1))):
            return _preference(SELF, verb, m.group(2))
    if _HEDGES.search(clause):
        return []
    for pattern in _PATTERNS:
        if m := pattern.regex.fullmatch(clause):
            return pattern.build(m)
    return []


# A change of state told of someone: "Oskar gave up the cello and took up the drums",
# "I quit teaching and became a carpenter", "Piet switched from the trumpet to the
# trombone". The clause is read only when it holds one of these verbs and every part of
# it is understood; what ended is a negated relation, what began a new one.
_CHANGE_VERBS = re.compile(r"\b(?:gave\s+up|quit|stopped|dropped|switched|became|transferred|"
                           r"took\s+up|picked\s+up|left)\b", re.IGNORECASE)
_PART_SPLIT = re.compile(r",?\s+(?:and|but)\s+(?:then\s+|now\s+)?|,\s+(?:then\s+|now\s+)",
                         re.IGNORECASE)
_SCHOOL = re.compile(r"\b(?:(?i:school|academy|university|college|high|primary|institute|"
                     r"polytechnic|gymnasium|lyceum|kindergarten)|[A-Z]{2,4})$")
_ACTIVITY_TAIL = re.compile(
    r"\s+(?:after|because|when|since|due\s+to|for|with|last|this|at\s+the|years?|months?)\b.*$",
    re.IGNORECASE)
_END_VERB = (r"(?:gave\s+up|quit|stopped|dropped|abandoned)\s+"
             r"(playing\s+|doing\s+|practi[cs]ing\s+)?")
_START_VERB = (r"(?:took\s+up|picked\s+up|started|began|switched\s+to|now\s+plays|plays|"
               r"now\s+does)\s+(playing\s+|learning\s+)?")


_PREPOSITIONS = {"on", "at", "in", "with", "to", "for", "of", "about", "from", "by", "after"}


def _change_of_state(clause: str) -> list[ExtractedRelation]:
    if not _CHANGE_VERBS.search(clause):
        return []
    m = re.fullmatch(rf"(I|my\s+({_KIN})\s+({NAME})|({NAME}))\s+"
                     rf"(?:(?:just|finally|recently|then|also)\s+)?(.+)", clause, re.IGNORECASE)
    if m is None:
        return []
    out: list[ExtractedRelation] = []
    if m.group(3):
        subject = m.group(3)
        out.append(_rel(SELF, _kin(m.group(2)), subject, ttype="person"))
    elif m.group(4):
        subject = m.group(4)
        if not _is_name(subject):
            return []
    else:
        subject = SELF
    found = False
    for part in _PART_SPLIT.split(m.group(5).strip()):
        relations = _change_part(subject, part.strip())
        if relations is None:
            return []
        found = found or bool(relations)
        out.extend(relations)
    return out if found else []


def _change_part(subject: str, part: str) -> list[ExtractedRelation] | None:
    """The relations one part of a change states ([] for a part that states none, such as
    "left Nordbank" beside "joined Solvia"); None when the part is not understood."""
    stype = "person"
    if m := re.fullmatch(rf"dropped\s+out\s+of\s+(?:the\s+)?({NAME}){WHEN}", part,
                         re.IGNORECASE):
        return [ExtractedRelation(subject, "studies_at", m.group(1), stype, "organization",
                                  negated=True)]
    if m := re.fullmatch(rf"(?:joined|started\s+(?:working\s+)?at|now\s+works\s+(?:at|for)|"
                         rf"works\s+(?:at|for)|got\s+a\s+job\s+at)\s+(?:the\s+)?({NAME}){WHEN}",
                         part, re.IGNORECASE):
        return [_rel(subject, "works_at", m.group(1))]
    if m := re.fullmatch(rf"(?:became|is\s+now|now\s+works\s+as|works\s+as)\s+(?:a|an)\s+"
                         rf"({SHORT_OBJ})(?:\s+now)?{WHEN}", part, re.IGNORECASE):
        return [_rel(subject, "works_as", m.group(1).lower())]
    if m := re.fullmatch(rf"(?:transferred|switched|moved)\s+to\s+(?:the\s+)?({NAME}){WHEN}",
                         part, re.IGNORECASE):
        if _SCHOOL.search(m.group(1)):
            return [_rel(subject, "studies_at", m.group(1))]
        return None
    if re.fullmatch(r"(?:switched|changed)\s+(?:careers?|jobs?|fields?)|retrained|left\s+.+|"
                    rf"quit\s+(?:the\s+)?{NAME}{WHEN}", part, re.IGNORECASE):
        return []
    if m := re.fullmatch(r"switched\s+from\s+(.+?)\s+to\s+(.+)", part, re.IGNORECASE):
        old, new = _activity(subject, m.group(1), True), _activity(subject, m.group(2), False)
        return None if old is None or new is None else [old, new]
    if m := re.fullmatch(rf"{_END_VERB}(.+)", part, re.IGNORECASE):
        rel = _activity(subject, m.group(2), True, played=bool(m.group(1)))
        return None if rel is None else [rel]
    if m := re.fullmatch(rf"{_START_VERB}(.+)", part, re.IGNORECASE):
        rel = _activity(subject, m.group(2), False, played=bool(m.group(1)))
        return None if rel is None else [rel]
    return None


def _activity(subject: str, raw: str, ended: bool, played: bool = False
              ) -> ExtractedRelation | None:
    """`plays cello` (an instrument, or "playing X"), else `likes X`; negated if ended."""
    raw = re.sub(rf"{WHEN}$", "", _ACTIVITY_TAIL.sub("", raw.strip(" .!,")))
    target = _object(raw)
    if target is None or re.search(r"[A-Z]", target[:1]) and not played:
        return None
    if target.lower().split()[0] in _PREPOSITIONS:  # "gave up on me" names no pastime
        return None
    relation = "plays" if played or target.lower().split()[-1] in INSTRUMENTS else "likes"
    return ExtractedRelation(subject, relation, target.lower(), "person", "activity",
                             negated=ended)


def _strip_verb(clause: str, verb: str) -> str:
    return clause.replace(verb, " ", 1)


def _retraction(clause: str) -> ExtractedRelation | None:
    verbs = "|".join(sorted(map(re.escape, _RETRACTABLE), key=len, reverse=True))
    m = re.fullmatch(rf"I\s+no\s+longer\s+({verbs})\s+({NAME}|{OBJ})", clause, re.IGNORECASE)
    if m is None:
        m = re.fullmatch(
            rf"I\s+(?:don't|do\s+not)\s+({verbs})\s+({NAME}|{OBJ})\s+(?:anymore|any\s+more)",
            clause, re.IGNORECASE,
        )
    if m is None:
        return _ended_by_event(clause)
    relation = _RETRACTABLE[m.group(1).lower()]
    target = _object(m.group(2))
    if target is None:
        return None
    return ExtractedRelation(SELF, relation, target, "person", _target_type(relation), negated=True)


# When a change happened, after what changed ("I moved to Porto last month").
WHEN = (r"(?:\s+(?:last|this)\s+(?:week|month|year|spring|summer|fall|autumn|winter|weekend)"
        r"|\s+in\s+(?-i:[A-Z][a-z]+)|\s+in\s+\d{4}|\s+(?:recently|yesterday|today)"
        r"|\s+(?:a|one|two|three|\d+)\s+(?:days?|weeks?|months?|years?)\s+ago)?")

# Endings told as events: (pattern, relation whose edge it ends).
_ENDINGS = [
    (rf"I\s+(?:just\s+|finally\s+)?(?:broke|split)\s+up\s+with\s+({NAME}){WHEN}",
     "partner"),
    (rf"I\s+(?:just\s+)?(?:quit|left)\s+my\s+job\s+(?:at|with)\s+(?:the\s+)?({NAME}){WHEN}",
     "works_at"),
    (rf"(?:I|we)\s+(?:just\s+)?moved\s+out\s+of\s+(?:the\s+)?({NAME}){WHEN}", "lives_in"),
]


_PETS = rf"(?:any\s+)?(?:pets?|animals?|{_ANIMAL}s?)"
_ENDINGS_ANY = [
    rf"I\s+(?:don't|do\s+not)\s+have\s+(?:any\s+|a\s+|an\s+)?({_PETS})\s+"
    r"(?:anymore|any\s+more|now)",
    rf"I\s+no\s+longer\s+(?:have|own)\s+(?:any\s+|a\s+|an\s+)?({_PETS})",
    r"I\s+(?:don't|do\s+not)\s+(?:have|own)\s+(?:any\s+)?pets",
]


def _pet_relation(word: str) -> str:
    """`has_cat` for "a cat", `has_pet` for "pets"/"animals" (every kind)."""
    word = re.sub(r"^any\s+", "", word.lower()).rstrip("s") if word else "pet"
    return "has_pet" if word in ("pet", "animal", "") else f"has_{_animal(word)}"


def _ended_by_event(clause: str) -> ExtractedRelation | None:
    for pattern in _ENDINGS_ANY:
        if m := re.fullmatch(pattern, clause, re.IGNORECASE):
            word = m.group(1) if m.groups() else "pets"
            return ExtractedRelation(SELF, _pet_relation(word), ANY, "person", "animal",
                                     negated=True)
    if m := re.fullmatch(rf"({NAME})\s+and\s+I\s+(?:just\s+)?(?:broke|split)\s+up{WHEN}",
                         clause, re.IGNORECASE):
        return ExtractedRelation(SELF, "partner", m.group(1), "person", "person", negated=True)
    died = re.fullmatch(rf"(?:my\s+(?:{_ANIMAL})\s+)?({NAME})\s+(?:died|passed\s+away|"
                        rf"ran\s+away){WHEN}", clause, re.IGNORECASE)
    if died and _is_name(died.group(1)):
        return ExtractedRelation(SELF, "has_pet", died.group(1), "person", "animal",
                                 negated=True)
    for pattern, relation in _ENDINGS:
        if m := re.fullmatch(pattern, clause, re.IGNORECASE):
            return ExtractedRelation(SELF, relation, m.group(1), "person",
                                     _target_type(relation), negated=True)
    return None


def _object(raw: str) -> str | None:
    obj = re.sub(r"^(?:the|a|an|to)\s+", "", raw.strip(), flags=re.IGNORECASE).strip()
    # "chess too", "baking as well": the thing, not the adverb.
    obj = re.sub(r"\s+(?:too|as\s+well|also|again|now|anymore)$", "", obj,
                 flags=re.IGNORECASE).strip()
    if not obj or obj.lower() in _PRONOUN_OBJECTS or obj.lower().startswith(("my ", "your ")):
        return None
    if obj.lower().split()[0] in _PRONOUN_OBJECTS:
        return None
    return obj


def _target_type(relation: str) -> str:
    return object_type(relation)


_ALL_PREFERENCES = set(_POSITIVE.values()) | set(_NEGATIVE.values())


# What follows a liked thing without being part of it: company, comparison, occasion
# ("hiking with my dad", "tea over coffee", "baking on Sundays", "swimming in the summer").
_PREFERENCE_TAIL = re.compile(
    r"\s+(?:with|over|than|instead\s+of|during|every|each|when|whenever|because|since|while)"
    r"\b.*$"
    r"|\s+on\s+(?:the\s+)?(?:weekends?|weekdays|(?:mon|tues|wednes|thurs|fri|satur|sun)days?)"
    r"\b.*$"
    r"|\s+(?:in|during)\s+the\s+(?:morning|evening|afternoon|summer|winter|spring|fall|autumn)s?"
    r"\b.*$"
    r"|\s+at\s+night\b.*$",
    re.IGNORECASE,
)
# "chess and poker", "both sushi and ramen": each item alone, when every item is short.
_COORDINATION = re.compile(r"\s*,\s*(?:and\s+)?|\s+(?:and|&)\s+", re.IGNORECASE)


def _preference(subject: str, verb: str, raw_obj: str) -> list[ExtractedRelation]:
    relation = _POSITIVE.get(verb.lower()) or _NEGATIVE.get(verb.lower())
    if relation is None:
        return []
    tail = _PREFERENCE_TAIL.search(raw_obj)
    head = raw_obj[:tail.start()] if tail else raw_obj
    out = []
    if tail and (kin := re.search(rf"\bmy\s+({_KIN})\s+({NAME})\s*$", tail.group(0),
                                  re.IGNORECASE)):
        out.append(_rel(SELF, _kin(kin.group(1)), kin.group(2), ttype="person"))
    head = re.sub(r"^both\s+", "", head.strip(), flags=re.IGNORECASE)
    items = _COORDINATION.split(head)
    if len(items) > 1 and not all(0 < len(item.split()) <= 3 for item in items):
        items = [head]
    for item in items:
        target = _object(item)
        if target is None:
            continue
        kind = "person" if re.fullmatch(NAME, target) and target[0].isupper() else "activity"
        out.append(ExtractedRelation(subject, relation, target, "person", kind))
    return out


def _job(subject: str, role: str, employer: str | None) -> list[ExtractedRelation]:
    """ "works as a chef (at Vandelay)": the role, and the employer when named."""
    out = [_rel(subject, "works_as", role.lower())]
    if employer:
        out.append(_rel(subject, "works_at", employer))
    return out


def _kin(raw: str) -> str:
    key = re.sub(r"\s+", " ", raw.lower())
    return _KIN_CANON.get(key, key).replace(" ", "_")


def _animal(raw: str) -> str:
    return re.sub(r"\s+", "_", raw.lower().replace("puppy", "dog").replace("kitten", "cat")
                  .replace("bunny", "rabbit"))


class _Pattern:
    def __init__(self, regex: str, build) -> None:
        self.regex = re.compile(regex, re.IGNORECASE)
        self.build = build


def _rel(source, relation, target, stype="person", ttype=None) -> ExtractedRelation:
    return ExtractedRelation(source, relation, target, stype, ttype or _target_type(relation))


def _subject_rest(subject: str, rest: str | None) -> list[ExtractedRelation]:
    """Relations of a third-person remainder: "My friend John <rest>"."""
    if not rest:
        return []
    rest = re.sub(r"^(?:now|also|still|currently)\s+", "", rest.strip(), flags=re.IGNORECASE)
    for pattern in _THIRD_PERSON:
        if (m := pattern.regex.fullmatch(rest)) and (found := pattern.build(subject, m)):
            return found
    # "plays chess and lives in Cairo": each predicate alone, when each is understood.
    parts = re.split(r",?\s+and\s+", rest)
    if len(parts) > 1:
        out: list[ExtractedRelation] = []
        for part in parts:
            found = _subject_rest(subject, part)
            if not found:
                return []
            out.extend(found)
        return out
    return []


class _Third:
    def __init__(self, regex: str, build) -> None:
        self.regex = re.compile(regex, re.IGNORECASE)
        self.build = build


# Predicates that follow a named subject ("John <predicate>").
_THIRD_PERSON = [
    _Third(rf"{_JUST}(?:moved|relocated)\s+(?:back\s+)?to\s+(?:the\s+)?({NAME}){WHEN}",
           lambda s, m: [_rel(s, "lives_in", m.group(1))]),
    _Third(rf"{_JUST}(?:got\s+a\s+(?:new\s+)?job\s+(?:at|with)|joined|started\s+(?:a\s+new\s+"
           rf"job\s+|working\s+)?at)\s+(?:the\s+)?({NAME}){WHEN}",
           lambda s, m: [_rel(s, "works_at", m.group(1))]),
    _Third(rf"works\s+as\s+(?:a|an)\s+({SHORT_OBJ}){_AT_NAME}",
           lambda s, m: _job(s, m.group(1), m.group(2))),
    _Third(rf"plays\s+(?:the\s+)?({OBJ})", lambda s, m: _plays(s, m.group(1))),
    _Third(rf"studies\s+at\s+(?:the\s+)?({NAME})", lambda s, m: [_rel(s, "studies_at",
                                                                          m.group(1))]),
    _Third(rf"{_ADVERB}({_THIRD_PREF})\s+(?:to\s+)?({OBJ})",
           lambda s, m: _preference(s, m.group(1), m.group(2))),
    _Third(rf"lives\s+in\s+(?:the\s+)?({NAME})", lambda s, m: [_rel(s, "lives_in", m.group(1))]),
    _Third(rf"works\s+(?:at|for)\s+(?:the\s+)?({NAME})",
           lambda s, m: [_rel(s, "works_at", m.group(1))]),
    _Third(rf"is\s+from\s+(?:the\s+)?({NAME})", lambda s, m: [_rel(s, "is_from", m.group(1))]),
    _Third(rf"has\s+(?:a|an)\s+({_ANIMAL})\s+(?:named|called)\s+({NAME})",
           lambda s, m: [_rel(s, f"has_{_animal(m.group(1))}", m.group(2), ttype="animal")]),
    _Third(rf"is\s+married\s+to\s+({NAME})", lambda s, m: [_rel(s, "married_to", m.group(1))]),
    _Third(r"is\s+(\d{1,3})\s+years\s+old", lambda s, m: [_rel(s, "age", m.group(1))]),
    _Third(rf"is\s+({NAME})", lambda s, m: [_rel(s, "is", m.group(1))]),
]


def _plays(subject: str, raw: str) -> list[ExtractedRelation]:
    target = _object(_ACTIVITY_TAIL.sub("", raw))
    if target is None or target[:1].isupper() or re.search(r"\band\b", target):
        return []
    return [ExtractedRelation(subject, "plays", target.lower(), "person", "activity")]


def _both(m: re.Match) -> list[ExtractedRelation]:
    out: list[ExtractedRelation] = []
    for subject in (m.group(1), m.group(2)):
        out.extend(_preference(subject, m.group(3), m.group(4)))
    return out


_PATTERNS = [
    _Pattern(rf"(?:my\s+name\s+is|my\s+name's|i\s+am\s+called|i'm\s+called|call\s+me|"
             rf"people\s+call\s+me|everyone\s+calls\s+me)\s+({NAME})",
             lambda m: [_rel(SELF, "name", m.group(1), ttype="name")]),
    _Pattern(rf"I\s+{_ADVERB}({_FIRST_PREF})\s+(?:to\s+)?({OBJ})",
             lambda m: _preference(SELF, m.group(1), m.group(2))),
    _Pattern(rf"I\s+(?:also\s+)?play\s+(?:the\s+)?({OBJ})", lambda m: _plays(SELF, m.group(1))),
    # "My partner Jonas and I live in Utrecht", "Jonas and I moved to Delft": what "I" do.
    _Pattern(rf"my\s+({_KIN})\s+({NAME})\s+and\s+I\s+(.+)",
             lambda m: [_rel(SELF, _kin(m.group(1)), m.group(2), ttype="person"),
                        *_clause_relations(f"I {m.group(3)}")]),
    _Pattern(rf"({NAME})\s+and\s+I\s+(.+)", lambda m: _clause_relations(f"I {m.group(2)}")
             if _is_name(m.group(1)) else []),
    _Pattern(rf"I\s+(?:currently\s+)?(?:live|reside)\s+in\s+(?:the\s+)?({NAME})",
             lambda m: [_rel(SELF, "lives_in", m.group(1))]),
    _Pattern(rf"I(?:'m|\s+am)\s+(?:currently\s+)?living\s+in\s+(?:the\s+)?({NAME})",
             lambda m: [_rel(SELF, "lives_in", m.group(1))]),
    _Pattern(rf"I\s+(?:currently\s+)?work\s+(?:at|for)\s+(?:the\s+)?({NAME})",
             lambda m: [_rel(SELF, "works_at", m.group(1))]),
    _Pattern(rf"I(?:'m|\s+am)\s+(?:currently\s+)?working\s+(?:at|for)\s+(?:the\s+)?({NAME})",
             lambda m: [_rel(SELF, "works_at", m.group(1))]),
    _Pattern(rf"I\s+(?:currently\s+)?work\s+as\s+(?:a|an)\s+({SHORT_OBJ}){_AT_NAME}",
             lambda m: _job(SELF, m.group(1), m.group(2))),
    _Pattern(rf"I(?:'m|\s+am)\s+(?:originally\s+)?from\s+(?:the\s+)?({NAME})",
             lambda m: [_rel(SELF, "is_from", m.group(1))]),
    _Pattern(rf"I\s+come\s+from\s+(?:the\s+)?({NAME})",
             lambda m: [_rel(SELF, "is_from", m.group(1))]),
    _Pattern(r"(?:I(?:'m|\s+am)\s+(\d{1,3})\s+years\s+old|my\s+age\s+is\s+(\d{1,3}))",
             lambda m: [_rel(SELF, "age", m.group(1) or m.group(2))]),
    _Pattern(rf"I(?:'m|\s+am)\s+married\s+to\s+({NAME})",
             lambda m: [_rel(SELF, "married_to", m.group(1))]),
    _Pattern(rf"I\s+have\s+(?:a|an)\s+({_ANIMAL})\s+(?:named|called)\s+({NAME})",
             lambda m: [_rel(SELF, f"has_{_animal(m.group(1))}", m.group(2), ttype="animal")]),
    _Pattern(rf"my\s+({_ANIMAL})(?:'s\s+name\s+is|\s+is\s+(?:named|called)|,)?\s+({NAME})",
             lambda m: [_rel(SELF, f"has_{_animal(m.group(1))}", m.group(2), ttype="animal")]),
    # "My friend John", "My sister's name is Ann", "My friend John has a dog named Tommy".
    _Pattern(rf"my\s+({_KIN})(?:'s\s+name\s+is|\s+is\s+(?:named|called)|,)?\s+({NAME})"
             rf"(?:,?\s+(.+))?",
             lambda m: [_rel(SELF, _kin(m.group(1)), m.group(2), ttype="person"),
                        *_subject_rest(m.group(2), m.group(3))]),
    # "My wife is Maria": a name, not "My boss is Italian" or "... is Maria's friend".
    _Pattern(rf"my\s+({_KIN})\s+is\s+({NAME})",
             lambda m: [_rel(SELF, _kin(m.group(1)), m.group(2), ttype="person")]
             if _is_name(m.group(2)) else []),
    # "I'm Alex", "I am Grace Okafor, nice to meet you", "I'm Nora, I live in Bergen".
    _Pattern(rf"I(?:'m|\s+am)\s+({NAME})(?:\s*,\s*(.+))?",
             lambda m: [_rel(SELF, "name", m.group(1), ttype="name"),
                        *(_clause_relations(m.group(2)) if m.group(2) else [])]
             if _is_name(m.group(1)) else []),
    # Changes of state told as events: the new state.
    _Pattern(rf"(?:I|we)\s+{_JUST}(?:moved|relocated)\s+(?:back\s+)?to\s+(?:the\s+)?"
             rf"({NAME}){WHEN}(?:\s+with\s+.+)?",
             lambda m: [_rel(SELF, "lives_in", m.group(1))]),
    _Pattern(rf"(?:I|we)\s+{_JUST}moved\s+into\s+(?:a|an|the|our|my)\s+[\w\-]+\s+in\s+"
             rf"({NAME}){WHEN}", lambda m: [_rel(SELF, "lives_in", m.group(1))]),
    _Pattern(rf"I\s+{_JUST}(?:started|began)\s+(?:a\s+new\s+job|a\s+job|working|work)\s+"
             rf"(?:at|for|with)\s+(?:the\s+)?({NAME}){WHEN}",
             lambda m: [_rel(SELF, "works_at", m.group(1))]),
    _Pattern(rf"I\s+{_JUST}got\s+a\s+(?:new\s+)?job\s+(?:at|with)\s+(?:the\s+)?({NAME}){WHEN}",
             lambda m: [_rel(SELF, "works_at", m.group(1))]),
    _Pattern(rf"I\s+{_JUST}joined\s+(?:the\s+)?({NAME})(?:\s+as\s+(?:a|an)\s+({SHORT_OBJ}))?{WHEN}",
             lambda m: [_rel(SELF, "works_at", m.group(1)),
                        *([_rel(SELF, "works_as", m.group(2).lower())] if m.group(2) else [])]),
    _Pattern(rf"(?:I|we)\s+{_JUST}(?:got|adopted|rescued)\s+(?:a|an)\s+(?:new\s+)?({_ANIMAL})\s+"
             rf"(?:named|called)\s+({NAME}){WHEN}",
             lambda m: [_rel(SELF, f"has_{_animal(m.group(1))}", m.group(2), ttype="animal")]),
    _Pattern(rf"I\s+{_JUST}(?:got\s+married\s+to|married)\s+({NAME}){WHEN}",
             lambda m: [_rel(SELF, "married_to", m.group(1))]),
    _Pattern(rf"I(?:'m|\s+am)?\s+(?:now\s+|just\s+)?(?:started\s+)?dating\s+({NAME}){WHEN}",
             lambda m: [_rel(SELF, "partner", m.group(1))]),
    _Pattern(rf"I\s+{_JUST}(?:enrolled|started\s+studying)\s+(?:at|in)\s+(?:the\s+)?({NAME})"
             rf"{WHEN}", lambda m: [_rel(SELF, "studies_at", m.group(1))]),
    _Pattern(rf"I\s+(?:currently\s+)?study\s+at\s+(?:the\s+)?({NAME})",
             lambda m: [_rel(SELF, "studies_at", m.group(1))]),
    _Pattern(rf"I\s+{_JUST}(?:took|picked)\s+up\s+({SHORT_OBJ}){WHEN}",
             lambda m: _preference(SELF, "like", m.group(1))),
    # "My favorite color is green (now)": a favourite is one (single-valued).
    _Pattern(rf"my\s+(?:new\s+)?favou?rite\s+([a-z]+)\s+is\s+(?:now\s+)?({SHORT_OBJ})"
             rf"(?:\s+now)?", lambda m: [_rel(SELF, f"favorite_{m.group(1).lower()}",
                                                _object(m.group(2)) or m.group(2))]),
    _Pattern(r"I\s+(?:just\s+)?turned\s+(\d{1,3})", lambda m: [_rel(SELF, "age", m.group(1))]),
    # "John is my brother".
    _Pattern(rf"({NAME})\s+is\s+my\s+({_KIN})",
             lambda m: [_rel(SELF, _kin(m.group(2)), m.group(1), ttype="person")]),
    # "John and Harry both enjoy hiking".
    _Pattern(rf"({NAME})\s+and\s+({NAME})\s+(?:both\s+|also\s+|each\s+)?({_FIRST_PREF})\s+"
             rf"(?:to\s+)?({OBJ})", _both),
    # "John likes tea", "Harry lives in Paris", "Peter is Spider-Man".
    _Pattern(rf"({NAME})\s+(.+)", lambda m: _named_subject(m.group(1), m.group(2))),
]

def _is_name(text: str) -> bool:
    """Whether capitalised words after "I am" / "my wife is" name someone: not a people,
    faith or language ("Italian"), not initials said as a type ("INFJ"), not a possessive
    ("Alex's mom"), not a phrase that opens with a common word ("The Boss")."""
    words = text.split()
    first = words[0].casefold()
    if first in _NOT_NAMES or first in _NOT_SUBJECTS or first in STOPWORDS:
        return False
    return not any(w.endswith(("'s", "'")) or (len(w) > 1 and w.isupper()) for w in words)


_NOT_SUBJECTS = {"i", "my", "we", "our", "you", "your", "he", "she", "they", "it", "this",
                 "that", "there", "the", "a", "an", "today", "yesterday", "tomorrow"}


def _named_subject(subject: str, rest: str) -> list[ExtractedRelation]:
    if subject.split()[0].lower() in _NOT_SUBJECTS:
        return []
    return _subject_rest(subject, rest)
