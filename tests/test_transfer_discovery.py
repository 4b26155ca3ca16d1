"""Discovery: name parsing (fast path and guessit), incremental scans into the database."""

# ruff: noqa: ASYNC240  (tests build their temp trees directly)

import asyncio
from collections.abc import Callable, Iterator
import logging
import os
from pathlib import Path
import uuid

import pytest
from sqlalchemy import create_engine, text

from custom_components.plexus.transfer import discovery as discovery_mod
from custom_components.plexus.transfer.discovery import Discovery, is_video
from custom_components.plexus.transfer.models import ScanOptions, ScanProgress, SourceRoot
from custom_components.plexus.transfer.naming import (
    ParsedName,
    fast_parse,
    guessit_parse,
    parse_name,
)
from custom_components.plexus.transfer.store import TransferStore
from tests.conftest import PG_URL


async def run_sync[T](func: Callable[[], T]) -> T:
    return await asyncio.to_thread(func)


@pytest.mark.parametrize(
    ("rel", "media_type", "kind", "title", "year", "season", "episodes", "absolute", "part"),
    [
        ("Show.S01E01E02.720p.mkv", "show", "episode", "Show", None, 1, (1, 2), False, None),
        ("Show - S01E01-E03.mkv", "show", "episode", "Show", None, 1, (1, 2, 3), False, None),
        ("2012 (2009).mkv", "movie", "movie", "2012", 2009, None, (), False, None),
        ("Doctor Who (2005) S01E01.mkv", "show", "episode", "Doctor Who", 2005, 1, (1,), False,
         None),
        ("[Group] Show - 123 [1080p].mkv", "show", "episode", "Show", None, None, (123,), True,
         None),
        ("Naruto Shippuden - 123.mkv", "show", "episode", "Naruto Shippuden", None, None, (123,),
         True, None),
        ("Movie Title (2010) - pt1.mkv", "movie", "movie", "Movie Title", 2010, None, (), False, 1),
        ("Movie.Title.2010.CD2.avi", "movie", "movie", "Movie Title", 2010, None, (), False, 2),
        ("Blade Runner 2049 (2017).mkv", "movie", "movie", "Blade Runner 2049", 2017, None, (),
         False, None),
        ("Blade.Runner.2049.2017.1080p.BluRay.x264.mkv", "movie", "movie", "Blade Runner 2049",
         2017, None, (), False, None),
        ("Show/Season 2/05 - Title.mkv", "show", "episode", "Show", None, 2, (5,), False, None),
        ("Show/Specials/Show - S00E01.mkv", "show", "episode", "Show", None, 0, (1,), False, None),
    ],
)  # fmt: skip
def test_tricky_names(  # noqa: PLR0917
    rel: str,
    media_type: str,
    kind: str,
    title: str,
    year: int | None,
    season: int | None,
    episodes: tuple[int, ...],
    absolute: bool,
    part: int | None,
) -> None:
    parsed = parse_name(rel, media_type)  # type: ignore[arg-type]
    assert (parsed.kind, parsed.title, parsed.year, parsed.season) == (kind, title, year, season)
    assert parsed.episodes == episodes
    assert parsed.absolute is absolute
    assert parsed.part == part


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("Breaking.Bad.S01E02.720p.HDTV.x264-GRP.mkv", "show"),
        ("Show.Name.S01E02.mkv", "show"),
        ("Fargo (2014) - S01E01 - The Crocodile's Dilemma.mkv", "show"),
        ("Show - S03E10 - The One, With Commas.mkv", "show"),
        ("Doctor Who (2005) - S01E01.mkv", "show"),
        ("The.Matrix.1999.1080p.BluRay.x264-GRP.mkv", "movie"),
        ("2001 A Space Odyssey (1968).mkv", "movie"),
        ("2012 (2009).mkv", "movie"),
        ("Se7en (1995).mkv", "movie"),
        ("Alien (1979) {edition-Director's Cut}.mkv", "movie"),
        ("Amélie (2001).mkv", "movie"),
        ("Show.S01E01E02.720p.mkv", "show"),  # multi-episode list
        ("Show - S01E01-E03.mkv", "show"),  # multi-episode range
        ("Doctor.Who.2005.S01E03E04.720p.WEB.mkv", "show"),  # scene style with the show's year
        ("[Group] Show - 123 [1080p].mkv", "show"),  # anime, absolute number
        ("Naruto Shippuden - 123.mkv", "show"),
        ("[Sub] One Piece - 1071 [1080p] [ABCD1234].mkv", "show"),
        ("Movie Title (2010) - pt1.mkv", "movie"),  # multi-part
        ("Movie Title (2010) - part 2.mkv", "movie"),
    ],
)
def test_fast_path_agrees_with_guessit(name: str, media_type: str) -> None:
    fast = fast_parse(name, media_type)  # type: ignore[arg-type]
    slow = guessit_parse(name, media_type)  # type: ignore[arg-type]
    assert fast is not None, f"the fast path should read {name}"
    assert fast.parser == "fast"
    assert slow.parser == "guessit"
    assert (fast.kind, fast.title, fast.year, fast.season, fast.episodes) == (
        slow.kind,
        slow.title,
        slow.year,
        slow.season,
        slow.episodes,
    )
    assert fast.episode_title == slow.episode_title
    assert (fast.part, fast.absolute) == (slow.part, slow.absolute)


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("Show - S01E01-03.mkv", "show"),  # a multi-episode form left to guessit
        ("Breaking.Bad.S01E02.Cats.in.the.Bag.mkv", "show"),  # scene episode title
        ("The Office (US) - S02E03.mkv", "show"),  # parentheses that are not a year
        ("Movie.Title.2010.CD2.avi", "movie"),  # scene-style part
        ("Movie Title.mkv", "movie"),  # no year
        ("S01E02.mkv", "show"),  # no show name
        ("Show - S01E05-E02.mkv", "show"),  # a range that runs backwards
        ("Show - S01E01-E99.mkv", "show"),  # a range too long to be real
        ("1883 - S01E01.mkv", "show"),  # a show named by a number only
        ("Show S01E02 (2010).mkv", "movie"),  # an episode in a movie folder
        ("Back to the Future Part 2 (1989).mkv", "movie"),  # "Part 2" in the title itself
        ("Movie Title (2010) extended cut.mkv", "movie"),  # words after the year
        ("The.Matrix.1999.Reloaded.mkv", "movie"),  # scene style, a word after the year
    ],
)
def test_fast_path_leaves_the_hard_names_to_guessit(name: str, media_type: str) -> None:
    assert fast_parse(name, media_type) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["[1080p].mkv", "1080p.x264.mkv"])
