"""Parse every Plex GUID form into a normalised (provider, id).

The forms are listed in ``plex-fixtures/guids.md``:

* new Plex agents: ``plex://<type>/<id>``;
* the ``Guid`` child list of new-agent items: ``imdb://tt…``, ``tmdb://<int>``, ``tvdb://<int>``
  (and ``mbid://…`` for music);
* legacy agents: ``com.plexapp.agents.<agent>://<id>[/<season>[/<episode>]][?lang=xx]``, including
  TheTVDB / TheMovieDB TV forms with season and episode numbers, HAMA (``anidb-<id>``,
  ``tvdb-<id>``) and Plex Music's gracenote forms;
* ``local://``, ``com.plexapp.agents.none://``, ``collection://``, ``tv.plex://station/…``,
  ``analyzed.prerolls://…``.

:func:`parse_guid` never raises. Anything it cannot place comes back with provider
:data:`UNKNOWN` (and the id set to the stripped input) so callers can store and count it.
Rating-image keys (``imdb://image.rating``, ``rottentomatoes://image.rating.ripe`` …) and bare
agent identifiers (``com.plexapp.agents.imdb``) look similar but are not GUIDs: they give ``None``.
"""

from collections.abc import Iterable
from dataclasses import dataclass
import re
from typing import Final

UNKNOWN: Final = "unknown"

PLEX: Final = "plex"
IMDB: Final = "imdb"
TMDB: Final = "tmdb"
TVDB: Final = "tvdb"
ANIDB: Final = "anidb"
MBID: Final = "mbid"
LOCAL: Final = "local"
NONE: Final = "none"
GRACENOTE: Final = "gracenote"
COLLECTION: Final = "collection"
STATION: Final = "tv.plex"
PREROLL: Final = "preroll"

_LEGACY_PREFIX: Final = "com.plexapp.agents."

# External-id schemes as they appear in the Guid list (and their aliases).
_EXTERNAL: Final[dict[str, str]] = {
    "imdb": IMDB,
    "tmdb": TMDB,
    "themoviedb": TMDB,
    "tvdb": TVDB,
    "thetvdb": TVDB,
    "anidb": ANIDB,
    "mbid": MBID,
}

# Legacy agent name -> provider.
_LEGACY_AGENTS: Final[dict[str, str]] = {
    "imdb": IMDB,
    "themoviedb": TMDB,
    "tmdb": TMDB,
    "thetvdb": TVDB,
    "thetvdbdvdorder": TVDB,
    "tvdb": TVDB,
    "anidb": ANIDB,
    "none": NONE,
    "localmedia": LOCAL,
}

# HAMA id prefixes ("anidb-123", "tvdb3-456") -> provider.
_HAMA_RE: Final = re.compile(r"(anidb|tvdb|tmdb|imdb)[0-9]?-(.+)", re.ASCII | re.IGNORECASE)
_HAMA_PROVIDERS: Final[dict[str, str]] = {"anidb": ANIDB, "tvdb": TVDB, "tmdb": TMDB, "imdb": IMDB}

_SCHEME_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://(.*)", re.ASCII | re.DOTALL)
_AGENT_ID_RE: Final = re.compile(
    r"(com\.plexapp\.agents|tv\.plex\.agents)\.[A-Za-z0-9_.\-]+", re.ASCII | re.IGNORECASE
)
_IMDB_RE: Final = re.compile(r"tt[0-9]+", re.ASCII | re.IGNORECASE)
_INT_RE: Final = re.compile(r"[0-9]+", re.ASCII)
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", re.ASCII)
_PLEX_TYPES: Final = frozenset(
    {"movie", "show", "season", "episode", "artist", "album", "track", "clip", "person"}
)


