"""DVC stage ``id_tag``: the class word of each caption, singularized, with its token span.

docs/protocols/personalization.md step 5: the group's most frequent class word wins; a caption that mentions
several people is split by class word (spaCy's dependency parse in the thesis) and the sub-caption is
chosen by CLIP score against the ID region x sentence similarity of its class word to the group's.
Tagging then writes ``tagged_caption``: the tagged noun replaced by the identity's class word followed by
the trigger word (``--trigger``, PhotoMaker's ``img``), as PhotoMaker's training captions read.

The heavy ``spacy`` backend (or ``heavy``) takes the class-word candidates from spaCy's English pipeline
(``--spacy-model``, default ``en_core_web_sm``: nouns whose text is a class word) and the sub-caption
from its dependency parse (the subject's clause: the head verb's subtree without its conjuncts); the
choice among candidates is the light backend's. spaCy's English pipelines are not published on PyPI
(only unofficial re-uploads are); install one with ``pip install spacy`` then ``python -m spacy download
en_core_web_sm`` (a GitHub release asset of explosion/spacy-models). The light backend is rule based:

- tokens are words and punctuation marks (``tokenize``); a token is a class word when its singular
  (``singularize``: men -> man, women -> woman, people -> person, ...) is one of the portrait set's class
  words (``triptych.benchmarks.portrait_folders.CLASS_WORDS``);
- the caption is split into clauses at commas, semicolons and the words ``and``, ``while``, ``with``,
  ``beside``, ``next``, ``near``, ``behind``: "a man and his dog on a beach" -> "a man" | "his dog on a
  beach"; "two women talking, one wearing a hat" -> "two women talking" | "one wearing a hat";
- among the class-word tokens, the one most similar to the group's class word wins (equal 1, same
  family such as man / boy / gentleman 0.5, the generic "person" 0.25, else 0; ties: the first), a
  fixed table standing in for the sentence similarity; there is no image term (no CLIP offline).

The span is ``[start, end)`` in token indices (and in characters) of the original caption.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

from triptych.benchmarks.portrait_folders import CLASS_WORDS
from triptych.errors import TriptychError
from triptych.pipelines.id_table import Record, Table, drop, load_previous, save, stage_parser
from triptych.pipelines.stage_io import choose_backend, run_stage, timed

STAGE = "id_tag"
HEAVY = "spacy"
SPACY_INSTALL = "pip install spacy && python -m spacy download {model} (not on PyPI: a release asset of explosion/spacy-models)"
IRREGULAR = {"men": "man", "women": "woman", "people": "person", "persons": "person", "children": "child",
             "ladies": "lady", "gentlemen": "gentleman", "babies": "baby"}
SPLIT_WORDS = {"and", "while", "with", "beside", "next", "near", "behind"}
SPLIT_MARKS = {",", ";"}
FAMILIES = ({"man", "boy", "gentleman"}, {"woman", "girl", "lady"}, {"child", "kid", "baby", "boy", "girl"})
_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+|[^\w\s]")


@dataclass(frozen=True)
class Token:
    text: str
    start: int  # character offsets in the caption, [start, end)
    end: int


@dataclass(frozen=True)
class Tag:
    class_word: str  # singular
    token_span: tuple[int, int]  # [start, end) token indices
    char_span: tuple[int, int]
    sub_caption: str


def tokenize(caption: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(caption)]


def singularize(word: str) -> str | None:
    """The singular class word of ``word``, or None when it is not a class word.

    >>> singularize("Women"), singularize("boys"), singularize("man's"), singularize("hat")
    ('woman', 'boy', 'man', None)
    """
    w = word.lower()
    w = w[:-2] if w.endswith("'s") else w  # possessive: "man's" -> "man", "women's" -> "women"
    singular = IRREGULAR.get(w) or (w if w in CLASS_WORDS else (w[:-1] if w.endswith("s") else None))
    return singular if singular in CLASS_WORDS else None


def similarity(word: str, group_word: str) -> float:
    if word == group_word:
        return 1.0
    if any(word in family and group_word in family for family in FAMILIES):
        return 0.5
    return 0.25 if "person" in (word, group_word) else 0.0


def clauses(tokens: list[Token]) -> list[tuple[int, int]]:
    """Token ranges [start, end) between split marks and split words (which belong to no clause)."""
    out, start = [], 0
    for i, token in enumerate(tokens):
        if token.text in SPLIT_MARKS or token.text.lower() in SPLIT_WORDS:
            if i > start:
                out.append((start, i))
            start = i + 1
    if len(tokens) > start:
        out.append((start, len(tokens)))
    return out


def class_words(caption: str) -> list[str]:
    return [w for w in (singularize(t.text) for t in tokenize(caption)) if w]


def tag_caption(caption: str, group_word: str) -> Tag | None:
    """The class-word token of ``caption`` that best matches the group's class word, or None if none.

    >>> tag_caption("a man and his dog on a beach", "man")
    Tag(class_word='man', token_span=(1, 2), char_span=(2, 5), sub_caption='a man')
    """
    tokens = tokenize(caption)
    best = None
    for start, end in clauses(tokens):
        for i in range(start, end):
            word = singularize(tokens[i].text)
            if word is not None and (best is None or similarity(word, group_word) > best[0]):
                best = (similarity(word, group_word), i, word, start, end)
    if best is None:
        return None
    _, i, word, start, end = best
    return Tag(word, (i, i + 1), (tokens[i].start, tokens[i].end), caption[tokens[start].start:tokens[end - 1].end])


@functools.lru_cache(maxsize=1)
def spacy_pipeline(model: str):  # noqa: ANN201 (spacy.Language)
    try:
        import spacy
    except ImportError as exc:
        raise TriptychError("id_tag: the spacy backend needs spaCy", fix=SPACY_INSTALL.format(model=model)
                            + "; or --backend light") from exc
    try:
        return spacy.load(model)
    except OSError as exc:
        raise TriptychError(f"id_tag: spaCy pipeline {model!r} is not installed",
                            fix=SPACY_INSTALL.format(model=model) + "; or --backend light") from exc


def tag_caption_spacy(caption: str, group_word: str, nlp) -> Tag | None:  # noqa: ANN001 (spacy.Language)
    """``tag_caption`` with spaCy's tokens, parts of speech and parse (see the module docstring)."""
    doc = nlp(caption)
    best = None
    for token in doc:
        word = singularize(token.text) if token.pos_ in ("NOUN", "PROPN") else None
        if word is not None and (best is None or similarity(word, group_word) > best[0]):
            best = (similarity(word, group_word), token, word)
    if best is None:
        return None
    _, token, word = best
    head = token.head if token.dep_ in ("nsubj", "nsubjpass") else token
    conjuncts = {t.i for child in head.children if child.dep_ in ("conj", "cc") for t in child.subtree}
    clause = [t for t in head.subtree if t.i not in conjuncts]
    first, last = min(t.i for t in clause), max(t.i for t in clause)
    return Tag(word, (token.i, token.i + 1), (token.idx, token.idx + len(token.text)),
               caption[doc[first].idx:doc[last].idx + len(doc[last].text)])