def test_a_name_of_release_tags_only_is_unknown_under_its_own_name(name: str) -> None:
    """guessit finds no title: the file is listed as unknown by its name, not as a movie "1080p"."""
    for media_type in ("movie", "show"):
        parsed = guessit_parse(name, media_type)  # type: ignore[arg-type]
        assert (parsed.kind, parsed.title, parsed.parser) == ("unknown", name[:-4], "guessit")


def test_unparseable_names_are_unknown_not_errors() -> None:
    parsed = parse_name("random/.mkv", "show")
    assert parsed.kind in ("unknown", "episode")
    weird = parse_name("folder/???.mkv", "movie")
    assert isinstance(weird, ParsedName)
    assert weird.title


def test_video_filter() -> None:
    options = ScanOptions()
    assert is_video("Movie (2010).mkv", options)
    assert is_video("Movie (2010).MP4", options)
    assert not is_video("Movie (2010).nfo", options)
    assert not is_video("Movie (2010)-trailer.mkv", options)
    assert not is_video("movie.sample.mkv", options)
    assert not is_video("sample.mkv", options)
    assert not is_video(".hidden.mkv", options)
    assert not is_video("noextension", options)
    assert is_video("clip.webm", ScanOptions(extensions=frozenset({".webm"})))
    assert not is_video("clip.mkv", ScanOptions(extensions=frozenset({".webm"})))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TransferStore]:
    if request.param == "postgresql":
        request.getfixturevalue("socket_enabled")
        st = TransferStore(PG_URL, schema=f"plexus_transfer_{uuid.uuid4().hex[:12]}")
    else:
        st = TransferStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        yield st
    finally:
        if request.param == "postgresql":
            st.drop_all()
        st.close()


