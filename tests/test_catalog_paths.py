"""Path mapping: prefix order, component boundaries, Windows and UNC forms, suggestions."""

from hypothesis import given, strategies as st
import pytest

from custom_components.plexus.catalog.paths import (
    MappedPath,
    PathMapper,
    PathMapping,
    normalise_path,
    split_path,
    suggest_mappings,
)


def test_longest_prefix_wins_whatever_the_order() -> None:
    mapper = PathMapper(
        [("/data", "/mnt/all"), ("/data/movies", "/mnt/movies"), ("/data/movies/4k", "/mnt/uhd")]
    )
    assert mapper.map("/data/movies/4k/A (2000)/a.mkv").local_path == "/mnt/uhd/A (2000)/a.mkv"
    assert mapper.map("/data/movies/B/b.mkv").local_path == "/mnt/movies/B/b.mkv"
    assert mapper.map("/data/tv/S/e.mkv").local_path == "/mnt/all/tv/S/e.mkv"
    reversed_mapper = PathMapper(list(reversed(mapper.mappings)))
    assert reversed_mapper.map("/data/movies/B/b.mkv").local_path == "/mnt/movies/B/b.mkv"


def test_first_mapping_breaks_ties() -> None:
    mapper = PathMapper([("D:\\Media", "/a"), ("d:/media", "/b")])
    result = mapper.map("D:\\Media\\x.mkv")
    assert result.local_path == "/a/x.mkv"
    assert result.mapping == PathMapping("D:\\Media", "/a")


def test_component_boundaries() -> None:
    mapper = PathMapper([("/data/movies", "/mnt/movies")])
    assert mapper.map("/data/movies2/x.mkv") == MappedPath(
        "/data/movies2/x.mkv", "/data/movies2/x.mkv", False
    )
    assert mapper.map("/data/movies").local_path == "/mnt/movies"
    assert mapper.map("/data/movies/").local_path == "/mnt/movies"
    assert mapper.map_dir("/data/movies2") is None
    assert mapper.map_dir("/data/movies/x") == "/mnt/movies/x"


def test_posix_is_case_sensitive_and_separators_collapse() -> None:
    mapper = PathMapper([("/Data/Movies/", "/mnt/movies/")])
    assert not mapper.map("/data/movies/x.mkv").mapped
    assert mapper.map("/Data//Movies/./x.mkv").local_path == "/mnt/movies/x.mkv"


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("D:\\Media\\Movies\\A (2000)\\a.mkv", "/mnt/media/Movies/A (2000)/a.mkv"),
        ("d:\\media\\Movies\\a.mkv", "/mnt/media/Movies/a.mkv"),
        ("D:/Media/Movies/a.mkv", "/mnt/media/Movies/a.mkv"),
        ("D:\\MEDIA\\a.mkv", "/mnt/media/a.mkv"),
    ],
)
def test_windows_drive(plex_path: str, expected: str) -> None:
    mapper = PathMapper([("D:\\Media", "/mnt/media")])
    result = mapper.map(plex_path)
    assert result.mapped
    assert result.local_path == expected


def test_windows_other_drive_and_boundary() -> None:
    mapper = PathMapper([("D:\\Media", "/mnt/media")])
    assert not mapper.map("E:\\Media\\a.mkv").mapped
    assert not mapper.map("D:\\Media2\\a.mkv").mapped
    assert not mapper.map("/Media/a.mkv").mapped


@pytest.mark.parametrize(
    "plex_path",
    ["\\\\nas\\share\\Movies\\a.mkv", "//nas/share/Movies/a.mkv", "\\\\NAS\\Share\\Movies\\a.mkv"],
)
def test_unc(plex_path: str) -> None:
    mapper = PathMapper([("\\\\nas\\share", "/mnt/nas")])
    assert mapper.map(plex_path).local_path == "/mnt/nas/Movies/a.mkv"


def test_unc_other_share_not_mapped() -> None:
    mapper = PathMapper([("\\\\nas\\share", "/mnt/nas")])
    assert not mapper.map("\\\\nas\\share2\\a.mkv").mapped
    assert not mapper.map("\\\\other\\share\\a.mkv").mapped


def test_local_windows_target() -> None:
    mapper = PathMapper([("/data", "\\\\nas\\media"), ("/srv", "E:/Plex")])
    assert mapper.map("/data/Movies/a.mkv").local_path == "\\\\nas\\media\\Movies\\a.mkv"
    assert mapper.map("/srv/x/y.mkv").local_path == "E:\\Plex\\x\\y.mkv"


def test_unmapped_kept_and_flagged() -> None:
    mapper = PathMapper()
    result = mapper.map("C:\\odd path\\x.avi")
    assert result == MappedPath("C:\\odd path\\x.avi", "C:\\odd path\\x.avi", False, None)


