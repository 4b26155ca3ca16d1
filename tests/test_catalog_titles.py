"""Title keys and match confidence: the spellings sources use fold together; the scale holds."""

from hypothesis import given, strategies as st
import pytest

from custom_components.plexus.catalog.titles import (
    YEAR_MISSING,
    YEAR_OFF_BY_ONE,
    match_confidence,
    split_title,
    title_key,
    title_similarity,
)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Office, The", "The Office"),
        ("the office", "The Office"),
        ("THE OFFICE", "The Office"),
        ("The Office (US)", "The Office"),
        ("The Office (2005)", "The Office"),
        ("Law and Order", "Law & Order"),
        ("Amelie", "Amélie"),
        ("Pokemon", "Pokémon"),
        ("Rocky 2", "Rocky II"),
        ("Marvels Agents of SHIELD", "Marvel's Agents of S.H.I.E.L.D."),
        ("MASH", "M*A*S*H"),
        ("Bob\u2019s Burgers", "Bob's Burgers"),
        ("A-Team", "The A-Team"),
        ("Mr Robot", "Mr. Robot"),
        ("Spider Man: Homecoming", "Spider-Man - Homecoming"),
        ("Shameless (UK, 2011)", "Shameless"),
        ("Dune - 2021", "Dune"),
    ],
)
def test_spellings_fold_to_one_key(written: str, canonical: str) -> None:
    assert title_key(written) == title_key(canonical)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Alien", "Aliens"),
        ("Blade Runner", "Blade Runner 2049"),
        ("The Office", "The Office Christmas Special"),
        ("Batman", "Batman Returns"),
        ("Die Hard", "Hard"),
    ],
)
def test_different_titles_keep_different_keys(a: str, b: str) -> None:
    assert title_key(a) != title_key(b)


def test_split_title_returns_year_and_country() -> None:
    assert split_title("The Office (US)") == split_title("Office, The (us)")
    parts = split_title("Shameless (UK, 2011)")
    assert (parts.key, parts.year, parts.country) == ("shameless", 2011, "uk")
    assert split_title("Amélie (2001)").year == 2001
    # A title that is a year, or ends in a number that is part of it, keeps it.
    assert split_title("1917").key == "1917"
    assert split_title("Blade Runner 2049") == split_title("blade runner 2049")
    assert split_title("Blade Runner 2049").year is None
    # A parenthesis that is not a year or country is part of the title.
    assert split_title("(500) Days of Summer").key == "500 days of summer"
    assert split_title("Thing (Director's Cut)").key == "thing directors cut"


def test_confidence_scale() -> None:
    assert match_confidence("The Office", "Office, The", year=2005, candidate_year=2005) == 1.0
    assert match_confidence("The Office", "The Office") == 1.0 - YEAR_MISSING
    assert match_confidence("Dune", "Dune", year=2021, candidate_year=2020) == 1.0 - YEAR_OFF_BY_ONE
    # A year in the title counts when none is given.
    assert match_confidence("Dune (2021)", "Dune", candidate_year=2021) == 1.0
    # Another decade: a remake, not the item.
    assert match_confidence("Dune", "Dune", year=2021, candidate_year=1984) <= 0.6
    # Another type is never a match.
    assert match_confidence("Fargo", "Fargo", item_type="show", candidate_type="movie") <= 0.5
    # The Office (UK) is not The Office (US).
    assert match_confidence("The Office (US)", "The Office (UK)") < 0.9
    # Near titles stay below the threshold.
    assert match_confidence("Alien", "Aliens", year=1979, candidate_year=1986) < 0.9
    assert match_confidence("Batman", "Batman Returns") < 0.9
    assert match_confidence("Alien", "Aliens") < 0.9


def test_similarity_is_one_only_for_equal_keys() -> None:
    assert title_similarity("office", "office") == 1.0
    assert title_similarity("office", "offices") < 1.0
    assert title_similarity("", "office") == 0.0


@given(st.text(max_size=60), st.text(max_size=60), st.none() | st.integers(1800, 2100))
def test_confidence_is_bounded_and_never_raises(a: str, b: str, year: int | None) -> None:
    score = match_confidence(a, b, year=year, candidate_year=2000)
    assert 0.0 <= score <= 1.0
    assert isinstance(title_key(a), str)
