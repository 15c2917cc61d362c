"""split_text: WhatsApp-sized parts cut at natural boundaries, never inside a grapheme cluster."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wa_assistant.whatsapp.text_split import WHATSAPP_TEXT_LIMIT, is_cut_allowed, split_text, utf16_length

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl: 8 UTF-16 units, 1 grapheme
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"  # thumbs up + skin tone modifier
FLAG_INDIA = "\U0001f1ee\U0001f1f3"
NAMASTE = "नमस्ते"  # न म स ् त े: clusters न | म | स्ते
E_ACUTE_DECOMPOSED = "e\u0301"


def assert_parts_reproduce(text: str, parts: list[str]) -> None:
    """Parts appear in order in the text, separated only by whitespace."""
    position = 0
    for part in parts:
        found = text.find(part, position)
        assert found >= 0, f"part not found in order: {part[:30]!r}"
        assert text[position:found].strip() == "", "non-whitespace text was dropped"
        position = found + len(part)
    assert text[position:].strip() == ""


def test_short_text_is_one_part() -> None:
    assert split_text("  Hello there!  ") == ["Hello there!"]


def test_text_of_exactly_the_limit_is_one_part() -> None:
    text = "a" * WHATSAPP_TEXT_LIMIT
    assert split_text(text) == [text]


def test_blank_text_has_no_parts() -> None:
    assert split_text(" \n\t ") == []


def test_limit_must_hold_any_code_point() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_text("abc", 0)
    with pytest.raises(ValueError, match="limit"):
        split_text("abc", 1)  # an emoji is 2 UTF-16 code units


def test_length_is_counted_in_utf16_code_units() -> None:
    assert utf16_length("abc") == 3
    assert utf16_length("é") == 1
    assert utf16_length("\U0001f44d") == 2  # outside the BMP: a surrogate pair
    assert utf16_length(FLAG_INDIA) == 4
    assert utf16_length(FAMILY) == 8
    assert utf16_length("\ud83d") == 1  # a lone surrogate still counts, never raises


def test_three_thousand_flags_are_sent_in_parts_graph_accepts() -> None:
    text = FLAG_INDIA * 3000  # 6,000 code points, 12,000 UTF-16 code units
    parts = split_text(text)
    assert [utf16_length(part) for part in parts] == [4096, 4096, 3808]
    assert all(utf16_length(part) % 4 == 0 for part in parts)  # never half a flag
    assert "".join(parts) == text


def test_emoji_text_at_the_code_point_limit_is_split() -> None:
    text = "\U0001f600" * WHATSAPP_TEXT_LIMIT  # 4,096 code points but 8,192 UTF-16 units
    parts = split_text(text)
    assert [utf16_length(part) for part in parts] == [4096, 4096]


def test_paragraph_break_is_preferred_to_a_later_sentence_end() -> None:
    text = "First paragraph.\n\nSecond one. It goes on and on."
    assert split_text(text, 40) == ["First paragraph.", "Second one. It goes on and on."]


def test_line_break_is_preferred_to_a_sentence_end() -> None:
    text = "Item one. Still one\nItem two is longer"
    assert split_text(text, 25) == ["Item one. Still one", "Item two is longer"]


def test_sentence_end_is_preferred_to_a_space() -> None:
    text = "Short one. Then a longer sentence follows"
    assert split_text(text, 30) == ["Short one.", "Then a longer sentence follows"]


def test_sentence_end_keeps_closing_quotes_and_brackets() -> None:
    text = 'He said "yes." (Really!) And then left the shop'
    assert split_text(text, 26) == ['He said "yes." (Really!)', "And then left the shop"]


def test_cjk_sentence_end_needs_no_space() -> None:
    full_stop, exclamation, question = "\u3002", "\uff01", "\uff1f"
    sentences = [f"这是第一句{full_stop}", f"这是第二句{exclamation}", f"这是第三句{question}"]
    assert split_text("".join(sentences), 7) == sentences


def test_devanagari_danda_ends_a_sentence() -> None:
    text = "यह पहला वाक्य है। यह दूसरा वाक्य है।"
    assert split_text(text, 20) == ["यह पहला वाक्य है।", "यह दूसरा वाक्य है।"]


def test_word_boundary_when_no_sentence_fits() -> None:
    assert split_text("alpha beta gamma delta", 12) == ["alpha beta", "gamma delta"]


def test_hard_cut_only_for_a_word_longer_than_the_limit() -> None:
    assert split_text("abcdefghij klm", 4) == ["abcd", "efgh", "ij", "klm"]


def test_every_part_of_a_real_size_reply_fits() -> None:
    text = " ".join(f"Sentence number {i} talks about something useful." for i in range(600))
    parts = split_text(text)
    assert len(parts) > 1
    assert all(utf16_length(part) <= WHATSAPP_TEXT_LIMIT for part in parts)
    assert all(part.endswith(".") for part in parts)  # every cut at a sentence end
    assert_parts_reproduce(text, parts)


@pytest.mark.parametrize(
    ("cluster", "name"),
    [
        (FAMILY, "zwj-family"),
        (THUMBS_MEDIUM, "skin-tone"),
        (FLAG_INDIA, "flag"),
        ("1\ufe0f\u20e3", "keycap"),
        (E_ACUTE_DECOMPOSED, "combining-accent"),
        ("स्ते", "devanagari-conjunct"),
    ],
)
def test_hard_cut_moves_back_before_a_cluster_that_straddles_the_limit(cluster: str, name: str) -> None:
    limit = 10
    text = "x" * (limit - 1) + cluster + "yyyy"
    parts = split_text(text, limit)
    assert parts[0] == "x" * (limit - 1), name
    assert parts[1].startswith(cluster), name
    assert "".join(parts) == text


def test_namaste_is_cut_only_between_its_clusters() -> None:
    allowed = [i for i in range(1, len(NAMASTE)) if is_cut_allowed(NAMASTE, i)]
    assert allowed == [1, 2]  # न|म|स्ते


def test_flags_are_cut_between_pairs_only() -> None:
    flags = FLAG_INDIA * 3
    allowed = [i for i in range(1, len(flags)) if is_cut_allowed(flags, i)]
    assert allowed == [2, 4]


def test_crlf_is_not_cut() -> None:
    assert not is_cut_allowed("a\r\nb", 2)


def test_a_cluster_longer_than_the_limit_is_still_cut() -> None:
    text = "a" + "\u0301" * 20
    parts = split_text(text, 8)
    assert all(utf16_length(part) <= 8 for part in parts)
    assert "".join(parts) == text
    flags = FLAG_INDIA + "\U000e0067" * 5  # a flag glued to tag characters: 14 units, no cut allowed
    parts = split_text(flags, 5)
    assert all(utf16_length(part) <= 5 for part in parts)
    assert "".join(parts) == flags


def test_emoji_and_hindi_reply_near_the_limit() -> None:
    sentence = "नमस्ते! क्या यह दूसरे रंग में आता है? 🙏😊 " + FAMILY + " Ça coûte combien? "
    text = sentence * 200
    parts = split_text(text)
    assert all(utf16_length(part) <= WHATSAPP_TEXT_LIMIT for part in parts)
    for part in parts:
        assert part == part.strip()
    assert_parts_reproduce(text, parts)
    boundaries = []
    position = 0
    for part in parts:
        position = text.find(part, position)
        boundaries += [position, position + len(part)]
        position += len(part)
    assert all(is_cut_allowed(text, index) for index in boundaries)


# ------------------------------------------------------------------ properties

CLUSTERS = [
    "\n\n",
    "。",
    "।",
    FAMILY,
    THUMBS_MEDIUM,
    FLAG_INDIA,
    E_ACUTE_DECOMPOSED,
    "स्ते",
    "1\ufe0f\u20e3",
    "\r\n",
]
SHORT_CLUSTERS = st.sampled_from([*"abc xyz.!?\n\t,", *CLUSTERS])
"""Pieces whose clusters are at most 8 UTF-16 code units long."""
ANY_PIECES = st.sampled_from([*"abc xyz.!?\n\t,", *CLUSTERS, "\u200d", "\ufe0f", "\u0301"])
"""Also lone joiners and marks, which can glue pieces into clusters longer than the limit."""


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(ANY_PIECES, max_size=200), limit=st.integers(min_value=2, max_value=40))
def test_parts_fit_are_not_empty_and_keep_order_and_content(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    parts = split_text(text, limit)
    assert all(0 < utf16_length(part) <= limit for part in parts)
    assert all(part.strip() == part and part for part in parts)
    assert_parts_reproduce(text, parts)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), limit=st.integers(min_value=2, max_value=50))
def test_any_unicode_text_is_split_losslessly(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(0 < utf16_length(part) <= limit for part in parts)
    assert_parts_reproduce(text, parts)


ASTRAL_HEAVY = st.lists(
    st.one_of(
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji: 2 UTF-16 units each
        st.sampled_from([" ", "\n", ".", "a", "\u200d", FLAG_INDIA, FAMILY, THUMBS_MEDIUM]),
    ),
    max_size=300,
).map("".join)
"""Mostly characters outside the BMP, where code points and UTF-16 code units differ."""


@settings(max_examples=200, deadline=None)
@given(text=ASTRAL_HEAVY, limit=st.integers(min_value=2, max_value=60))
def test_every_part_fits_in_utf16_code_units_and_parts_rejoin_to_the_text(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(0 < len(part.encode("utf-16-le")) // 2 <= limit for part in parts)
    assert_parts_reproduce(text, parts)


@settings(max_examples=20, deadline=None)
@given(text=ASTRAL_HEAVY.map(lambda t: t * 40))
def test_every_part_of_a_long_emoji_reply_fits_whatsapps_limit(text: str) -> None:
    parts = split_text(text)
    assert all(len(part.encode("utf-16-le")) // 2 <= WHATSAPP_TEXT_LIMIT for part in parts)
    assert_parts_reproduce(text, parts)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(SHORT_CLUSTERS, max_size=120), limit=st.integers(min_value=8, max_value=40))
def test_cuts_fall_on_grapheme_boundaries_when_clusters_are_short(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    parts = split_text(text, limit)
    position = 0
    for part in parts:
        start = text.find(part, position)
        end = start + len(part)
        assert is_cut_allowed(text, start)
        assert is_cut_allowed(text, end)
        position = end
