"""Destination layouts, safe names, and the checks that keep every write inside its root."""

from pathlib import Path

from hypothesis import given, strategies as st
import pytest

from custom_components.plexus.transfer.errors import PathEscapeError, PathNotAllowedError
from custom_components.plexus.transfer.naming import ParsedName
from custom_components.plexus.transfer.paths import (
    ensure_inside,
    join_inside,
    partial_path,
    plan_destination,
    sanitize_component,
)
from custom_components.plexus.transfer.selection import (
    EpisodeSelection,
    parse_episodes,
    select_episodes,
)


def allow(path: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Title: Subtitle", "Title - Subtitle"),
        ("AC/DC", "AC-DC"),
        ("back\\slash", "back-slash"),
        ("nul\0byte", "nul byte"),
        ("bell\x07and\ttab", "bell and tab"),
        ("What If...?", "What If"),
        ("trailing dots...", "trailing dots"),
        ("trailing space ", "trailing space"),
        ("..", "_"),
        (".", "_"),
        ("", "_"),
        ("...hidden", "hidden"),
        ("CON", "_CON"),
        ("con.mkv", "_con.mkv"),
        ("LPT1.txt", "_LPT1.txt"),
        ("Console", "Console"),
        ('a<b>c"d|e*f', "abcdef"),
    ],
)
def test_sanitize_component(name: str, safe: str) -> None:
    assert sanitize_component(name) == safe


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = "é" * 300 + ".mkv"
    safe = sanitize_component(name)
    assert safe.endswith(".mkv")
    assert len(partial_path(f"/x/{safe}").name.encode()) <= 255


@given(st.text(max_size=80))
def test_sanitised_names_are_one_harmless_component(name: str) -> None:
    safe = sanitize_component(name)
    assert safe
    assert "/" not in safe
    assert "\\" not in safe
    assert "\0" not in safe
    assert safe not in (".", "..")
    assert not safe.endswith((".", " "))
    assert all(ord(ch) >= 32 and ord(ch) != 127 for ch in safe)


def plan(
    root: Path, rel: str, parsed: ParsedName, layout: str = "plex", media: str = "show"
) -> str:
    return plan_destination(
        root,
        layout=layout,  # type: ignore[arg-type]
        rel_path=rel,
        parsed=parsed,
        media_type=media,  # type: ignore[arg-type]
        is_allowed=allow,
    )


def test_plex_layout(tmp_path: Path) -> None:
    """The root is the media type's library folder: no Movies/ or TV/ added under it."""
    movie = ParsedName("movie", "2012", year=2009)
    assert plan(tmp_path, "x/2012.2009.MKV", movie, media="movie") == str(
        tmp_path / "2012 (2009)/2012 (2009).mkv"
    )
    part = ParsedName("movie", "Movie: The Sequel", year=2010, part=2)
    assert plan(tmp_path, "a.avi", part, media="movie") == str(
        tmp_path / "Movie - The Sequel (2010)/Movie - The Sequel (2010) - pt2.avi"
    )
    ep = ParsedName("episode", "Show", season=1, episodes=(2,), episode_title="Pilot/Part 2")
    assert plan(tmp_path, "s.mkv", ep) == str(
        tmp_path / "Show/Season 01/Show - S01E02 - Pilot-Part 2.mkv"
    )
    multi = ParsedName("episode", "Doctor Who", year=2005, season=1, episodes=(3, 4))
    assert plan(tmp_path, "s.mkv", multi) == str(
        tmp_path / "Doctor Who (2005)/Season 01/Doctor Who (2005) - S01E03-E04.mkv"
    )
    special = ParsedName("episode", "Show", season=0, episodes=(1,))
    assert plan(tmp_path, "s.mkv", special) == str(tmp_path / "Show/Specials/Show - S00E01.mkv")
    anime = ParsedName("episode", "One Piece", episodes=(1071,), absolute=True)
    assert plan(tmp_path, "s.mkv", anime) == str(tmp_path / "One Piece/One Piece - 1071.mkv")
    unknown = ParsedName("unknown", "weird")
    assert plan(tmp_path, "Some/weird.mkv", unknown) == str(tmp_path / "Some/weird.mkv")


def test_plex_layout_in_a_folder_shared_by_movies_and_tv(tmp_path: Path) -> None:
    """One destination for both types: Movies/ and TV/ inside it keep the libraries apart."""

    def shared(rel: str, parsed: ParsedName, media: str) -> str:
        return plan_destination(
            tmp_path,
            layout="plex",
            rel_path=rel,
            parsed=parsed,
            media_type=media,  # type: ignore[arg-type]
            is_allowed=allow,
            type_folders=True,
        )

    movie = ParsedName("movie", "Heat", year=1995)
    assert shared("h.mkv", movie, "movie") == str(tmp_path / "Movies/Heat (1995)/Heat (1995).mkv")
    ep = ParsedName("episode", "Show", season=2, episodes=(5,))
    assert shared("s.mkv", ep, "show") == str(tmp_path / "TV/Show/Season 02/Show - S02E05.mkv")
    unknown = ParsedName("unknown", "x")
    assert shared("Odd/x.mkv", unknown, "movie") == str(tmp_path / "Movies/Odd/x.mkv")