@dataclass(frozen=True, slots=True)
class ParsedGuid:
    """One GUID, normalised.

    ``provider`` is the id's namespace (``plex``, ``imdb``, ``tmdb``, ``tvdb``, ``anidb``, ``mbid``,
    ``local``, ``none``, ``gracenote``, ``collection``, ``tv.plex``, ``preroll`` or ``unknown``).
    ``id`` is the provider's id: ``tt…`` for IMDb (lower-case prefix), a decimal integer without
    leading zeros for TMDB/TVDB/AniDB, ``<type>/<id>`` for ``plex`` (hex lower-cased). For legacy TV
    forms, ``id`` is the *show's* id and ``season``/``episode`` carry the numbers from the path —
    unlike ``tvdb://`` in a Guid list, which is the episode's own TVDB id. ``kind`` is the Plex type
    of a ``plex://`` GUID or the gracenote kind. ``legacy`` is true for ``com.plexapp.agents.*``.
    """

    provider: str
    id: str
    season: int | None = None
    episode: int | None = None
    kind: str | None = None
    legacy: bool = False

    @property
    def is_unknown(self) -> bool:
        """Return True when the form was not recognised."""
        return self.provider == UNKNOWN

    @property
    def key(self) -> str:
        """Return a canonical string naming this GUID (stable across input spellings)."""
        return format_guid(self)


def format_guid(guid: ParsedGuid) -> str:
    """Return the canonical URI of a parsed GUID; ``parse_guid`` of it gives the same GUID back.

    Legacy TV GUIDs come back in their legacy form (without ``?lang``) since the show id with
    season and episode numbers is a different thing from an episode's own id.
    """
    if guid.provider == UNKNOWN:
        return guid.id
    if guid.provider == PLEX:
        return f"plex://{guid.id}"
    if guid.legacy:
        agent = {IMDB: "imdb", TMDB: "themoviedb", TVDB: "thetvdb", ANIDB: "anidb"}.get(
            guid.provider, guid.provider
        )
        if guid.provider == LOCAL:
            agent = "localmedia"
        if guid.provider == GRACENOTE:
            agent = "plexmusic"
            path = f"gracenote/{guid.kind}/{guid.id}" if guid.kind else f"gracenote/{guid.id}"
        else:
            path = guid.id
        if guid.season is not None:
            path += f"/{guid.season}"
            if guid.episode is not None:
                path += f"/{guid.episode}"
        return f"{_LEGACY_PREFIX}{agent}://{path}"
    if guid.provider == STATION:
        return f"tv.plex://{guid.id}"
    if guid.provider == PREROLL:
        return f"analyzed.prerolls://{guid.id}"
    return f"{guid.provider}://{guid.id}"


def is_rating_image(text: str) -> bool:
    """Return True for rating-image keys such as ``rottentomatoes://image.rating.ripe``."""
    match = _SCHEME_RE.fullmatch(text.strip())
    return match is not None and match.group(2).lower().startswith("image.rating")


def _unknown(text: str) -> ParsedGuid:
    return ParsedGuid(UNKNOWN, text)


def _norm_int(value: str) -> str | None:
    if _INT_RE.fullmatch(value) is None:
        return None
    return str(int(value))


def _norm_external(provider: str, value: str) -> str | None:
    """Return the normalised id for an external provider, or None when it is malformed."""
    if provider == IMDB:
        return value.lower() if _IMDB_RE.fullmatch(value) else None
    if provider in (TMDB, TVDB, ANIDB):
        return _norm_int(value)
    # MusicBrainz ids are UUIDs; accept any plain token.
    return value.lower() if _TOKEN_RE.fullmatch(value) else None


def _numbers(parts: list[str]) -> tuple[int | None, int | None] | None:
    """Parse up to two path segments as season and episode numbers."""
    if len(parts) > 2:
        return None
    numbers: list[int] = []
    for part in parts:
        if _INT_RE.fullmatch(part) is None or len(part) > 9:
            return None
        numbers.append(int(part))
    season = numbers[0] if numbers else None
    episode = numbers[1] if len(numbers) > 1 else None
    return season, episode