def with_trigger(caption: str, tag: Tag, class_word: str, trigger: str) -> str:
    """The caption with its tagged noun replaced by the identity's class word followed by the trigger word,
    as PhotoMaker's training captions write it ("a man img ..."); a possessive keeps its "'s" after the
    trigger, and a capital initial stays capital.

    >>> caption = "Two women's hats"
    >>> with_trigger(caption, tag_caption(caption, "woman"), "woman", "img")
    "Two woman img's hats"
    """
    start, end = tag.char_span
    noun = caption[start:end]
    word = class_word.capitalize() if noun[:1].isupper() else class_word
    suffix = noun[-2:] if noun.lower().endswith("'s") else ""
    return f"{caption[:start]}{word} {trigger}{suffix}{caption[end:]}"


def majority_word(captions: list[str], folder_word: str) -> str:
    """The class word most captions of the group mention (each caption counts a word once); ties go to the
    folder's class word, then alphabetically."""
    counts = Counter(w for caption in captions for w in set(class_words(caption)))
    if not counts:
        return folder_word
    top = max(counts.values())
    tied = sorted(w for w, c in counts.items() if c == top)
    return folder_word if folder_word in tied else tied[0]


def tag_group(records: list[Record], trigger: str = "img", nlp=None) -> str:  # noqa: ANN001
    """Tag every caption of one identity (with spaCy when ``nlp`` is given); returns the group's class word."""
    word = majority_word([r["caption"] for r in records], records[0]["folder_class_word"])
    for record in records:
        tag = tag_caption(record["caption"], word) if nlp is None else tag_caption_spacy(record["caption"], word, nlp)
        record["group_class_word"] = word
        if tag is None:
            record.update(class_word=None, token_span=None, char_span=None, sub_caption=None, tagged_caption=None)
            drop(record, STAGE, "no class word in the caption")
        else:
            record.update(class_word=tag.class_word, token_span=list(tag.token_span), char_span=list(tag.char_span),
                          sub_caption=tag.sub_caption, tagged_caption=with_trigger(record["caption"], tag, word, trigger))
    return word


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--trigger", default="img", help="the trigger word written after the class word")
    parser.add_argument("--spacy-model", default="en_core_web_sm", help="spacy: the installed English pipeline")
    args = parser.parse_args(argv)
    backend = choose_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        nlp = None if backend == "light" else spacy_pipeline(args.spacy_model)
        timing.items = timing.computed = len(table.kept())
        words = {identity: tag_group(records, args.trigger, nlp) for identity, records in table.groups().items()}
        label = "light: rule-based clause splitter" if nlp is None else f"spacy: {args.spacy_model} parse"
        params = {"backend": args.backend, "trigger": args.trigger}
        if nlp is not None:
            params["spacy_model"] = args.spacy_model
        table.log(STAGE, label, params, group_class_words=words)
        save(table, args.out, STAGE)
    print(f"{STAGE}: {len(table.kept())} images tagged")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