def test_mirror_layout_keeps_the_relative_path(tmp_path: Path) -> None:
    parsed = ParsedName("movie", "x")
    assert plan(tmp_path, "Movies2/A (2001)/A (2001).mkv", parsed, "mirror") == str(
        tmp_path / "Movies2/A (2001)/A (2001).mkv"
    )
    # A hostile relative path cannot climb out: ".." becomes "_".
    assert plan(tmp_path, "../../etc/passwd", parsed, "mirror") == str(tmp_path / "_/_/etc/passwd")
    with pytest.raises(ValueError, match="empty relative path"):
        plan(tmp_path, "//", parsed, "mirror")
    with pytest.raises(ValueError, match="unknown layout"):
        plan(tmp_path, "a.mkv", parsed, "flat")


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "Show").symlink_to(outside)
    ep = ParsedName("episode", "Show", season=1, episodes=(1,))
    with pytest.raises(PathEscapeError) as caught:
        plan(root, "s.mkv", ep)
    assert caught.value.root == str(root)
    # A symlinked final file pointing outside is refused too.
    (root / "A (2000)").mkdir(parents=True)
    (root / "A (2000)" / "A (2000).mkv").symlink_to(outside / "target.mkv")
    with pytest.raises(PathEscapeError):
        plan(root, "a.mkv", ParsedName("movie", "A", year=2000), media="movie")


def test_ensure_inside(tmp_path: Path) -> None:
    assert ensure_inside(tmp_path, tmp_path / "a" / "b") == (tmp_path / "a" / "b").resolve()
    with pytest.raises(PathEscapeError):
        ensure_inside(tmp_path, tmp_path / ".." / "x")
    with pytest.raises(PathEscapeError):
        ensure_inside(tmp_path, tmp_path)  # the root itself is not a file inside it


def test_not_allowed_paths_are_refused_naming_them(tmp_path: Path) -> None:
    with pytest.raises(PathNotAllowedError) as caught:
        join_inside(tmp_path, ["a.mkv"], lambda path: False)
    assert caught.value.path == str(tmp_path)
    assert str(tmp_path) in str(caught.value)
    only_root = str(tmp_path)
    with pytest.raises(PathNotAllowedError) as caught:
        join_inside(tmp_path, ["a.mkv"], lambda path: path == only_root)
    assert caught.value.path == str((tmp_path / "a.mkv").resolve())
    with pytest.raises(ValueError, match="no destination path"):
        join_inside(tmp_path, [], allow)


# -- selections ------------------------------------------------------------------------------


def test_parse_episodes() -> None:
    assert parse_episodes("1,3,5-8") == EpisodeSelection(frozenset({1, 3, 5, 6, 7, 8}))
    assert parse_episodes(" 2 , 4 - 5 ") == EpisodeSelection(frozenset({2, 4, 5}))
    assert parse_episodes("new") == EpisodeSelection(new_only=True)
    assert parse_episodes("NEW") == EpisodeSelection(new_only=True)
    assert parse_episodes("") == EpisodeSelection()
    assert parse_episodes(None) == EpisodeSelection()
    assert parse_episodes("all") == EpisodeSelection()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,,2", "empty item"),
        ("a", "'a' in 'a' is not an episode number"),
        ("1-", "is not an episode number or range"),
        ("8-5", "runs backwards"),
        ("1-20000", "too long"),
        ("123456", "too large"),
        ("-3", "is not an episode number"),
        ("1.5", "is not an episode number"),
    ],
)
def test_bad_selections_say_what_was_wrong(text: str, message: str) -> None:
    from custom_components.plexus.transfer.errors import InvalidSelectionError

    with pytest.raises(InvalidSelectionError, match=message):
        parse_episodes(text)


def test_select_episodes() -> None:
    from custom_components.plexus.transfer.models import MediaFile, SyncStatus

    def media(n: int, season: int, episodes: tuple[int, ...]) -> MediaFile:
        parsed = ParsedName("episode", "Show", season=season, episodes=episodes)
        return MediaFile(n, "/r", "show", f"{n}.mkv", f"/r/{n}.mkv", 1, 1, parsed)

    files = [
        media(1, 1, (1,)),
        media(2, 1, (2, 3)),
        media(3, 1, (5,)),
        media(4, 2, (1,)),
        MediaFile(5, "/r", "movie", "m.mkv", "/r/m.mkv", 1, 1, ParsedName("movie", "M")),
    ]
    picked = select_episodes(files, parse_episodes("3,5-8"), season=1)
    assert [m.id for m in picked] == [2, 3]
    assert [m.id for m in select_episodes(files, parse_episodes("all"))] == [1, 2, 3, 4]
    assert [m.id for m in select_episodes(files, parse_episodes(""), season=2)] == [4]
    status = {
        "/r/1.mkv": SyncStatus.SYNCED,
        "/r/2.mkv": SyncStatus.PARTIAL,
        "/r/3.mkv": SyncStatus.CHANGED_AT_SOURCE,
    }
    new = select_episodes(files, parse_episodes("new"), season=1, status=status)
    assert [m.id for m in new] == [2]  # 4 is another season; 3 was copied before
    with pytest.raises(ValueError, match="needs their sync status"):
        select_episodes(files, parse_episodes("new"))
