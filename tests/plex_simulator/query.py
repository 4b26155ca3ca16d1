"""Plex library query language: filters (`year>>=2000`, `updatedAt>=N`, `title=x`) and `sort=`.

Operators as Plex documents them in the `<Meta>` FieldType list, plus the plain comparisons:

* numbers and dates: `=` (any of comma-separated values), `!=`, `>>=` (greater than),
  `<<=` (less than). `>=` and `<=` are the same strict comparisons: a real server splits
  `updatedAt>=N` at the first `=` into the key `updatedAt>` and the value `N`, i.e. the filter
  "greater than N" (an item updated at exactly N is not listed). Date values may be epoch
  seconds, `YYYY-MM-DD` or relative (`-30d`, `-2w`, `-6h`, `-1mon`, `-1y`).
* strings: `=` contains, `!=` does not contain, `==` is, `!==` is not, `<=` begins with,
  `>=` ends with (all case- and accent-insensitive).
* tags (genre, director, actor, ...): `=` any value matches, `!=` none matches.
* booleans (unwatched, inProgress, unwatchedLeaves): `=1` / `=0`, `!=`.

A field may carry a libtype prefix (`episode.addedAt>>=...` on a show query matches shows that
have such an episode). Query keys arrive split at the first `=` (`updatedAt>=5` parses as key
`updatedAt>` value `5`); `parse_filters` glues them back together, so every encoding works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
import re
from typing import Any, Final

from .library import Item, fold

RESERVED: Final = frozenset(
    {
        "type",
        "sort",
        "limit",
        "includeGuids",
        "includeMeta",
        "includeAdvanced",
        "includeCollections",
        "includeExternalMedia",
        "includeDetails",
        "includeChapters",
        "includeMarkers",
        "includeRelated",
        "includeExtras",
        "includeConcerts",
        "includeOnDeck",
        "includePopularLeaves",
        "includePreferences",
        "includeReviews",
        "includeStations",
        "includeAllConcerts",
        "includeBandwidths",
        "includeLoudnessRamps",
        "includeFields",
        "excludeFields",
        "excludeElements",
        "excludeAllLeaves",
        "checkFiles",
        "asyncAugmentMetadata",
        "augmentCount",
        "commandID",
        "X-Plex-Token",
        "X-Plex-Container-Start",
        "X-Plex-Container-Size",
        "X-Plex-Client-Identifier",
        "X-Plex-Product",
        "X-Plex-Version",
        "X-Plex-Platform",
        "X-Plex-Device",
        "X-Plex-Device-Name",
        "X-Plex-Features",
        "X-Plex-Language",
        "X-Plex-Text-Format",
        "X-Plex-Provider-Version",
        "X-Plex-Sync-Version",
        "X-Plex-Model",
        "X-Plex-Platform-Version",
        "X-Plex-Device-Screen-Resolution",
        "X-Plex-Session-Identifier",
        "X-Plex-Client-Profile-Extra",
        "X-Plex-Drm",
        "X-Plex-Nocache",
        "push",
        "pop",
        "and",
        "or",
    }
)
_FILTER_RE: Final = re.compile(
    r"^(?:(?P<libtype>[A-Za-z]+)\.)?(?P<field>[A-Za-z]+)"
    r"(?P<op>!==|==|!=|>>=|<<=|>=|<=|=)(?P<value>.*)$",
    re.DOTALL,
)
_RELATIVE_RE: Final = re.compile(r"^-?(\d+)(mon|[smhdwy])$")
_UNIT_SECONDS: Final = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "mon": 2592000,
    "y": 31536000,
}
_CHILD_TYPES: Final = {
    "show": ("season", "episode"),
    "season": ("episode",),
    "artist": ("album", "track"),
    "album": ("track",),
}


def _date_value(item: Item) -> float | None:
    if not item.originally_available_at:
        return None
    try:
        day = datetime.fromisoformat(item.originally_available_at).replace(tzinfo=UTC)
    except ValueError:
        return None
    return day.timestamp()


def _leaves_unwatched(item: Item) -> bool:
    return any(leaf.view_count == 0 for leaf in item.leaves())


def _max_leaf(attr: str) -> Callable[[Item], Any]:
    def get(item: Item) -> Any:
        values = [getattr(leaf, attr) for leaf in item.leaves() if getattr(leaf, attr) is not None]
        return max(values) if values else None

    return get


_NUMERIC: Final[dict[str, Callable[[Item], Any]]] = {
    "year": lambda it: it.year,
    "addedAt": lambda it: it.added_at,
    "updatedAt": lambda it: it.updated_at,
    "lastViewedAt": lambda it: it.last_viewed_at,
    "originallyAvailableAt": _date_value,
    "duration": lambda it: it.duration,
    "viewCount": lambda it: it.view_count,
    "viewOffset": lambda it: it.view_offset,
    "index": lambda it: it.index,
    "parentIndex": lambda it: it.parent.index if it.parent else None,
    "id": lambda it: it.id,
    "ratingKey": lambda it: it.id,
    "rating": lambda it: it.rating,
    "audienceRating": lambda it: it.audience_rating,
    "decade": lambda it: (it.year // 10 * 10) if it.year else None,
    "mediaSize": lambda it: it.media.size if it.media else None,
    "mediaBitrate": lambda it: it.media.bitrate if it.media else None,
    "mediaHeight": lambda it: it.media.height if it.media else None,
}
_DATES: Final = frozenset({"addedAt", "updatedAt", "lastViewedAt", "originallyAvailableAt"})
_STRINGS: Final[dict[str, Callable[[Item], str | None]]] = {
    "title": lambda it: it.title,
    "titleSort": lambda it: it.title_sort,
    "originalTitle": lambda it: it.original_title,
    "studio": lambda it: it.studio,
    "summary": lambda it: it.summary,
    "file": lambda it: it.media.file if it.media else None,
}
_TAGS: Final[dict[str, Callable[[Item], Sequence[str]]]] = {
    "genre": lambda it: it.genres,
    "director": lambda it: it.directors,
    "writer": lambda it: it.writers,
    "producer": lambda it: it.producers,
    "country": lambda it: it.countries,
    "actor": lambda it: it.roles,
    "contentRating": lambda it: (it.content_rating,) if it.content_rating else (),
    "resolution": lambda it: (
        (it.media.video_resolution,) if it.media and it.media.video_resolution else ()
    ),
    # A real server matches `guid=` against the item's own GUID only (not its <Guid> children).
    "guid": lambda it: (it.guid,),
}
_BOOLEANS: Final[dict[str, Callable[[Item], bool]]] = {
    "unwatched": lambda it: (
        it.view_count == 0 if it.type in ("movie", "episode", "track") else _leaves_unwatched(it)
    ),
    "unwatchedLeaves": _leaves_unwatched,
    "inProgress": lambda it: it.view_offset > 0,
    "unmatched": lambda it: it.guid.startswith(("local://", "com.plexapp.agents.none://")),
}


@dataclass(frozen=True, slots=True)
class Filter:
    """One parsed filter term."""

    libtype: str | None
    field: str
    op: str
    values: tuple[str, ...]

    @property
    def relative(self) -> bool:
        """True when a value depends on the clock (`-30d`)."""
        return any(_RELATIVE_RE.match(v) and v.startswith("-") for v in self.values)


def parse_filters(pairs: Iterable[tuple[str, str]]) -> list[Filter]:
    """Filter terms from query pairs (reserved parameters and unknown fields are ignored)."""
    out: list[Filter] = []
    for key, value in pairs:
        if key in RESERVED or key.startswith("X-Plex-"):
            continue
        raw = key if value == "" and re.search(r"[=<>!]", key) else f"{key}={value}"
        match = _FILTER_RE.match(raw)
        if match is None:
            continue
        field = match["field"]
        if (
            field not in _NUMERIC
            and field not in _STRINGS
            and field not in _TAGS
            and (field not in _BOOLEANS)
        ):
            continue
        text = match["value"]
        if field in _NUMERIC or field in _BOOLEANS:
            text = text.lstrip("=")
        values = tuple(v for v in text.split(",") if v != "") if field != "title" else (text,)
        out.append(Filter(match["libtype"], field, match["op"], values))
    return out


def _number(value: str, field: str, now: float) -> float | None:
    relative = _RELATIVE_RE.match(value)
    if relative and field in _DATES:
        return now - int(relative[1]) * _UNIT_SECONDS[relative[2]]
    if field in _DATES and re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    try:
        return float(value)
    except ValueError:
        return None


def _numeric_test(flt: Filter, now: float) -> Callable[[Any], bool]:
    numbers = [n for n in (_number(v, flt.field, now) for v in flt.values) if n is not None]
    op = flt.op
    if not numbers:
        return lambda _v: False
    first = numbers[0]
    tests: dict[str, Callable[[Any], bool]] = {
        "=": lambda v: v is not None and v in numbers,
        "==": lambda v: v is not None and v in numbers,
        "!=": lambda v: v is None or v not in numbers,
        "!==": lambda v: v is None or v not in numbers,
        ">>=": lambda v: v is not None and v > first,
        "<<=": lambda v: v is not None and v < first,
        # `key>`/`key<` after the split at "=": strict, like `>>`/`<<` (see the docstring).
        ">=": lambda v: v is not None and v > first,
        "<=": lambda v: v is not None and v < first,
    }
    return tests[op]


def _string_test(flt: Filter) -> Callable[[str | None], bool]:
    wanted = [fold(v) for v in flt.values]
    tests: dict[str, Callable[[str], bool]] = {
        "=": lambda s: any(w in s for w in wanted),
        "!=": lambda s: not any(w in s for w in wanted),
        "==": lambda s: s in wanted,
        "!==": lambda s: s not in wanted,
        "<=": lambda s: any(s.startswith(w) for w in wanted),
        ">=": lambda s: any(s.endswith(w) for w in wanted),
    }
    test = tests[flt.op]
    return lambda value: test(fold(value or ""))


def _tag_test(flt: Filter) -> Callable[[Sequence[str]], bool]:
    wanted = {fold(v) for v in flt.values}
    negate = flt.op.startswith("!")

    def test(tags: Sequence[str]) -> bool:
        hit = any(fold(t) in wanted for t in tags)
        return not hit if negate else hit

    return test


def _bool_test(flt: Filter) -> Callable[[bool], bool]:
    truthy = (flt.values[0] if flt.values else "1") not in ("0", "false", "")
    if flt.op.startswith("!"):
        truthy = not truthy
    return lambda value: value == truthy


def _item_test(flt: Filter, now: float) -> Callable[[Item], bool]:
    field = flt.field
    if field in _NUMERIC:
        get_n, test_n = _NUMERIC[field], _numeric_test(flt, now)
        return lambda it: test_n(get_n(it))
    if field in _STRINGS:
        get_s, test_s = _STRINGS[field], _string_test(flt)
        return lambda it: test_s(get_s(it))
    if field in _TAGS:
        get_t, test_t = _TAGS[field], _tag_test(flt)
        return lambda it: test_t(get_t(it))
    get_b, test_b = _BOOLEANS[field], _bool_test(flt)
    return lambda it: test_b(get_b(it))


def _related(item: Item, libtype: str) -> list[Item]:
    if item.type == libtype:
        return [item]
    ancestor = item.parent
    while ancestor is not None:
        if ancestor.type == libtype:
            return [ancestor]
        ancestor = ancestor.parent
    if libtype in _CHILD_TYPES.get(item.type, ()):
        out: list[Item] = []
        stack = list(item.children)
        while stack:
            node = stack.pop()
            if node.type == libtype:
                out.append(node)
            else:
                stack.extend(node.children)
        return out
    return [item]


def apply_filters(items: Sequence[Item], filters: Sequence[Filter], now: float) -> list[Item]:
    """Items matching every filter."""
    tests: list[tuple[str | None, Callable[[Item], bool]]] = [
        (flt.libtype, _item_test(flt, now)) for flt in filters
    ]
    out: list[Item] = []
    for item in items:
        for libtype, test in tests:
            if libtype is None or libtype == item.type:
                if not test(item):
                    break
            elif not any(test(rel) for rel in _related(item, libtype)):
                break
        else:
            out.append(item)
    return out


_SORT_FIELDS: Final[dict[str, Callable[[Item], Any]]] = {
    **_NUMERIC,
    "titleSort": lambda it: it.title_sort.lower(),
    "title": lambda it: it.title.lower(),
    "originalTitle": lambda it: (it.original_title or "").lower(),
    "contentRating": lambda it: it.content_rating or "",
    "random": lambda it: (it.id * 2654435761) % 4294967296,
}


def parse_sort(spec: str) -> list[tuple[str | None, str, bool]]:
    """`addedAt:desc,titleSort` -> [(libtype, field, descending), ...]; unknown fields dropped."""
    out: list[tuple[str | None, str, bool]] = []
    for part in spec.split(","):
        name, _, direction = part.strip().partition(":")
        libtype, _, field = name.rpartition(".")
        if field in _SORT_FIELDS:
            out.append((libtype or None, field, direction == "desc"))
    return out


def apply_sort(items: Sequence[Item], spec: str, item_type: str | None = None) -> list[Item]:
    """Items sorted by a Plex sort spec (stable; missing values first ascending).

    A prefix naming a child type (`episode.addedAt` on shows) sorts by the newest child value.
    """
    result = list(items)
    for libtype, field, descending in reversed(parse_sort(spec)):
        getter = _SORT_FIELDS[field]
        child_types = _CHILD_TYPES.get(item_type or "", ())
        if libtype in child_types and field in _LEAF_ATTRS:
            getter = _max_leaf(_LEAF_ATTRS[field])

        def key(it: Item, g: Callable[[Item], Any] = getter) -> tuple[bool, Any]:
            value = g(it)
            return (value is not None, value if value is not None else 0)

        result.sort(key=key, reverse=descending)
    return result


_LEAF_ATTRS: Final = {
    "addedAt": "added_at",
    "updatedAt": "updated_at",
    "lastViewedAt": "last_viewed_at",
    "originallyAvailableAt": "originally_available_at",
}


def filters_key(filters: Sequence[Filter]) -> tuple[Any, ...]:
    """A hashable cache key for filters."""
    return tuple((f.libtype, f.field, f.op, f.values) for f in filters)
