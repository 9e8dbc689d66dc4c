"""Text normalisation shared by the write path and search: hashes, keys, relation names,
and the tokenizer both BM25 signals use.

Two forms of one text: `said_text` is what is stored and shown (the user's characters);
`clean_text` folds them for matching only (keys, hashes, BM25, resolution), so "Spider‑Man"
(U+2011) is kept as typed and still found by, and joined with, "Spider-Man"."""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata

# Dashes and hyphens of every script fold to "-" so "Spider‑Man" (U+2011) == "Spider-Man".
_DASHES = re.compile(r"[\u2010-\u2015\u2212\uFE58\uFE63\uFF0D]")
_UNKEEPABLE = re.compile("[\x00\ud800-\udfff]")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def said_text(text: str) -> str:
    """Text as said, fit to keep: stripped at both ends, characters no store can keep
    (lone surrogates, NUL) as U+FFFD; its dashes, quotes and spacing as they were."""
    if text.isascii() and "\x00" not in text:
        return text.strip()
    return _UNKEEPABLE.sub("\ufffd", text).strip()


def clean_text(text: str) -> str:
    """The form matching compares (never stored in place of what was said): NFKC, unified
    dashes and quotes, collapsed whitespace, stripped; characters no store can keep (lone
    surrogates, NUL) become U+FFFD."""
    if text.isascii() and "\x00" not in text:
        # NFKC, dashes and quotes change no ASCII text (and str.translate of one is slow)
        return " ".join(text.split())
    text = _UNKEEPABLE.sub("\ufffd", text)
    text = unicodedata.normalize("NFKC", text)
    text = _DASHES.sub("-", text).translate(_QUOTES)
    return " ".join(text.split())


# What each character `clean_text` folds to "-", "'" or '"' may have been in the original.
_SAID_AS = {"-": "[-\u2010-\u2015\u2212\uFE58\uFE63\uFF0D]", "'": "['\u2018\u2019]",
            '"': '["\u201c\u201d]'}


def as_said(folded: str, original: str) -> str:
    """The words of `original` that `folded` (a piece of `clean_text(original)`) came
    from: "Spider-Man" in "I met Spider‑Man" is "Spider‑Man". `folded` itself when it is
    not found there (NFKC changed its letters, or a caller reworded it)."""
    if folded in original:
        return folded  # said so: nothing was folded
    pattern = "".join(r"\s+" if ch.isspace() else _SAID_AS.get(ch, re.escape(ch))
                      for ch in folded)
    found = re.search(pattern, original)
    return found.group(0) if found else folded


def text_hash(text: str) -> str:
    """The dedup hash of a memory text (whitespace-insensitive, case-sensitive)."""
    return hashlib.sha256(clean_text(text).encode("utf-8")).hexdigest()


def entity_key(name: str) -> str:
    """The normalised key two mentions of one entity share ("Bob " == "bob")."""
    key = clean_text(name).casefold()
    key = re.sub(r"^(the|a|an)\s+", "", key)
    return key.strip(" .,!?;:'\"")


_REL_BAD = re.compile(r"[^\w]+", re.UNICODE)


def relation_name(raw: str) -> str:
    """Lower snake case, letters of any script kept, everything else folded to "_".

    >>> relation_name("Works At")
    'works_at'
    >>> relation_name("is-friend-of")
    'is_friend_of'
    """
    name = clean_text(raw)
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # camelCase -> camel_Case
    name = _REL_BAD.sub("_", name.casefold()).strip("_")
    return re.sub(r"_+", "_", name)[:64] or "related_to"


_TOKEN = re.compile(r"\w+", re.UNICODE)

# English function words and pronouns: no BM25 signal (every statement of a user has
# "I"/"my"). Entity spotting does not use this list: there "my" names the user.
STOPWORDS = frozenset(
    """a an the is are was were be been being am do does did of to in on at for with by from
    and or but if then so as that this these those it its what which who whom whose when
    where why how there here than too very can could should would will shall may might must
    about into over under again further once just also only own same such no nor not any
    both each few more most other some all i me my mine myself you your yours we us our he
    him his she her hers they them their""".split()  # noqa: SIM905 - a word list reads best as text
)


def tokenize(text: str) -> list[str]:
    """Case-folded word tokens; snake_case and hyphenated words also split into parts.

    >>> tokenize("John has_dog Spider-Man!")
    ['john', 'has', 'dog', 'spider', 'man']
    """
    folded = clean_text(text).casefold()
    found = _TOKEN.findall(folded)
    if "_" not in folded:
        return found
    return [part for token in found for part in token.split("_") if part]


def content_tokens(text: str) -> list[str]:
    """`tokenize` without stopwords (what a query contributes to BM25)."""
    return [t for t in tokenize(text) if t not in STOPWORDS]


_per_thread = threading.local()


def _stemmer():
    """This thread's English stemmer (PyStemmer's stemmers hold state: one per thread)."""
    stemmer = getattr(_per_thread, "stemmer", None)
    if stemmer is None:
        import Stemmer  # PyStemmer

        stemmer = _per_thread.stemmer = Stemmer.Stemmer("english")
    return stemmer


def stems(text: str) -> list[str]:
    """English (Porter 2) stems of `tokenize`: "lives", "living" and "live" meet."""
    return _stemmer().stemWords(tokenize(text))


def content_stems(text: str) -> list[str]:
    """`stems` of the content words only."""
    return _stemmer().stemWords(content_tokens(text))
