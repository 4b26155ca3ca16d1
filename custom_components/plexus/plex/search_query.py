"""The JSON search a media id may be (`{"library_name": "Movies", "title": "Dune"}`), checked.

`parse_search(text)` reads the JSON and checks every field Plexus uses against its schema:
strings are strings (a whole number is taken as a title such as "1917"), numbers are finite and in
range, whole numbers are whole, flags are true/false (or 0/1, as core Plex's searches write
them). Anything else raises :class:`BadSearchError` naming the field, instead of a `ValueError`
or `TypeError` somewhere deeper. Fields Plexus does not use are ignored (searches written for
core Plex carry a few more).

The result is a :class:`SearchQuery`; :meth:`SearchQuery.as_query` gives the checked fields as the
plain dict the resolver reads (only the fields that were given, in their checked types).
"""

from collections.abc import Callable
from dataclasses import dataclass
import json
import math
from typing import Any, Final

from .errors import PlexError

MAX_SEARCH_CHARS: Final = 4096
MAX_TEXT_CHARS: Final = 500
YEAR_RANGE: Final = (1800, 2200)
INDEX_RANGE: Final = (0, 100_000)  # season 0 holds the specials
MAX_OFFSET_S: Final = 7 * 86_400.0  # a week: longer than any audiobook

TEXT_FIELDS: Final = (
    "library_name",
    "title",
    "show_name",
    "artist_name",
    "album_name",
    "track_name",
    "playlist_name",
)
# Titles may be written as numbers ({"title": 1917}); library and playlist names may not.
NUMBER_TITLES: Final = ("title", "show_name", "artist_name", "album_name", "track_name")
INDEX_FIELDS: Final = ("season", "season_number", "episode", "episode_number")
FLAG_FIELDS: Final = ("shuffle", "resume")
# {"next_after": "<episode rating key>"}: the show's episode after that one (across seasons).
KEY_FIELDS: Final = ("next_after",)


class BadMediaIdError(PlexError):
    """The media id has a form Plexus does not accept."""


class BadSearchError(BadMediaIdError):
    """A JSON search whose `field` has a value Plexus cannot use (`reason` says what it needs)."""

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        """Name the field, what it needs and (shortened) what it got."""
        shown = "" if value is None and field == "search" else f" (got {_show(value)})"
        super().__init__(f"{field}: {reason}{shown}")
        self.field = field
        self.reason = reason


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if _finite(value) else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))


def _refuse_constant(name: str) -> Any:
    raise BadSearchError("search", f"{name} is not a number JSON allows")


def _text(field: str, value: Any) -> str:
    if field in NUMBER_TITLES and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a title that is a number ("1917")
    if not isinstance(value, str):
        raise BadSearchError(field, "must be text", value)
    if not value.strip():
        raise BadSearchError(field, "must not be empty", value)
    if len(value) > MAX_TEXT_CHARS:
        raise BadSearchError(field, f"must be at most {MAX_TEXT_CHARS} characters", value)
    return value


def _whole(field: str, value: Any, low: int, high: int) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 9:
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise BadSearchError(field, f"must be a whole number from {low} to {high}", value)
    return number


def _seconds(field: str, value: Any) -> float:
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int | float):
        number = float(value) if abs(value) <= MAX_OFFSET_S * 2 else None
    elif isinstance(value, str) and len(value) <= 32:
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0 <= number <= MAX_OFFSET_S:
        raise BadSearchError(
            field, f"must be a number of seconds from 0 to {MAX_OFFSET_S:.0f}", value
        )
    return number


def _rating_key(field: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not value.isdecimal() or len(value) > 12:
        raise BadSearchError(field, "must be a rating key (digits)", value)
    return value


def _flag(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadSearchError(field, "must be true or false", value)


_CHECKS: Final[dict[str, Callable[[str, Any], Any]]] = {
    **dict.fromkeys(TEXT_FIELDS, _text),
    "year": lambda field, value: _whole(field, value, *YEAR_RANGE),
    **dict.fromkeys(INDEX_FIELDS, lambda field, value: _whole(field, value, *INDEX_RANGE)),
    "offset": _seconds,
    **dict.fromkeys(FLAG_FIELDS, _flag),
    **dict.fromkeys(KEY_FIELDS, _rating_key),
}


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A checked JSON search: the fields Plexus uses, in their checked types."""

    fields: dict[str, Any]

    def as_query(self) -> dict[str, Any]:
        """The checked fields as a plain dict (a copy)."""
        return dict(self.fields)


def parse_search(text: str) -> SearchQuery:
    """Read and check a JSON search; raises :class:`BadSearchError` naming the bad field."""
    if len(text) > MAX_SEARCH_CHARS:
        raise BadSearchError("search", f"must be at most {MAX_SEARCH_CHARS} characters")
    try:
        raw: Any = json.loads(text, parse_constant=_refuse_constant)
    except BadSearchError:
        raise
    except (ValueError, RecursionError) as err:
        reason = f"is not valid JSON ({err})" if isinstance(err, ValueError) else "nests too deep"
        raise BadSearchError("search", reason) from err
    if not isinstance(raw, dict):
        raise BadSearchError("search", "must be a JSON object", raw)
    fields: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        if name not in raw:
            continue
        value = raw[name]
        if value is None:
            continue  # an explicit null is the same as leaving the field out
        fields[name] = check(name, value)
    return SearchQuery(fields)
