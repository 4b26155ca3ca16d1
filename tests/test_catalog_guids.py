"""GUID parser: every example in guids.md, plus property tests."""

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.plexus.catalog.guids import (
    UNKNOWN,
    ParsedGuid,
    format_guid,
    is_rating_image,
    parse_guid,
    parse_item_guids,
)

P = ParsedGuid

EXAMPLES: list[tuple[str, ParsedGuid | None]] = [
    # 1. New Plex agents
    (
        "plex://movie/5d7768313c3c2a001fbcd1f0",
        P("plex", "movie/5d7768313c3c2a001fbcd1f0", kind="movie"),
    ),
    (
        "plex://episode/5de8dbdf18b6d6001db44001",
        P("plex", "episode/5de8dbdf18b6d6001db44001", kind="episode"),
    ),
    (
        "plex://season/602e65269b7e9c002d714336",
        P("plex", "season/602e65269b7e9c002d714336", kind="season"),
    ),
    (
        "plex://show/5d9c0855ffd9ef001e991de0",
        P("plex", "show/5d9c0855ffd9ef001e991de0", kind="show"),
    ),
    (
        "plex://artist/5d07bbfd403c6402904a6579",
        P("plex", "artist/5d07bbfd403c6402904a6579", kind="artist"),
    ),
    (
        "plex://movie/5d776b85594b2b001e6dc641",
        P("plex", "movie/5d776b85594b2b001e6dc641", kind="movie"),
    ),
    (
        "plex://episode/60d5ff1c4a0721002c4e5d75",
        P("plex", "episode/60d5ff1c4a0721002c4e5d75", kind="episode"),
    ),
    (
        "plex://season/606b5e359efaef002c04bcdd",
        P("plex", "season/606b5e359efaef002c04bcdd", kind="season"),
    ),
    (
        "plex://show/5d9c07f7e98e47001eb03fc7",
        P("plex", "show/5d9c07f7e98e47001eb03fc7", kind="show"),
    ),
    (
        "plex://episode/6083464579af59002d1e35bc",
        P("plex", "episode/6083464579af59002d1e35bc", kind="episode"),
    ),
    ("plex://album/12345", P("plex", "album/12345", kind="album")),
    ("plex://artist/12345", P("plex", "artist/12345", kind="artist")),
    ("plex://track/12345", P("plex", "track/12345", kind="track")),
    (
        "plex://movie/5d776846880197001ec967c6",
        P("plex", "movie/5d776846880197001ec967c6", kind="movie"),
    ),
    (
        "plex://show/5d9c086c46115600200aa2fe",
        P("plex", "show/5d9c086c46115600200aa2fe", kind="show"),
    ),
    (
        "plex://season/602e67d31d3358002c411c39",
        P("plex", "season/602e67d31d3358002c411c39", kind="season"),
    ),
    (
        "plex://episode/5d9c1275e98e47001eb84029",
        P("plex", "episode/5d9c1275e98e47001eb84029", kind="episode"),
    ),
    (
        "plex://artist/5d07bdaf403c64029060f8c4",
        P("plex", "artist/5d07bdaf403c64029060f8c4", kind="artist"),
    ),
    (
        "plex://album/5d07c7e5403c640290bb5bfc",
        P("plex", "album/5d07c7e5403c640290bb5bfc", kind="album"),
    ),
    (
        "plex://track/5d07e453403c6402907b80aa",
        P("plex", "track/5d07e453403c6402907b80aa", kind="track"),
    ),
    (
        "plex://movie/5d776b59ad5437001f79c6f8",
        P("plex", "movie/5d776b59ad5437001f79c6f8", kind="movie"),
    ),
    (
        "plex://show/5d9c086fe9d5a1001f4d9fe6",
        P("plex", "show/5d9c086fe9d5a1001f4d9fe6", kind="show"),
    ),
    (
        "plex://season/5d9c09e42df347001e3c2a72",
        P("plex", "season/5d9c09e42df347001e3c2a72", kind="season"),
    ),
    (
        "plex://artist/5d07bcb0403c64029053ac4c",
        P("plex", "artist/5d07bcb0403c64029053ac4c", kind="artist"),
    ),
    (
        "plex://album/5d07cd8e403c640290f180f9",
        P("plex", "album/5d07cd8e403c640290f180f9", kind="album"),
    ),
    # 2. Guid list entries
    ("imdb://tt0090728", P("imdb", "tt0090728")),
    ("tmdb://6978", P("tmdb", "6978")),
    ("tvdb://1876", P("tvdb", "1876")),
    ("imdb://tt9413736", P("imdb", "tt9413736")),
    ("tmdb://1707381", P("tmdb", "1707381")),
    ("tvdb://7047159", P("tvdb", "7047159")),
    ("imdb://tt0944947", P("imdb", "tt0944947")),
    ("tmdb://1399", P("tmdb", "1399")),
    ("tvdb://121361", P("tvdb", "121361")),
    ("tvdb://364731", P("tvdb", "364731")),
    ("tvdb://3254641", P("tvdb", "3254641")),
    ("imdb://tt1172203", P("imdb", "tt1172203")),
    ("tmdb://12345", P("tmdb", "12345")),
    ("tvdb://67890", P("tvdb", "67890")),
    ("tmdb://464052", P("tmdb", "464052")),
    # 3. Legacy agents
    ("com.plexapp.agents.imdb://tt4154664?lang=en", P("imdb", "tt4154664", legacy=True)),
    ("com.plexapp.agents.imdb://tt0765446", P("imdb", "tt0765446", legacy=True)),
    ("com.plexapp.agents.imdb://tt0123456?lang=en", P("imdb", "tt0123456", legacy=True)),
    ("com.plexapp.agents.thetvdb://301376/1/14?lang=en", P("tvdb", "301376", 1, 14, legacy=True)),
    ("com.plexapp.agents.thetvdb://301376/1?lang=en", P("tvdb", "301376", 1, legacy=True)),
    ("com.plexapp.agents.thetvdb://301376?lang=en", P("tvdb", "301376", legacy=True)),
    ("com.plexapp.agents.thetvdb://371040?lang=en", P("tvdb", "371040", legacy=True)),
    ("com.plexapp.agents.thetvdb://12345/1/10?lang=en", P("tvdb", "12345", 1, 10, legacy=True)),
    ("com.plexapp.agents.thetvdb://12345/1/19?lang=en", P("tvdb", "12345", 1, 19, legacy=True)),
    ("com.plexapp.agents.thetvdb://12345/1?lang=en", P("tvdb", "12345", 1, legacy=True)),
    ("com.plexapp.agents.thetvdb://12345?lang=en", P("tvdb", "12345", legacy=True)),
    ("com.plexapp.agents.thetvdb://54321?lang=en", P("tvdb", "54321", legacy=True)),
    ("com.plexapp.agents.thetvdb://78874/1/1", P("tvdb", "78874", 1, 1, legacy=True)),
    ("com.plexapp.agents.themoviedb://1705", P("tmdb", "1705", legacy=True)),
    ("com.plexapp.agents.themoviedb://1705/2/3?lang=de", P("tmdb", "1705", 2, 3, legacy=True)),
    (
        (
            "com.plexapp.agents.plexmusic://gracenote/track/7572499-91016293BE6BF7F1AB2F848F736E74E5/"
            "7572500-3CBAE310D4F3E66C285E104A1458B272?lang=en"
        ),
        P(
            "gracenote",
            "7572499-91016293BE6BF7F1AB2F848F736E74E5/7572500-3CBAE310D4F3E66C285E104A1458B272",
            kind="track",
            legacy=True,
        ),
    ),
    (
        (
            "com.plexapp.agents.plexmusic://gracenote/album/05DF725E0A247C83/"
            "170163331-DF725E4DA03E6040915B2564D5A06E70?lang=en"
        ),
        P(
            "gracenote",
            "05DF725E0A247C83/170163331-DF725E4DA03E6040915B2564D5A06E70",
            kind="album",
            legacy=True,
        ),
    ),
    (
        "com.plexapp.agents.plexmusic://gracenote/artist/05DF725E0A247C83?lang=en",
        P("gracenote", "05DF725E0A247C83", kind="artist", legacy=True),
    ),
    # HAMA (form described in guids.md; no real capture)
    ("com.plexapp.agents.hama://anidb-1234/1/5?lang=en", P("anidb", "1234", 1, 5, legacy=True)),
    ("com.plexapp.agents.hama://anidb-1234?lang=en", P("anidb", "1234", legacy=True)),
    ("com.plexapp.agents.hama://tvdb-81797/2/7?lang=en", P("tvdb", "81797", 2, 7, legacy=True)),
    ("com.plexapp.agents.hama://tvdb3-81797/1?lang=en", P("tvdb", "81797", 1, legacy=True)),
    # 4. Local / none / other
    ("local://239918", P("local", "239918")),
    ("local://229674", P("local", "229674")),
    ("local://999", P("local", "999")),
    ("com.plexapp.agents.none://203184?lang=en", P("none", "203184", legacy=True)),
    ("com.plexapp.agents.none://231714?lang=xn", P("none", "231714", legacy=True)),
    (
        "com.plexapp.agents.none://9a8f4a48-dd89-40e0-955b-286285350fdf",
        P("none", "9a8f4a48-dd89-40e0-955b-286285350fdf", legacy=True),
    ),
    (
        "collection://b57b4fb7-b1a9-48a1-9122-fda907c422cd",
        P("collection", "b57b4fb7-b1a9-48a1-9122-fda907c422cd"),
    ),
    ("tv.plex://station/library", P("tv.plex", "station/library", kind="station")),
    ("tv.plex://station/history", P("tv.plex", "station/history", kind="station")),
    ("tv.plex://station/album", P("tv.plex", "station/album", kind="station")),
    (
        "analyzed.prerolls://c1226b1fd517d6d7177ac8bebf24e0165e5feeb6",
        P("preroll", "c1226b1fd517d6d7177ac8bebf24e0165e5feeb6"),
    ),
    ("no_idea", P(UNKNOWN, "no_idea")),
    # 5. Look-alikes that are not GUIDs
    ("imdb://image.rating", None),
    ("themoviedb://image.rating", None),
    ("rottentomatoes://image.rating.ripe", None),
    ("rottentomatoes://image.rating.upright", None),
    ("rottentomatoes://image.rating.spilled", None),
    ("rottentomatoes://image.rating.certified", None),
    ("com.plexapp.agents.imdb", None),
    ("tv.plex.agents.music", None),
    ("tv.plex.agents.movie", None),
    ("com.plexapp.agents.themoviedb", None),
    ("com.plexapp.agents.none", None),
    ("", None),
    ("   ", None),
]


