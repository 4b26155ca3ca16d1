"""The in-memory search index: typo tolerance, ranking, filters, add/remove."""

from hypothesis import given, settings, strategies as st

from custom_components.plexus.catalog.search import SearchIndex, _edit_distance_le1, normalise_text


def build(titles: list[str]) -> SearchIndex:
    index = SearchIndex()
    for n, title in enumerate(titles):
        index.add(n, title, "movie", 2000 + n)
    return index


def test_normalise_text() -> None:
    assert normalise_text("  Amélie: The  FABULOUS_destiny!! ") == "amelie the fabulous destiny"
    assert normalise_text("Ⅻ Monkeys") == "xii monkeys"


def test_edit_distance() -> None:
    assert _edit_distance_le1("matrix", "matrix")
    assert _edit_distance_le1("matrix", "matrx")
    assert _edit_distance_le1("matrix", "matrixx")
    assert _edit_distance_le1("matrix", "matirx")
    assert _edit_distance_le1("matrix", "motrix")
    assert not _edit_distance_le1("matrix", "mtarxi")
    assert not _edit_distance_le1("matrix", "mat")


def test_ranking_prefers_full_and_exact_matches() -> None:
    index = build(
        ["Star Wars", "Star Trek", "Wars of the Roses", "The Star", "Star Wars Holiday Special"]
    )
    hits = index.search("star wars")
    assert [n for n, _ in hits[:2]] == [0, 4]
    assert hits[0][1] == 1.0
    assert index.search("stra wras")[0][0] == 0


def test_filters_and_removal() -> None:
    index = SearchIndex()
    index.add(1, "Dune", "movie", 1984)
    index.add(2, "Dune", "movie", 2021)
    index.add(3, "Dune", "show", 2000)
    assert {n for n, _ in index.search("dune", year=2021)} == {2}
    assert {n for n, _ in index.search("dune", types=["show"])} == {3}
    index.remove(2)
    index.remove(99)
    assert {n for n, _ in index.search("dnue")} == {1, 3}
    index.add(1, "Arrival", "movie", 2016)  # re-adding replaces
    assert {n for n, _ in index.search("dune")} == {3}
    assert len(index) == 2
    assert index.search("dune", limit=0) == []
    assert index.search("!!!") == []


def test_common_words_do_not_hide_rare_ones() -> None:
    titles = [f"The Episode {n}" for n in range(3000)] + ["The Lighthouse"]
    index = build(titles)
    assert index.search("the lighthuose")[0][0] == 3000


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=10)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(_word, min_size=1, max_size=4).map(" ".join), min_size=1, max_size=30, unique=True
    ),
    st.data(),
)
def test_property_exact_and_one_typo_titles_are_found(
    titles: list[str], data: st.DataObject
) -> None:
    index = build(titles)
    n = data.draw(st.integers(0, len(titles) - 1))
    title = titles[n]
    found = [i for i, _ in index.search(title, limit=len(titles))]
    assert n in found
    words = title.split()
    k = data.draw(st.integers(0, len(words) - 1))
    pos = data.draw(st.integers(0, len(words[k]) - 1))
    words[k] = words[k][:pos] + words[k][pos + 1 :]  # one deletion
    typo = " ".join(w for w in words if w)
    if typo:
        assert n in [i for i, _ in index.search(typo, limit=len(titles))]


@given(st.text(max_size=40))
def test_property_any_query_is_safe(query: str) -> None:
    index = build(["Alpha Beta", "Gamma"])
    for item_id, score in index.search(query):
        assert item_id in (0, 1)
        assert 0 <= score <= 1
