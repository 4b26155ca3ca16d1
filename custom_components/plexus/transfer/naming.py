"""Parse media file names: a fast path for the common patterns, ``guessit`` for everything else.

``guessit`` understands almost any name but costs ~5-10 ms a name on these machines, which alone
would make a first scan of 1,000 files take 5-10 s (the target is 2 s). Most names on a Plex
share follow one of two patterns, which a regular expression reads in microseconds:

- episodes ``Show - S01E02 - Title.ext`` / ``Show (2005) - S01E02.ext`` / ``Show.Name.S01E02.720p…``
  (season and episode numbers, ``S01E01E02`` lists and ``S01E01-E03`` ranges, optional
  Plex-style `` - Title``); anime ``[Group] Show - 123 [1080p]`` (an absolute number, no season,
  whatever the folders say);
- movies ``Title (Year)…`` (Plex style, title kept verbatim) / ``Title.Name.2010.1080p…`` (scene
  style, dots read as spaces; the LAST year-like token is the year, so ``Blade.Runner.2049.2017``
  is "Blade Runner 2049" of 2017); Plex-style parts ``Title (Year) - pt1``.

Anything else — names without a season/episode or year, scene-style episode titles, titles
with brackets or parentheses that are not a year, scene-style parts — goes to ``guessit`` (with
the root's media type as a hint and ``episode_prefer_number`` so ``Show - 123`` is episode 123,
not S01E23). The fast path only answers when it is sure; ``tests/test_transfer_discovery.py``
checks it agrees with ``guessit`` on the names both read.
"""

from dataclasses import dataclass
import re
from typing import Any, Final, Literal

type MediaType = Literal["movie", "show"]
type Kind = Literal["movie", "episode", "unknown"]