@pytest.mark.parametrize(
    ("raw", "expected"), EXAMPLES, ids=[e[0][:60] or "empty" for e in EXAMPLES]
)
def test_examples(raw: str, expected: ParsedGuid | None) -> None:
    assert parse_guid(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("IMDB://TT0090728", P("imdb", "tt0090728")),
        ("  tmdb://006978 ", P("tmdb", "6978")),
        (
            "plex://Movie/5D7768313C3C2A001FBCD1F0",
            P("plex", "movie/5d7768313c3c2a001fbcd1f0", kind="movie"),
        ),
        (
            "COM.PLEXAPP.AGENTS.THETVDB://301376/01/014?lang=en",
            P("tvdb", "301376", 1, 14, legacy=True),
        ),
    ],
)
def test_normalisation(raw: str, expected: ParsedGuid) -> None:
    assert parse_guid(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "imdb://nm0000123",
        "tmdb://abc",
        "tvdb://",
        "plex://",
        "plex://movie",
        "plex://unicorn/5d7768313c3c2a001fbcd1f0",
        "plex://movie/a/b",
        "com.plexapp.agents.thetvdb://301376/a/14",
        "com.plexapp.agents.thetvdb://301376/1/2/3",
        "com.plexapp.agents.imdb://tt1/1/2",
        "com.plexapp.agents.youtube://xyz",
        "com.plexapp.agents.hama://kitsu-1",
        "com.plexapp.agents.plexmusic://lastfm/foo",
        "local://abc",
        "tmdb://١٢٣",  # Arabic-Indic digits are not ASCII digits
        "ftp://example.com/file",
        "://",
        "plex://movie/5d77 68",
    ],
)
def test_unknown_forms(raw: str) -> None:
    parsed = parse_guid(raw)
    assert parsed is not None
    assert parsed.is_unknown
    assert parsed.id == raw.strip()