def test_normalise_and_split() -> None:
    assert normalise_path("d:/Media//Movies/") == "D:\\Media\\Movies"
    assert normalise_path("//nas/share/x") == "\\\\nas\\share\\x"
    assert normalise_path("/a//b/./c/") == "/a/b/c"
    assert split_path("D:").parts == ()
    assert split_path("\\\\nas\\share").anchor == "//nas/share"


def test_suggest_common_parent() -> None:
    assert suggest_mappings(["/data/media/movies", "/data/media/tv"], "/mnt/nas") == [
        PathMapping("/data/media", "/mnt/nas")
    ]


def test_suggest_per_root_without_common_parent() -> None:
    assert suggest_mappings(["D:\\Movies", "E:\\TV", "D:\\Movies"], "/mnt/plex") == [
        PathMapping("D:\\Movies", "/mnt/plex/Movies"),
        PathMapping("E:\\TV", "/mnt/plex/TV"),
    ]
    assert suggest_mappings(["/storage/movies"], "/media") == [
        PathMapping("/storage/movies", "/media/movies")
    ]
    assert suggest_mappings([], "/media") == []
    assert suggest_mappings(["", "  "], "/media") == []


def test_suggest_checks_existence() -> None:
    existing = {"/mnt/nas/movies", "/mnt/nas/tv"}
    suggestions = suggest_mappings(
        ["/data/media/movies", "/data/tv"], "/mnt/nas", exists=existing.__contains__
    )
    assert suggestions == [
        PathMapping("/data/media/movies", "/mnt/nas/movies"),
        PathMapping("/data/tv", "/mnt/nas/tv"),
    ]
    # The common parent is used when every root is there under it.
    existing = {"/mnt/nas/movies", "/mnt/nas/tv"}
    assert suggest_mappings(["/x/a/movies"], "/mnt/nas", exists=existing.__contains__) == [
        PathMapping("/x/a/movies", "/mnt/nas/movies")
    ]
    assert suggest_mappings(["/x/a/b/c"], "/mnt/nas", exists=lambda p: p == "/mnt/nas/a/b/c") == [
        PathMapping("/x/a/b/c", "/mnt/nas/a/b/c")
    ]
    assert suggest_mappings(
        ["/data/movies", "/data/tv"], "/mnt/nas", exists=existing.__contains__
    ) == [PathMapping("/data", "/mnt/nas")]


def test_suggestions_map_the_roots() -> None:
    roots = ["/data/media/movies", "/data/media/tv", "\\\\nas\\share\\Music"]
    mapper = PathMapper(suggest_mappings(roots, "/mnt/x"))
    assert all(mapper.map(root + "/a").mapped for root in roots[:2])
    assert mapper.map("\\\\nas\\share\\Music\\a.flac").mapped


_component = st.text(
    alphabet=st.characters(blacklist_characters="/\\", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda s: s.strip() == s and s not in (".",) and ":" not in s)


@given(st.lists(_component, min_size=1, max_size=4), st.lists(_component, max_size=4))
def test_property_posix_prefix_maps(prefix: list[str], rest: list[str]) -> None:
    plex_prefix = "/" + "/".join(prefix)
    mapper = PathMapper([(plex_prefix, "/local")])
    result = mapper.map("/" + "/".join(prefix + rest))
    assert result.mapped
    assert result.local_path == "/" + "/".join(["local", *rest])


@given(st.lists(_component, min_size=1, max_size=4), _component, st.lists(_component, max_size=3))
def test_property_boundary(prefix: list[str], suffix: str, rest: list[str]) -> None:
    mapper = PathMapper([("/" + "/".join(prefix), "/local")])
    sibling = "/" + "/".join([*prefix[:-1], prefix[-1] + suffix, *rest])
    assert not mapper.map(sibling).mapped


@given(
    st.lists(_component, min_size=1, max_size=4), st.lists(_component, max_size=4), st.booleans()
)
def test_property_windows_forms_agree(prefix: list[str], rest: list[str], unc: bool) -> None:
    anchor_bs, anchor_fs = ("\\\\srv\\share\\", "//srv/share/") if unc else ("D:\\", "d:/")
    mapper = PathMapper([(anchor_bs + "\\".join(prefix), "/local")])
    a = mapper.map(anchor_bs + "\\".join(prefix + rest))
    b = mapper.map(anchor_fs + "/".join([p.upper() for p in prefix] + rest))
    assert a.mapped
    assert b.mapped
    assert a.local_path == b.local_path


@given(
    st.text(max_size=40),
    st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), max_size=4),
)
def test_property_never_raises(path: str, mappings: list[tuple[str, str]]) -> None:
    result = PathMapper(mappings).map(path)
    assert result.plex_path == path
    if not result.mapped:
        assert result.local_path == path