_SEP: Final = r"[\s._-]"
_EPISODE_RE: Final = re.compile(
    r"^(?P<show>[^\[\]{}()]+?)(?:\s*\((?P<year>(?:19|20)\d{2})\))?"
    rf"{_SEP}+[Ss](?P<season>\d{{1,2}})[Ee](?P<episode>\d{{1,3}})(?P<tail>.*)$"
)
_EP_TITLE_RE: Final = re.compile(r"^\s+-\s+(?P<title>[^\[\]{}]+?)\s*$")
_MULTI_RE: Final = re.compile(r"^(?:[-_. ]?[Ee]\d|-\d)")
# More episodes right after S01E01: "E02E03" (a list) or "-E03" (a range).
_MORE_EPISODES_RE: Final = re.compile(
    r"^(?P<list>(?:[Ee]\d{1,3})+|-[Ee](?P<last>\d{1,3}))(?P<rest>.*)$"
)
# Anime: "[Group] Show - 123 [1080p]" / "Show - 123": an absolute episode number, no season.
_ABSOLUTE_RE: Final = re.compile(
    r"^(?:\[[^\[\]]+\]\s*)?(?P<show>[^\[\](){}]*[^\[\](){}\d\s-][^\[\](){}]*?)\s+-\s+"
    r"(?P<episode>\d{2,4})(?:v\d)?(?:\s*(?:\[[^\[\]]*\]|\([^()]*\)))*\s*$"
)
# A Plex-style multi-part movie: "Title (Year) - pt1" (also part/cd/disc).
_PLEX_PART_RE: Final = re.compile(r"(?i)^\s*-\s*(?:pt|part|cd|disc|disk)\s?(?P<part>\d{1,2})\s*$")
_PLEX_MOVIE_RE: Final = re.compile(
    r"^(?P<title>[^\[\]{}()]+?)\s*\((?P<year>(?:19|20)\d{2})\)(?P<rest>.*)$"
)
_SCENE_MOVIE_RE: Final = re.compile(
    r"^(?P<title>[^\s\[\]{}()]+)[._](?P<year>(?:19|20)\d{2})(?:[._-](?P<rest>[^\s]*))?$"
)
_PART_RE: Final = re.compile(r"(?i)(?:\b|_)(?:cd|pt|part|disc|disk|dvd)[\s._-]?\d")
_EPISODE_MARK_RE: Final = re.compile(r"(?i)\bs\d{1,2}e\d|\b\d{1,2}x\d{2}\b")
_PLEX_REST_RE: Final = re.compile(r"^(?:\s*\{[^{}]*\}|\s*\[[^\[\]]*\])*\s*$")
_RELEASE_TAGS: Final = frozenset(
    {
        "480p", "576p", "720p", "1080p", "1080i", "2160p", "4k", "uhd", "hdtv", "pdtv", "web",
        "web-dl", "webdl", "webrip", "bluray", "blu-ray", "bdrip", "brrip", "dvdrip", "hdrip",
        "x264", "x265", "h264", "h265", "hevc", "avc", "xvid", "repack", "proper", "internal",
        "amzn", "nf", "dsnp", "hmax", "atvp", "hulu", "10bit", "hdr", "dv", "remux", "multi",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParsedName:
    """What a file name says: a movie, an episode (or several), or nothing certain."""

    kind: Kind
    # Movie title, or the show's title for episodes.
    title: str
    year: int | None = None
    season: int | None = None
    episodes: tuple[int, ...] = ()
    episode_title: str | None = None
    # Multi-part movies: 1 for "pt1"/"CD1", …
    part: int | None = None
    # True when ``episodes`` are absolute numbers (anime) and there is no season.
    absolute: bool = False
    parser: Literal["fast", "guessit"] = "fast"


def _spaces(text: str) -> str:
    text = text.strip(" ._-")
    if " " not in text:
        text = text.replace(".", " ").replace("_", " ")
    return re.sub(r"\s+", " ", text).strip()


def _fast_episode(stem: str) -> ParsedName | None:
    match = _EPISODE_RE.match(stem)
    if match is None:
        return None
    tail = match["tail"]
    episodes = [int(match["episode"])]
    if (more := _MORE_EPISODES_RE.match(tail)) is not None:
        if more["last"] is not None:
            last = int(more["last"])
            if not episodes[0] < last <= episodes[0] + 50:
                return None
            episodes = list(range(episodes[0], last + 1))
        else:
            episodes += [int(n) for n in re.findall(r"\d+", more["list"])]
        tail = more["rest"]
    if _MULTI_RE.match(tail):
        return None  # other multi-episode forms: guessit knows them
    episode_title: str | None = None
    if tail:
        if (title := _EP_TITLE_RE.match(tail)) is not None:
            episode_title = title["title"]
        else:
            first = re.split(r"[._ ]+", tail.strip("._ "), maxsplit=1)[0].lower()
            if tail[0] not in "._ " or first.split("-")[0] not in _RELEASE_TAGS | {"web"}:
                return None  # an episode title in scene style: guessit reads those better
    raw_show, year = match["show"], match["year"]
    dotted = re.match(r"^(?P<show>.+)[._](?P<year>(?:19|20)\d{2})$", raw_show)
    if year is None and " " not in raw_show.strip() and dotted is not None:
        # Scene style "Doctor.Who.2005.S01E01": the trailing year belongs to the show.
        raw_show, year = dotted["show"], dotted["year"]
    show = _spaces(raw_show)
    if not show or show.isdigit():
        return None
    return ParsedName(
        "episode",
        show,
        year=int(year) if year else None,
        season=int(match["season"]),
        episodes=tuple(episodes),
        episode_title=episode_title,
    )


def _fast_absolute(stem: str) -> ParsedName | None:
    match = _ABSOLUTE_RE.match(stem)
    if match is None or _EPISODE_MARK_RE.search(stem):
        return None
    show = match["show"].strip()
    return ParsedName("episode", show, episodes=(int(match["episode"]),), absolute=True)


def _fast_movie(stem: str) -> ParsedName | None:
    if _EPISODE_MARK_RE.search(stem):
        return None
    if (match := _PLEX_MOVIE_RE.match(stem)) is not None:
        title = match["title"].strip()
        if not title or _PART_RE.search(title):
            return None
        if (part := _PLEX_PART_RE.match(match["rest"])) is not None:
            return ParsedName("movie", title, year=int(match["year"]), part=int(part["part"]))
        if not _PLEX_REST_RE.match(match["rest"]):
            return None
        return ParsedName("movie", title, year=int(match["year"]))
    if _PART_RE.search(stem):
        return None
    if (match := _SCENE_MOVIE_RE.match(stem)) is not None:
        rest = match["rest"] or ""
        tokens = [t.lower() for t in re.split(r"[._]", rest) if t]
        if tokens and tokens[0].split("-")[0] not in _RELEASE_TAGS:
            return None
        title = _spaces(match["title"])
        return ParsedName("movie", title, year=int(match["year"])) if title else None
    return None


def fast_parse(name: str, media_type: MediaType) -> ParsedName | None:
    """Parse a file NAME (no folders) by the common patterns; None when not sure."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if media_type == "movie":
        return _fast_movie(stem)
    return _fast_episode(stem) or _fast_absolute(stem)


def _int(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def guessit_parse(rel_path: str, media_type: MediaType) -> ParsedName:
    """Parse a source-relative path with guessit (slow: ~5-10 ms)."""
    from guessit import guessit  # noqa: PLC0415  (heavy import, only when needed)

    kind: Kind = "episode" if media_type == "show" else "movie"
    try:
        result: dict[str, Any] = dict(
            guessit(rel_path, {"type": kind, "episode_prefer_number": True})
        )
    except Exception:  # noqa: BLE001  (guessit raises many kinds on odd input)
        result = {}
    stem = rel_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    title = result.get("title")
    if not isinstance(title, str) or not title.strip():
        return ParsedName("unknown", stem, parser="guessit")
    year = _int(result.get("year"))
    if kind == "movie":
        part = _int(result.get("part")) or _int(result.get("cd")) or _int(result.get("disc"))
        return ParsedName("movie", title, year=year, part=part, parser="guessit")
    raw = result.get("episode", result.get("absolute_episode"))
    episodes = tuple(e for e in (raw if isinstance(raw, list) else [raw]) if isinstance(e, int))
    if not episodes:
        return ParsedName("unknown", title, year=year, parser="guessit")
    season = _int(result.get("season"))
    episode_title = result.get("episode_title")
    return ParsedName(
        "episode",
        title,
        year=year,
        season=season,
        episodes=episodes,
        episode_title=episode_title if isinstance(episode_title, str) else None,
        absolute=season is None,
        parser="guessit",
    )


def parse_name(rel_path: str, media_type: MediaType) -> ParsedName:
    """Parse a source-relative path: the fast path when it is sure, guessit otherwise."""
    name = rel_path.rsplit("/", 1)[-1]
    fast = fast_parse(name, media_type)
    return fast if fast is not None else guessit_parse(rel_path, media_type)
