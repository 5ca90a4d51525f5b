"""DVC stage ``id_tag``: the class word of each caption, singularized, with its token span.

protocols.md section 3, step 5: the group's most frequent class word wins; a caption that mentions
several people is split by class word (spaCy's dependency parse in the thesis) and the sub-caption is
chosen by CLIP score against the ID region x sentence similarity of its class word to the group's. The
heavy ``spacy`` backend is declared here and needs its pinned pipeline. The light backend is rule based:

- tokens are words and punctuation marks (``tokenize``); a token is a class word when its singular
  (``singularize``: men -> man, women -> woman, people -> person, ...) is one of the portrait set's class
  words (``triptych.benchmarks.personalization.CLASS_WORDS``);
- the caption is split into clauses at commas, semicolons and the words ``and``, ``while``, ``with``,
  ``beside``, ``next``, ``near``, ``behind``: "a man and his dog on a beach" -> "a man" | "his dog on a
  beach"; "two women talking, one wearing a hat" -> "two women talking" | "one wearing a hat";
- among the class-word tokens, the one most similar to the group's class word wins (equal 1, same
  family such as man / boy / gentleman 0.5, the generic "person" 0.25, else 0; ties: the first), a
  fixed table standing in for the sentence similarity; there is no image term (no CLIP offline).

The span is ``[start, end)`` in token indices (and in characters) of the original caption.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from triptych.benchmarks.personalization import CLASS_WORDS
from triptych.pipelines.id_table import Record, Table, drop, load_previous, save, stage_parser
from triptych.pipelines.stage_io import check_backend, run_stage, timed

STAGE = "id_tag"
HEAVY = {"spacy": ("spacy, sentence-transformers and open_clip (pip install spacy sentence-transformers open_clip_torch)",
                   "the pinned en_core_web_trf pipeline and clip_vit_l14_openai")}
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

    >>> singularize("Women"), singularize("boys"), singularize("hat")
    ('woman', 'boy', None)
    """
    w = word.lower()
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


def majority_word(captions: list[str], folder_word: str) -> str:
    """The class word most captions of the group mention (each caption counts a word once); ties go to the
    folder's class word, then alphabetically."""
    counts = Counter(w for caption in captions for w in set(class_words(caption)))
    if not counts:
        return folder_word
    top = max(counts.values())
    tied = sorted(w for w, c in counts.items() if c == top)
    return folder_word if folder_word in tied else tied[0]


def tag_group(records: list[Record]) -> str:
    word = majority_word([r["caption"] for r in records], records[0]["folder_class_word"])
    for record in records:
        tag = tag_caption(record["caption"], word)
        record["group_class_word"] = word
        if tag is None:
            record.update(class_word=None, token_span=None, char_span=None, sub_caption=None)
            drop(record, STAGE, "no class word in the caption")
        else:
            record.update(class_word=tag.class_word, token_span=list(tag.token_span), char_span=list(tag.char_span),
                          sub_caption=tag.sub_caption)
    return word


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    args = parser.parse_args(argv)
    check_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        timing.items = timing.computed = len(table.kept())
        words = {identity: tag_group(records) for identity, records in table.groups().items()}
        table.log(STAGE, "light: rule-based clause splitter", {"backend": args.backend}, group_class_words=words)
        save(table, args.out, STAGE)
    print(f"{STAGE}: {len(table.kept())} images tagged")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