def test_rating_images() -> None:
    assert is_rating_image("rottentomatoes://image.rating.ripe")
    assert is_rating_image("imdb://image.rating")
    assert not is_rating_image("imdb://tt0090728")
    assert not is_rating_image("no_idea")


def test_parse_item_guids_dedups_and_counts() -> None:
    guids, unknown = parse_item_guids(
        "plex://movie/5d7768313c3c2a001fbcd1f0",
        ["imdb://tt0090728", "tmdb://6978", "IMDB://tt0090728", "weird", "imdb://image.rating"],
    )
    assert [g.provider for g in guids] == ["plex", "imdb", "tmdb", UNKNOWN]
    assert unknown == 1
    assert parse_item_guids(None) == ([], 0)


def test_parse_guid_non_string() -> None:
    assert parse_guid(None) is None
    assert parse_guid(123) is None  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.text())
def test_random_text_never_raises(text: str) -> None:
    parsed = parse_guid(text)
    assert parsed is None or isinstance(parsed, ParsedGuid)


_schemes = st.sampled_from(
    [
        "plex://",
        "imdb://",
        "tmdb://",
        "tvdb://",
        "local://",
        "com.plexapp.agents.thetvdb://",
        "com.plexapp.agents.hama://",
        "com.plexapp.agents.plexmusic://gracenote/",
        "com.plexapp.agents.none://",
        "tv.plex://",
        "collection://",
    ]
)


