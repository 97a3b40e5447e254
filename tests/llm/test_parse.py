"""Parsing content-enricher answers into description + keywords."""
from __future__ import annotations

import pytest

from genre_core.llm.parse import derive_keywords, parse_enrichment


def test_labelled_lines_in_either_order():
    a = parse_enrichment("Keywords: space, robots, Adventure\nDescription: A robot explores space.")
    b = parse_enrichment("Description: A robot explores space.\nKeywords: space, robots, Adventure")
    assert a == b
    assert a.description == "A robot explores space."
    assert a.keywords == ["space", "robots", "adventure"] and a.source == "labelled"


def test_markdown_bullets_numbering_and_other_separators():
    out = parse_enrichment("**Description:** A heist in Paris.\n\n**Keywords:** 1. heist; 2. Paris | crime")
    assert out.description == "A heist in Paris."
    assert out.keywords == ["heist", "paris", "crime"]


def test_multiline_keyword_list_and_duplicates():
    out = parse_enrichment("Description: Two friends road-trip.\nKeywords:\n- friendship\n- road trip\n- friendship")
    assert out.keywords == ["friendship", "road trip"]


def test_hashtags_when_no_keywords_label():
    out = parse_enrichment("A noir mystery in rainy Los Angeles. #noir #mystery #LosAngeles")
    assert out.keywords == ["noir", "mystery", "losangeles"] and out.source == "hashtags"
    assert out.description.startswith("A noir mystery")


def test_unlabelled_answer_derives_keywords_from_the_description():
    text = "The film follows a detective. The detective hunts a killer across the city at night."
    out = parse_enrichment(text)
    assert out.source == "derived"
    assert out.description == text
    assert out.keywords[0] == "detective"  # most frequent content word
    assert "the" not in out.keywords and "film" not in out.keywords


def test_keywords_only_answer_uses_them_as_description():
    out = parse_enrichment("Keywords: jazz, new orleans")
    assert out.keywords == ["jazz", "new orleans"] and out.description == "jazz, new orleans"


@pytest.mark.parametrize("bad", ["", "   \n  ", "Keywords:\nDescription:"])
def test_empty_output_raises(bad):
    with pytest.raises(ValueError):
        parse_enrichment(bad)


def test_derive_keywords_ties_keep_first_appearance():
    assert derive_keywords("zebra apple zebra apple mango", k=2) == ["zebra", "apple"]


def test_repeated_and_cut_off_sentences_are_dropped():
    out = parse_enrichment("A toy story. It is a tale of toys. A toy story. The story of the movie is a tale of")
    assert out.description == "A toy story. It is a tale of toys."
    assert parse_enrichment("Only a fragment without end").description == "Only a fragment without end"
