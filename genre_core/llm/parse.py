"""Turn a content-enricher answer into (description, keywords), whatever shape a small model gives it.

Accepted shapes, in any order and case: ``Description: ...`` / ``Keywords: a, b, c`` lines (optionally with
markdown bullets or bold), a keywords line with ``;`` or ``|`` separators, or ``#hashtags``. When the answer has
no keywords label, the keywords are the most frequent content words of the answer (marked by ``source``).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_LABEL = re.compile(r"^\s*(?:[-*#>]+\s*)?\**\s*(description|summary|keywords?|tags)\s*\**\s*:\s*\**\s*(.*)$",
                    re.IGNORECASE)
_HASHTAG = re.compile(r"#(\w[\w-]*)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_STOP = frozenset("""a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now
of off on once only or other our ours out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours film movie story item keywords description one two new""".split())


@dataclass(frozen=True)
class Enrichment:
    """A parsed enricher answer: the description text, keywords (lower-case, unique, in order) and where the
    keywords came from (``labelled``, ``hashtags`` or ``derived`` from the description words)."""

    description: str
    keywords: list[str] = field(default_factory=list)
    source: str = "labelled"


def _split_keywords(text: str) -> list[str]:
    parts = re.split(r"[,;|\n]| - |\u2022", text)
    out: list[str] = []
    for p in parts:
        kw = re.sub(r"^[\s\d.)*#-]+|[\s.*\"']+$", "", p).strip().strip("\"'").lower()
        if kw and len(kw) <= 40 and kw not in out:
            out.append(kw)
    return out


def tidy_description(text: str) -> str:
    """Collapse whitespace, drop repeated sentences and a cut-off last sentence (small models loop and get cut
    by the token limit); a single unfinished sentence is kept."""
    sentences = [x for x in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text).strip()) if x]
    seen: set[str] = set()
    kept: list[str] = []
    for sent in sentences:
        key = sent.lower().strip(" .!?")
        if key and key not in seen:
            seen.add(key)
            kept.append(sent)
    if len(kept) > 1 and not kept[-1].endswith((".", "!", "?", '"', ")")):
        kept.pop()
    return " ".join(kept)


def derive_keywords(text: str, k: int = 5) -> list[str]:
    """The ``k`` most frequent non-stopword words of ``text`` (lower-case; ties keep first appearance)."""
    words = [w.lower().strip("'-") for w in _WORD.findall(text)]
    counts = Counter(w for w in words if w not in _STOP and len(w) > 2)
    first = {w: i for i, w in reversed(list(enumerate(words)))}
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], first[kv[0]]))[:k]]


def parse_enrichment(output: str, max_keywords: int = 10) -> Enrichment:
    """Parse an enricher answer. Raises ValueError when ``output`` holds no usable text."""
    if not isinstance(output, str) or not output.strip():
        raise ValueError("empty enricher output")
    desc_parts: list[str] = []
    kw_parts: list[str] = []
    current: list[str] | None = None
    unlabelled: list[str] = []
    for line in output.strip().splitlines():
        m = _LABEL.match(line)
        if m:
            current = kw_parts if m.group(1).lower().startswith(("keyword", "tag")) else desc_parts
            rest = m.group(2).strip().rstrip("*").strip()
            if rest:
                current.append(rest)
        elif line.strip():
            (current if current is not None else unlabelled).append(line.strip())
    description = tidy_description(" ".join(desc_parts or unlabelled))
    if not description and kw_parts and unlabelled:
        description = " ".join(unlabelled)
    keywords = _split_keywords("\n".join(kw_parts))[:max_keywords]
    source = "labelled"
    if not keywords:
        tags = [t.lower() for t in _HASHTAG.findall(output)]
        keywords, source = list(dict.fromkeys(tags))[:max_keywords], "hashtags"
        description = _HASHTAG.sub(lambda m: m.group(1), description)
    if not description:
        description = ", ".join(keywords)
    if not keywords:
        keywords, source = derive_keywords(description, min(5, max_keywords)), "derived"
    if not description:
        raise ValueError(f"enricher output has no description or keywords: {output[:80]!r}")
    return Enrichment(description=description, keywords=keywords, source=source)
