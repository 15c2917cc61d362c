"""Split a long reply into WhatsApp-sized messages at the most natural place.

WhatsApp refuses text bodies over 4096 characters. Meta does not say how it
counts; this module counts UTF-16 code units (what Java and JavaScript count,
and never fewer than code points), the stricter reading until proven otherwise:
a letter or a CJK character counts 1, an emoji outside the Basic Multilingual
Plane like 👍 counts 2, a flag 4, a ZWJ family like 👨‍👩‍👧 8. So a reply of 3,000
flags (12,000 units) goes out in three parts, each of which Graph accepts.

A reply is cut at the last paragraph break that fits, else the last line break,
else the last sentence end, else the last space; only a "word" longer than the
limit is hard-cut, and then never inside a grapheme cluster where avoidable: not
before a combining mark, variation selector, emoji modifier or tag, not around a
zero-width joiner, not between the two halves of a flag, not inside an Indic
conjunct (consonant + virama + consonant), not between CR and LF or the halves
of a surrogate pair. This is a practical subset of Unicode's extended grapheme
cluster rules (UAX #29) written by hand because the runtime has no grapheme
library (the `regex` package would add a native dependency to the layer for
this one function). Hangul jamo sequences and prepended concatenation marks
are not handled: they are rare in chat replies and a cut there only splits the
rendering, not the text.

Whitespace at a cut is dropped; every part is non-empty and has no leading or
trailing whitespace, and the parts in order are the text minus that whitespace.
"""

from __future__ import annotations

import re
import unicodedata

WHATSAPP_TEXT_LIMIT = 4096
"""In UTF-16 code units (see the module docstring)."""

_ZWJ = "\u200d"
_CLOSERS = "\"'\u201d\u2019)]\u00bb"  # closing quotes and brackets that end a sentence too
_CLOSERS_CLASS = f"[{re.escape(_CLOSERS)}]"
_LOOKAHEAD = 64
"""Characters read past the limit so that a separator starting right at the limit is seen whole."""

# Each level names the separator (group "sep") whose start ends a part and whose end starts the next.
_LEVELS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?P<sep>\s*\n[^\S\n]*\n\s*)"),  # paragraph: a blank line
    re.compile(r"(?P<sep>\s*\n\s*)"),  # line break
    # sentence end; CJK full stops and Devanagari dandas need no space after them
    re.compile(
        rf"[.!?\u2026]{_CLOSERS_CLASS}*(?P<sep>\s+)"
        rf"|[\u3002\uff01\uff1f\u0964\u0965]{_CLOSERS_CLASS}*(?P<sep2>\s*)"
    ),
    re.compile(r"(?P<sep>\s+)"),  # word
)


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units: 1 per BMP code point, 2 per code point above U+FFFF."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2  # a lone surrogate counts 1, never raises


def _fitting_prefix(text: str, limit: int) -> int:
    """The number of leading code points of `text` whose UTF-16 length is at most `limit`."""
    end = min(len(text), limit)  # never more code points than code units
    excess = utf16_length(text[:end]) - limit
    while excess > 0:
        end -= 1
        excess -= 2 if ord(text[end]) > 0xFFFF else 1
    return end


def _is_regional_indicator(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _extends_previous(char: str) -> bool:
    """True for code points that belong to the cluster before them."""
    return (
        unicodedata.category(char) in {"Mn", "Mc", "Me"}  # combining marks, variation selectors, keycap
        or char == _ZWJ
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # emoji skin-tone modifiers
        or "\U000e0020" <= char <= "\U000e007f"  # emoji tag sequences (subdivision flags)
        or "\udc00" <= char <= "\udfff"  # a lone low surrogate continues a lone high one
    )


def is_cut_allowed(text: str, index: int) -> bool:
    """May `text` be cut between text[index - 1] and text[index] without breaking a grapheme cluster?"""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if _extends_previous(after) or before == _ZWJ:
        return False
    if unicodedata.combining(before) == 9 and unicodedata.category(after) == "Lo":
        return False  # virama + consonant: an Indic conjunct (UAX #29 rule GB9c)
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while index - 1 - run >= 0 and _is_regional_indicator(text[index - 1 - run]):
            run += 1
        return run % 2 == 0  # flags are pairs: cut only after an even number of indicators
    return True


def _natural_cut(rest: str, limit: int) -> tuple[int, int] | None:
    """(end of this part, start of the next) at the best separator that fits, if any."""
    window = rest[: limit + _LOOKAHEAD]
    for level in _LEVELS:
        best: tuple[int, int] | None = None
        for match in level.finditer(window):
            group = "sep" if match.group("sep") is not None else "sep2"
            start, end = match.span(group)
            if start > limit:
                break
            if start == 0 or not is_cut_allowed(rest, end):
                continue
            best = (start, end)
        if best is not None:
            return best
    return None


def _hard_cut(rest: str, limit: int) -> int:
    """The last grapheme boundary within the limit (the limit itself if one cluster is longer)."""
    for index in range(limit, 0, -1):
        if is_cut_allowed(rest, index):
            return index
    return limit


def split_text(text: str, limit: int = WHATSAPP_TEXT_LIMIT) -> list[str]:
    """Parts of at most `limit` UTF-16 code units, in order, cut at the most natural boundary."""
    if limit < 2:
        raise ValueError("limit must be at least 2 UTF-16 code units (any one code point)")
    parts: list[str] = []
    rest = text.strip()
    while rest:
        fits = _fitting_prefix(rest, limit)  # the cut searches below work in code points
        if fits == len(rest):
            parts.append(rest)
            break
        cut = _natural_cut(rest, fits)
        if cut is None:
            index = _hard_cut(rest, fits)
            cut = (index, index)
        end, start = cut
        part = rest[:end].rstrip()
        if part:
            parts.append(part)
        rest = rest[start:].lstrip()
    return parts