@settings(max_examples=500)
@given(_schemes, st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_guid_like_text_never_raises_and_is_idempotent(scheme: str, rest: str) -> None:
    parsed = parse_guid(scheme + rest)
    if parsed is None or parsed.is_unknown:
        return
    # A recognised GUID formats to a canonical form that parses back to the same GUID.
    assert parse_guid(format_guid(parsed)) == parsed


_ints = st.integers(min_value=0, max_value=10**8)


@given(_ints)
def test_roundtrip_external(n: int) -> None:
    for provider in ("tmdb", "tvdb"):
        parsed = parse_guid(f"{provider}://{n}")
        assert parsed == P(provider, str(n))
        assert format_guid(parsed) == f"{provider}://{n}"
    imdb = parse_guid(f"imdb://tt{n:07d}")
    assert imdb == P("imdb", f"tt{n:07d}")


@given(
    _ints,
    st.none() | st.integers(0, 500),
    st.none() | st.integers(0, 5000),
    st.sampled_from(["", "?lang=en", "?lang=xn"]),
)
def test_roundtrip_legacy_tv(
    show: int, season: int | None, episode: int | None, query: str
) -> None:
    path = str(show)
    if season is not None:
        path += f"/{season}"
        if episode is not None:
            path += f"/{episode}"
    else:
        episode = None
    parsed = parse_guid(f"com.plexapp.agents.thetvdb://{path}{query}")
    assert parsed == P("tvdb", str(show), season, episode, legacy=True)
    assert format_guid(parsed) == f"com.plexapp.agents.thetvdb://{path}"


@given(
    st.sampled_from(["movie", "show", "season", "episode", "artist", "album", "track"]),
    st.text(alphabet="0123456789abcdef", min_size=24, max_size=24),
)
def test_roundtrip_plex(kind: str, hexid: str) -> None:
    raw = f"plex://{kind}/{hexid}"
    parsed = parse_guid(raw)
    assert parsed == P("plex", f"{kind}/{hexid}", kind=kind)
    assert format_guid(parsed) == raw


@given(st.text(max_size=60))
def test_unknown_keeps_text(text: str) -> None:
    parsed = parse_guid(text)
    if parsed is not None and parsed.is_unknown:
        assert parsed.id == text.strip()
        assert format_guid(parsed) == text.strip()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("com.plexapp.agents.localmedia://12345", "com.plexapp.agents.localmedia://12345"),
        (
            "com.plexapp.agents.plexmusic://gracenote/track/12345-ABCDEF?lang=en",
            "com.plexapp.agents.plexmusic://gracenote/track/12345-ABCDEF",
        ),
        ("tv.plex://station/abc123", "tv.plex://station/abc123"),
        ("analyzed.prerolls://ABC.mp4", "analyzed.prerolls://abc.mp4"),
        ("collection://Abc", "collection://abc"),
        (
            "mbid://0383DADF-2A4E-4D10-A46A-E9E041DA8EB3",
            "mbid://0383dadf-2a4e-4d10-a46a-e9e041da8eb3",
        ),
        ("com.plexapp.agents.hama://anidb-00123/1/2", "com.plexapp.agents.anidb://123/1/2"),
        ("com.plexapp.agents.none://ABC", "com.plexapp.agents.none://abc"),
        ("com.plexapp.agents.themoviedb://00550?lang=de", "com.plexapp.agents.themoviedb://550"),
    ],
)
def test_key_is_canonical_for_every_provider(raw: str, key: str) -> None:
    """Two spellings of one GUID share a key (what the catalog stores and matches on), and the
    key parses back to the same GUID."""
    parsed = parse_guid(raw)
    assert parsed is not None
    assert not parsed.is_unknown
    assert parsed.key == key
    assert parse_guid(key) == parsed


@pytest.mark.parametrize(
    "raw",
    [
        "com.plexapp.agents.thetvdb:///1/2",  # no show id
        "com.plexapp.agents.hama://anidb-abc",  # HAMA prefix with a non-numeric id
        "plex://movie/-bad",
        "analyzed.prerolls://-x",
        "mbid://!!",
    ],
)
def test_more_malformed_forms_are_unknown(raw: str) -> None:
    parsed = parse_guid(raw)
    assert parsed is not None
    assert parsed.is_unknown
    assert parsed.key == raw