def _parse_legacy(agent: str, rest: str, text: str) -> ParsedGuid:
    path = list(rest.split("/"))
    if not path or not path[0]:
        return _unknown(text)
    if agent == "plexmusic":
        if path[0].lower() != "gracenote" or len(path) < 3 or not all(path):
            return _unknown(text)
        kind = path[1].lower()
        ids = "/".join(path[2:])
        if not all(_TOKEN_RE.fullmatch(p) for p in path[2:]) or _TOKEN_RE.fullmatch(kind) is None:
            return _unknown(text)
        return ParsedGuid(GRACENOTE, ids.upper(), kind=kind, legacy=True)
    head, tail = path[0], path[1:]
    numbers = _numbers(tail)
    if numbers is None:
        return _unknown(text)
    season, episode = numbers
    if agent == "hama":
        match = _HAMA_RE.fullmatch(head)
        if match is None:
            return _unknown(text)
        hama_provider = _HAMA_PROVIDERS[match.group(1).lower()]
        value = _norm_external(hama_provider, match.group(2))
        if value is None:
            return _unknown(text)
        return ParsedGuid(hama_provider, value, season, episode, legacy=True)
    provider = _LEGACY_AGENTS.get(agent)
    if provider is None:
        return _unknown(text)
    if provider in (NONE, LOCAL):
        if tail or _TOKEN_RE.fullmatch(head) is None:
            return _unknown(text)
        return ParsedGuid(provider, head.lower(), legacy=True)
    value = _norm_external(provider, head)
    if value is None:
        return _unknown(text)
    if provider == IMDB and tail:
        return _unknown(text)
    return ParsedGuid(provider, value, season, episode, legacy=True)


def parse_guid(text: str | None) -> ParsedGuid | None:
    """Parse one GUID; never raises.

    Returns None for empty input and for things that only look like GUIDs (rating-image keys,
    bare agent identifiers); a ``ParsedGuid`` with provider ``unknown`` for anything else that is
    not a recognised form.
    """
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text:
        return None
    match = _SCHEME_RE.fullmatch(text)
    if match is None:
        if _AGENT_ID_RE.fullmatch(text):
            return None
        return _unknown(text)
    scheme = match.group(1).lower()
    rest = match.group(2)
    if rest.lower().startswith("image.rating"):
        return None
    # Strip the query (?lang=en) and any fragment; Plex only ever sends ?lang.
    rest = rest.split("#", 1)[0].split("?", 1)[0].strip()
    if not rest or any(ch.isspace() for ch in rest):
        return _unknown(text)

    if scheme == "plex":
        parts = rest.split("/")
        if len(parts) != 2 or parts[0].lower() not in _PLEX_TYPES:
            return _unknown(text)
        if _TOKEN_RE.fullmatch(parts[1]) is None:
            return _unknown(text)
        kind = parts[0].lower()
        return ParsedGuid(PLEX, f"{kind}/{parts[1].lower()}", kind=kind)
    if scheme.startswith(_LEGACY_PREFIX):
        return _parse_legacy(scheme.removeprefix(_LEGACY_PREFIX), rest, text)
    if scheme in _EXTERNAL:
        provider = _EXTERNAL[scheme]
        value = _norm_external(provider, rest)
        return _unknown(text) if value is None else ParsedGuid(provider, value)
    if scheme == "local":
        value = _norm_int(rest)
        return _unknown(text) if value is None else ParsedGuid(LOCAL, value)
    if scheme == "collection":
        if _TOKEN_RE.fullmatch(rest) is None:
            return _unknown(text)
        return ParsedGuid(COLLECTION, rest.lower())
    if scheme == "tv.plex":
        parts = rest.split("/")
        if len(parts) != 2 or not all(_TOKEN_RE.fullmatch(p) for p in parts):
            return _unknown(text)
        return ParsedGuid(STATION, f"{parts[0].lower()}/{parts[1]}", kind=parts[0].lower())
    if scheme == "analyzed.prerolls":
        if _TOKEN_RE.fullmatch(rest) is None:
            return _unknown(text)
        return ParsedGuid(PREROLL, rest.lower())
    return _unknown(text)


def parse_item_guids(
    guid: str | None, guid_children: Iterable[str] = ()
) -> tuple[list[ParsedGuid], int]:
    """Parse an item's own ``guid`` and its ``Guid`` children.

    Returns the distinct parsed GUIDs (the item's own first) and how many were unknown forms.
    """
    seen: set[ParsedGuid] = set()
    result: list[ParsedGuid] = []
    unknown = 0
    for raw in (guid, *guid_children):
        parsed = parse_guid(raw)
        if parsed is None or parsed in seen:
            continue
        seen.add(parsed)
        result.append(parsed)
        if parsed.is_unknown:
            unknown += 1
    return result, unknown