def write(root: Path, rel: str, data: bytes = b"x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def roots(tmp_path: Path) -> list[SourceRoot]:
    movies, movies2 = tmp_path / "Movies", tmp_path / "Movies2"
    tv, tv2 = tmp_path / "TV", tmp_path / "TV2"
    write(movies, "2012 (2009)/2012 (2009).mkv")
    write(movies, "2012 (2009)/2012 (2009)-trailer.mkv")  # a local extra
    write(movies, "2012 (2009)/Trailers/Teaser.mkv")  # an extras folder
    write(movies, "2012 (2009)/2012 (2009).nfo")  # not a video
    write(movies2, "Movie Title (2010)/Movie Title (2010) - pt1.mkv")
    write(movies2, "Movie Title (2010)/Movie Title (2010) - pt2.mkv")
    write(movies2, "Movie Title (2010)/Sample/sample.mkv")
    write(tv, "Doctor Who (2005)/Season 01/Doctor Who (2005) - S01E01 - Rose.mkv")
    write(tv, "Doctor Who (2005)/Season 01/Doctor Who (2005) - S01E02.mkv")
    write(tv, "Doctor Who (2005)/Season 01/Doctor.Who.2005.S01E03E04.mkv")
    write(tv, "Doctor Who (2005)/Featurettes/Making of.mkv")
    write(tv2, "One Piece/[Group] One Piece - 1071 [1080p].mkv")
    write(tv2, ".hidden/Show - S01E01.mkv")
    return [
        SourceRoot(str(movies), "movie"),
        SourceRoot(str(movies2), "movie"),
        SourceRoot(str(tv), "show"),
        SourceRoot(str(tv2), "show"),
    ]


async def test_scan_finds_and_parses_and_skips_extras(
    store: TransferStore, roots: list[SourceRoot]
) -> None:
    updates: list[ScanProgress] = []
    discovery = Discovery(store, run_sync)
    result = await discovery.scan(roots, progress=updates.append)
    assert (result.seen, result.added, result.unchanged, result.removed) == (7, 7, 0, 0)
    assert result.parsed_fast + result.parsed_guessit == 7
    assert result.missing_roots == []
    assert [u.root for u in updates] == [os.path.normpath(r.path) for r in roots]

    movies = await discovery.files(kind="movie")
    assert sorted((m.parsed.title, m.parsed.year, m.parsed.part) for m in movies) == [
        ("2012", 2009, None),
        ("Movie Title", 2010, 1),
        ("Movie Title", 2010, 2),
    ]
    who = await discovery.files(kind="episode", title="doctor who", season=1)
    assert [m.parsed.episodes for m in who] == [(1,), (2,), (3, 4)]
    assert who[0].parsed.episode_title == "Rose"
    assert who[0].rel_path == "Doctor Who (2005)/Season 01/Doctor Who (2005) - S01E01 - Rose.mkv"
    anime = await discovery.files(title="One Piece")
    assert anime[0].parsed.absolute
    assert anime[0].parsed.episodes == (1071,)


async def test_a_name_that_is_not_utf8_is_skipped_and_the_rest_scanned(
    store: TransferStore, tmp_path: Path
) -> None:
    """A Latin-1 file name and a Latin-1 folder (b"Caf\\xe9") beside a good file.

    Before: the scan failed with a UnicodeEncodeError and recorded nothing.
    """
    root = tmp_path / "Movies"
    write(root, "Good (2002)/Good (2002).mkv")
    raw = os.fsencode(root)
    os.mkdir(raw + b"/Caf\xe9 (1999)")  # noqa: PTH102 - a bytes path
    for name in (b"/Caf\xe9 (1999)/Caf\xe9 (1999).mkv", b"/Na\xefve (2003).mkv"):
        os.close(os.open(raw + name, os.O_CREAT | os.O_WRONLY))
    discovery = Discovery(store, run_sync)
    result = await discovery.scan([SourceRoot(str(root), "movie")])
    assert (result.seen, result.added) == (1, 1)
    assert [m.parsed.title for m in await discovery.files(kind="movie")] == ["Good"]


async def test_rescan_parses_only_what_is_new_or_changed(
    store: TransferStore,
    roots: list[SourceRoot],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    discovery = Discovery(store, run_sync)
    await discovery.scan(roots)
    parsed: list[str] = []
    real = discovery_mod.parse_name  # type: ignore[attr-defined]

    def counting(rel: str, media_type: str) -> ParsedName:
        parsed.append(rel)
        return real(rel, media_type)  # type: ignore[arg-type]

    monkeypatch.setattr(discovery_mod, "parse_name", counting)
    again = await discovery.scan(roots)
    assert (again.seen, again.unchanged, again.added, again.changed, again.removed) == (
        7, 7, 0, 0, 0,
    )  # fmt: skip
    assert parsed == []

    tv = Path(roots[2].path)
    changed = tv / "Doctor Who (2005)/Season 01/Doctor Who (2005) - S01E02.mkv"
    changed.write_bytes(b"longer now")
    (tv / "Doctor Who (2005)/Season 01/Doctor.Who.2005.S01E03E04.mkv").unlink()
    write(tv, "Doctor Who (2005)/Season 02/Doctor Who (2005) - S02E01.mkv")
    third = await discovery.scan(roots)
    assert (third.added, third.changed, third.removed, third.unchanged) == (1, 1, 1, 5)
    assert sorted(parsed) == [
        "Doctor Who (2005)/Season 01/Doctor Who (2005) - S01E02.mkv",
        "Doctor Who (2005)/Season 02/Doctor Who (2005) - S02E01.mkv",
    ]
    rows = await discovery.files(title="Doctor Who")
    assert sorted((m.parsed.season, m.parsed.episodes) for m in rows) == [
        (1, (1,)), (1, (2,)), (2, (1,)),
    ]  # fmt: skip
    assert next(m for m in rows if m.path == str(changed)).size == len(b"longer now")


async def test_a_link_back_up_the_tree_lists_each_file_once(
    store: TransferStore, roots: list[SourceRoot]
) -> None:
    """A folder link pointing at a parent (a loop) or at a folder already scanned: each video is
    listed once, under its real place, instead of once per trip round the loop."""
    movies = Path(roots[0].path)
    (movies / "2012 (2009)" / "back").symlink_to(movies)
    (movies / "Favourites").symlink_to(movies / "2012 (2009)")
    discovery = Discovery(store, run_sync)
    result = await discovery.scan(roots[:1])
    assert (result.seen, result.added) == (1, 1)
    [movie] = await discovery.files(kind="movie")
    assert movie.rel_path == "2012 (2009)/2012 (2009).mkv"
    assert not discovery.scanning


async def test_an_unmounted_share_keeps_its_rows(
    store: TransferStore, roots: list[SourceRoot], caplog: pytest.LogCaptureFixture
) -> None:
    discovery = Discovery(store, run_sync)
    await discovery.scan(roots)
    tv = Path(roots[2].path)
    tv.rename(tv.with_name("TV-away"))
    tv.mkdir()  # the bare mount point of an unmounted share
    with caplog.at_level(logging.INFO):
        result = await discovery.scan(roots)
    assert result.missing_roots == [str(tv)]
    assert result.removed == 0
    assert len(await discovery.files(title="Doctor Who")) == 3
    tv.rmdir()
    result = await discovery.scan(roots)
    assert result.missing_roots == [str(tv)]
    assert "missing or empty" in caplog.text


async def test_linker_links_new_files_only_and_survives_errors(
    store: TransferStore, roots: list[SourceRoot], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def linker(path: str, parsed: ParsedName) -> str | None:
        calls.append(path)
        if parsed.title == "One Piece":
            raise RuntimeError("catalog unavailable")
        return f"rk-{parsed.title}-{parsed.year}" if parsed.kind == "movie" else None

    discovery = Discovery(store, run_sync, linker=linker)
    await discovery.scan(roots)
    assert len(calls) == 7
    movies = await discovery.files(kind="movie")
    assert {m.link for m in movies} == {"rk-2012-2009", "rk-Movie Title-2010"}
    assert "The linker failed" in caplog.text
    calls.clear()
    await discovery.scan(roots)
    assert calls == []

    discovery.linker = lambda path, parsed: f"ep-{parsed.title}"
    assert await discovery.relink() == 4
    assert {m.link for m in await discovery.files(kind="episode")} == {
        "ep-Doctor Who",
        "ep-One Piece",
    }
    discovery.linker = None
    assert await discovery.relink() == 0


async def test_scan_without_roots_is_refused(store: TransferStore) -> None:
    with pytest.raises(ValueError, match="no source roots"):
        await Discovery(store, run_sync).scan([])


async def test_a_long_scan_reports_progress_on_the_way(
    store: TransferStore, roots: list[SourceRoot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every so many files the scan says how far it got (the progress sensor), not only at the
    end of each root."""
    monkeypatch.setattr(discovery_mod, "_PROGRESS_EVERY", 2)
    updates: list[ScanProgress] = []
    await Discovery(store, run_sync).scan(roots[2:3], progress=updates.append)
    tv = os.path.normpath(roots[2].path)
    assert [(u.root, u.seen) for u in updates] == [(tv, 2), (tv, 3)]


def test_a_shared_engine_outlives_the_store(tmp_path: Path) -> None:
    """A store opened on the catalog's engine leaves that engine usable when it closes."""
    engine = create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        store = TransferStore(engine)
        store.close()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert TransferStore(engine).files() == []
    finally:
        engine.dispose()
