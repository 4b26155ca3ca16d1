"""XML rendering in the shape a real Plex Media Server answers with.

Strings are built with joins (no DOM): this is the hot path of every list request.
Attribute names and element nesting follow the recorded responses in tests/fixtures/.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

from .library import SEARCH_TYPES, Collection, Item, Library, MediaInfo, Playlist, Section

if TYPE_CHECKING:
    from .clients import PlayQueue, SimulatedClient

type AttrValue = str | int | float | bool | None
type Attrs = Sequence[tuple[str, AttrValue]]

XML_DECL: Final = '<?xml version="1.0" encoding="UTF-8"?>\n'
MEDIA_TAG_PREFIX: Final = "/system/bundle/media/flags/"
MEDIA_TAG_VERSION: Final = 1718193562
IDENTIFIER: Final = "com.plexapp.plugins.library"
_ESCAPES: Final = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;"}
)
_TAG_KINDS: Final = (
    ("Genre", "genre", "genres"),
    ("Director", "director", "directors"),
    ("Writer", "writer", "writers"),
    ("Producer", "producer", "producers"),
    ("Country", "country", "countries"),
)
_LIST_TAG_LIMIT: Final = {"Genre": 2, "Director": 1, "Writer": 1, "Producer": 1, "Country": 1}
_LIST_ROLE_LIMIT: Final = 3
_ITEM_TAG: Final = {
    "movie": "Video",
    "episode": "Video",
    "track": "Track",
    "show": "Directory",
    "season": "Directory",
    "artist": "Directory",
    "album": "Directory",
}
_RESOLUTION_LABEL: Final = {"sd": "SD", "720": "720p", "1080": "1080p", "4k": "4K"}
_CODEC_LABEL: Final = {
    "h264": "H.264",
    "hevc": "HEVC",
    "mpeg4": "MPEG4",
    "aac": "AAC",
    "ac3": "Dolby Digital",
    "eac3": "EAC3",
    "dca": "DTS",
    "truehd": "TrueHD",
    "flac": "FLAC",
    "mp3": "MP3",
}
_TRANSCODED_MEDIA: Final[dict[str, AttrValue]] = {
    "videoResolution": "720",
    "width": 1280,
    "height": 720,
    "videoCodec": "h264",
    "bitrate": 4000,
}
_PEOPLE_THUMBS: Final = "https://metadata-static.plex.tv/people"
_CHANNELS_LABEL: Final = {1: "Mono", 2: "Stereo", 6: "5.1", 8: "7.1"}


def esc(value: str) -> str:
    """Escape a string for use inside a double-quoted XML attribute."""
    return value.translate(_ESCAPES)


def fmt(value: str | int | float | bool) -> str:
    """Format one attribute value the way Plex does (bools as 0/1)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return esc(value)
    return str(value)


def attrs(pairs: Attrs) -> str:
    """Render attributes, skipping None values (the hot path: kept free of helper calls)."""
    out: list[str] = []
    append = out.append
    for name, value in pairs:
        if value is None:
            continue
        if isinstance(value, str):
            append(f' {name}="{value.translate(_ESCAPES)}"')
        elif isinstance(value, bool):
            append(f' {name}="{"1" if value else "0"}"')
        else:
            append(f' {name}="{value}"')
    return "".join(out)


def element(tag: str, pairs: Attrs, children: Iterable[str] = ()) -> str:
    """Render one element; self-closing when it has no children."""
    body = "".join(children)
    if body:
        return f"<{tag}{attrs(pairs)}>\n{body}</{tag}>\n"
    return f"<{tag}{attrs(pairs)} />\n"


def container(pairs: Attrs, children: Iterable[str] = ()) -> str:
    """Render a whole response document."""
    return f"{XML_DECL}<MediaContainer{attrs(pairs)}>\n{''.join(children)}</MediaContainer>\n"


def library_container_attrs(section: Section | None) -> list[tuple[str, AttrValue]]:
    """The library attributes most /library responses carry on their root."""
    out: list[tuple[str, AttrValue]] = [
        ("allowSync", True),
        ("identifier", IDENTIFIER),
        ("mediaTagPrefix", MEDIA_TAG_PREFIX),
        ("mediaTagVersion", MEDIA_TAG_VERSION),
    ]
    if section is not None:
        out[1:1] = [
            ("art", f"/:/resources/{section.type}-fanart.jpg"),
        ]
        out += [
            ("librarySectionID", section.id),
            ("librarySectionTitle", section.title),
            ("librarySectionUUID", section.uuid),
        ]
    return out


# ---------------------------------------------------------------------------------- items


def _thumb(item: Item) -> str:
    return f"/library/metadata/{item.id}/thumb/{item.updated_at}"


def _art(item: Item) -> str:
    return f"/library/metadata/{item.id}/art/{item.updated_at}"


def item_attrs(item: Item, lib: Library, section: Section | None) -> list[tuple[str, AttrValue]]:
    """The attributes of a metadata item element, in Plex's order."""
    parent = item.parent
    grandparent = parent.parent if parent is not None else None
    kind = item.type
    out: list[tuple[str, AttrValue]] = [
        ("ratingKey", item.id),
        ("key", item.key),
    ]
    if parent is not None:
        out.append(("parentRatingKey", parent.id))
    if grandparent is not None:
        out.append(("grandparentRatingKey", grandparent.id))
    out.append(("guid", item.guid))
    if parent is not None:
        out.append(("parentGuid", parent.guid))
    if grandparent is not None:
        out.append(("grandparentGuid", grandparent.guid))
    if item.studio and kind in ("movie", "show", "album"):
        out.append(("studio", item.studio))
    out += [("type", kind), ("title", item.title)]
    if grandparent is not None:
        out.append(("grandparentKey", f"/library/metadata/{grandparent.id}"))
    if parent is not None:
        out.append(("parentKey", f"/library/metadata/{parent.id}"))
    if section is not None:
        out += [
            ("librarySectionTitle", section.title),
            ("librarySectionID", section.id),
            ("librarySectionKey", f"/library/sections/{section.id}"),
        ]
    if grandparent is not None:
        out.append(("grandparentTitle", grandparent.title))
    if parent is not None:
        out.append(("parentTitle", parent.title))
    if item.title_sort and item.title_sort != item.title:
        out.append(("titleSort", item.title_sort))
    if item.original_title:
        out.append(("originalTitle", item.original_title))
    out += [
        ("contentRating", item.content_rating),
        ("summary", item.summary),
        ("index", item.index),
    ]
    if parent is not None and kind in ("episode", "track", "season", "album"):
        out.append(("parentIndex", parent.index))
    out += [("rating", item.rating), ("audienceRating", item.audience_rating)]
    if item.view_offset:
        out.append(("viewOffset", item.view_offset))
    leaves: list[Item] | None = None
    if kind in ("show", "season", "artist", "album"):
        leaves = item.leaves()
        viewed = sum(1 for leaf in leaves if leaf.view_count)
        if viewed and kind == "album":
            out.append(("viewCount", viewed))
    elif item.view_count:
        out.append(("viewCount", item.view_count))
    last_viewed = item.last_viewed_at
    if leaves is not None and last_viewed is None:
        last_viewed = max((leaf.last_viewed_at or 0 for leaf in leaves), default=0) or None
    if last_viewed:
        out.append(("lastViewedAt", last_viewed))
    if kind == "season" and parent is not None:
        out.append(("parentYear", parent.year))
    out += [("year", item.year), ("tagline", item.tagline)]
    thumb = _thumb(item)
    art = _art(item)
    if kind == "episode" and grandparent is not None and parent is not None:
        art = _art(grandparent)
        out += [("thumb", thumb), ("art", art)]
        out += [
            ("parentThumb", _thumb(parent)),
            ("grandparentThumb", _thumb(grandparent)),
            ("grandparentArt", _art(grandparent)),
            (
                "grandparentTheme",
                f"/library/metadata/{grandparent.id}/theme/{grandparent.updated_at}",
            ),
        ]
    elif kind == "track" and grandparent is not None and parent is not None:
        out += [("thumb", _thumb(parent)), ("art", _art(grandparent))]
        out += [
            ("parentThumb", _thumb(parent)),
            ("grandparentThumb", _thumb(grandparent)),
            ("grandparentArt", _art(grandparent)),
        ]
    elif kind in ("season", "album") and parent is not None:
        out += [("thumb", thumb), ("art", _art(parent)), ("parentThumb", _thumb(parent))]
        if kind == "season":
            out.append(("parentTheme", f"/library/metadata/{parent.id}/theme/{parent.updated_at}"))
    else:
        out += [("thumb", thumb), ("art", art)]
        if kind == "show":
            out += [
                ("banner", f"/library/metadata/{item.id}/banner/{item.updated_at}"),
                ("theme", f"/library/metadata/{item.id}/theme/{item.updated_at}"),
            ]
    out.append(("duration", item.duration))
    out.append(("originallyAvailableAt", item.originally_available_at))
    if leaves is not None and kind in ("show", "season", "album"):
        out.append(("leafCount", len(leaves)))
        out.append(("viewedLeafCount", sum(1 for leaf in leaves if leaf.view_count)))
    if kind == "show":
        out.append(("childCount", len(item.children)))
    out += [("addedAt", item.added_at), ("updatedAt", item.updated_at)]
    if kind == "movie":
        out += [
            ("audienceRatingImage", "rottentomatoes://image.rating.upright"),
            ("ratingImage", "rottentomatoes://image.rating.ripe"),
        ]
    elif kind == "album":
        out.append(("loudnessAnalysisVersion", 2))
    return out


def tag_elements(item: Item, lib: Library, *, full: bool) -> list[str]:
    """Genre/Director/Writer/Producer/Country/Role children (capped in list views)."""
    out: list[str] = []
    for tag, kind, attr in _TAG_KINDS:
        values: tuple[str, ...] = getattr(item, attr)
        if not full:
            values = values[: _LIST_TAG_LIMIT[tag]]
        for value in values:
            tag_id = lib.tag_id(kind, value)
            out.append(f'<{tag} id="{tag_id}" filter="{kind}={tag_id}" tag="{esc(value)}" />\n')
    roles = item.roles if full else item.roles[:_LIST_ROLE_LIMIT]
    for n, name in enumerate(roles):
        tag_id = lib.tag_id("actor", name)
        out.append(
            f'<Role id="{tag_id}" filter="actor={tag_id}" tag="{esc(name)}" '
            f'role="Character {n + 1}" thumb="{_PEOPLE_THUMBS}/{tag_id}.jpg" />\n'
        )
    return out


def guid_elements(item: Item) -> list[str]:
    """`<Guid id="imdb://tt..."/>` children (new agents only)."""
    return [f'<Guid id="{esc(guid)}" />\n' for guid in item.ext_guids]


def stream_elements(
    item: Item,
    media: MediaInfo,
    *,
    decision: str | None = None,
    selected_only: bool = False,
    audio_id: int | None = None,
    subtitle_id: int | None = None,
) -> list[str]:
    """Video/audio/subtitle `<Stream>` children of a Part.

    Sessions list the played ones only (`selected_only`): the chosen audio stream (`audio_id`,
    default the first) and the shown subtitle stream (`subtitle_id`, default none).
    """
    base = media.part_id * 10
    out: list[str] = []
    dec: list[tuple[str, AttrValue]] = [("decision", decision)] if decision else []
    if media.video_codec:
        res = _RESOLUTION_LABEL.get(media.video_resolution or "", media.video_resolution or "")
        codec = _CODEC_LABEL.get(media.video_codec, media.video_codec.upper())
        out.append(
            element(
                "Stream",
                [
                    ("id", base + 1),
                    ("streamType", 1),
                    ("default", True),
                    ("codec", media.video_codec),
                    ("index", 0),
                    ("bitrate", max(media.bitrate - 640, 100)),
                    ("height", media.height),
                    ("width", media.width),
                    ("frameRate", "23.976"),
                    ("profile", media.video_profile),
                    ("language", "English"),
                    ("languageCode", "eng"),
                    ("displayTitle", f"{res} ({codec})"),
                    ("extendedDisplayTitle", f"{res} ({codec})"),
                    *dec,
                ],
            )
        )
    channels = _CHANNELS_LABEL.get(media.audio_channels, str(media.audio_channels))
    acodec = _CODEC_LABEL.get(media.audio_codec, media.audio_codec.upper())
    languages = [("English", "eng")]
    if media.video_codec and item.id % 3 == 0:
        languages.append(("Deutsch", "deu"))
    chosen_audio = audio_id if audio_id in {base + 2 + n for n in range(len(languages))} else None
    for n, (language, code) in enumerate(languages):
        selected = base + 2 + n == chosen_audio if chosen_audio is not None else n == 0
        if selected_only and not selected:
            continue
        out.append(
            element(
                "Stream",
                [
                    ("id", base + 2 + n),
                    ("streamType", 2),
                    ("selected", selected),
                    ("default", n == 0),
                    ("codec", media.audio_codec),
                    ("index", 1 + n),
                    ("channels", media.audio_channels),
                    ("bitrate", 640 if media.video_codec else media.bitrate),
                    ("language", language),
                    ("languageCode", code),
                    ("samplingRate", 48000 if media.video_codec else 44100),
                    ("displayTitle", f"{language} ({acodec} {channels})"),
                    ("extendedDisplayTitle", f"{language} ({acodec} {channels})"),
                    *dec,
                ],
            )
        )
    if media.video_codec:
        subtitles = [("English", "eng")]
        if item.id % 4 == 0:
            subtitles.append(("Français", "fra"))
        for n, (language, code) in enumerate(subtitles):
            shown = base + 5 + n == subtitle_id
            if selected_only and not shown:
                continue
            out.append(
                element(
                    "Stream",
                    [
                        ("id", base + 5 + n),
                        ("streamType", 3),
                        ("selected", shown or None),
                        ("default", n == 0),
                        ("codec", "srt"),
                        ("index", len(languages) + 1 + n),
                        ("language", language),
                        ("languageCode", code),
                        ("displayTitle", f"{language} (SRT)"),
                        ("extendedDisplayTitle", f"{language} (SRT)"),
                        *dec,
                    ],
                )
            )
    return out


def media_attrs(media: MediaInfo) -> list[tuple[str, AttrValue]]:
    """Attributes of `<Media>`."""
    return [
        ("id", media.id),
        ("duration", media.duration),
        ("bitrate", media.bitrate),
        ("width", media.width),
        ("height", media.height),
        ("aspectRatio", media.aspect_ratio),
        ("audioChannels", media.audio_channels),
        ("audioCodec", media.audio_codec),
        ("videoCodec", media.video_codec),
        ("videoResolution", media.video_resolution),
        ("container", media.container),
        ("videoFrameRate", media.video_frame_rate),
        ("videoProfile", media.video_profile),
    ]


def part_attrs(media: MediaInfo) -> list[tuple[str, AttrValue]]:
    """Attributes of `<Part>`."""
    return [
        ("id", media.part_id),
        (
            "key",
            f"/library/parts/{media.part_id}/{media.size % 1_000_000_000}/file.{media.container}",
        ),
        ("duration", media.duration),
        ("file", media.file),
        ("size", media.size),
        ("container", media.container),
        ("videoProfile", media.video_profile),
    ]


def media_element(item: Item, media: MediaInfo, *, streams: bool) -> str:
    """`<Media><Part>[<Stream>...]</Part></Media>`."""
    part = element("Part", part_attrs(media), stream_elements(item, media) if streams else ())
    return element("Media", media_attrs(media), (part,))


def item_element(
    item: Item,
    lib: Library,
    *,
    guids: bool = False,
    streams: bool = False,
    full: bool = False,
    extra: Attrs = (),
    fields: frozenset[str] | None = None,
    exclude: frozenset[str] = frozenset(),
) -> str:
    """One metadata item as `<Video>`, `<Directory>` or `<Track>`.

    List views (full=False) carry capped tags and Media/Part; full views (`/library/metadata/N`)
    carry all tags, Guid children, Streams and a show's Location. `fields` keeps only those
    attributes (`includeFields=`), `exclude` drops child elements (`excludeElements=`).
    """
    section = lib.sections.get(str(item.section_id))
    pairs = item_attrs(item, lib, section)
    if extra:
        pairs.extend(extra)
    if fields is not None:
        pairs = [(k, v) for k, v in pairs if k in fields]
    children: list[str] = []
    if item.media is not None and "Media" not in exclude:
        children.append(media_element(item, item.media, streams=streams or full))
    if (guids or full) and "Guid" not in exclude:
        children.extend(guid_elements(item))
    if not exclude:
        children.extend(tag_elements(item, lib, full=full))
    elif not exclude.issuperset(_TAG_NAMES):
        children.extend(
            tag
            for tag in tag_elements(item, lib, full=full)
            if tag[1:].split(" ", 1)[0] not in exclude
        )
    if full and item.location and "Location" not in exclude:
        children.append(f'<Location path="{esc(item.location)}" />\n')
    return element(_ITEM_TAG[item.type], pairs, children)


_TAG_NAMES: Final = frozenset({"Genre", "Director", "Writer", "Producer", "Country", "Role"})


# ---------------------------------------------------------------------------------- sections


def section_element(section: Section) -> str:
    """A `<Directory>` of `/library/sections` with its `<Location>` children."""
    pairs: list[tuple[str, AttrValue]] = [
        ("allowSync", True),
        ("art", f"/:/resources/{section.type}-fanart.jpg"),
        ("composite", f"/library/sections/{section.id}/composite/{section.updated_at}"),
        ("filters", True),
        ("refreshing", section.refreshing),
        ("thumb", f"/:/resources/{section.type}.png"),
        ("key", section.id),
        ("type", section.type),
        ("title", section.title),
        ("agent", section.agent),
        ("scanner", section.scanner),
        ("language", section.language),
        ("uuid", section.uuid),
        ("updatedAt", section.updated_at),
        ("createdAt", section.created_at),
        ("scannedAt", section.scanned_at),
        ("content", True),
        ("directory", True),
        ("contentChangedAt", section.updated_at % 1_000_000_000),
        ("hidden", False),
    ]
    locations = [
        f'<Location id="{section.id * 100 + n}" path="{esc(path)}" />\n'
        for n, path in enumerate(section.locations)
    ]
    return element("Directory", pairs, locations)


# ---------------------------------------------------------------------------------- meta

# (key, defaultDirection, title) per libtype; fields (key, type, title, subType).
_SORTS: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    "movie": (
        ("titleSort", "asc", "Title"),
        ("year", "desc", "Year"),
        ("originallyAvailableAt", "desc", "Release Date"),
        ("rating", "desc", "Critic Rating"),
        ("audienceRating", "desc", "Audience Rating"),
        ("duration", "desc", "Duration"),
        ("viewOffset", "desc", "Progress"),
        ("viewCount", "desc", "Plays"),
        ("addedAt", "desc", "Date Added"),
        ("lastViewedAt", "desc", "Date Viewed"),
        ("mediaHeight", "asc", "Resolution"),
        ("mediaBitrate", "desc", "Bitrate"),
        ("random", "desc", "Randomly"),
    ),
    "show": (
        ("titleSort", "asc", "Title"),
        ("year", "desc", "Year"),
        ("originallyAvailableAt", "desc", "Release Date"),
        ("rating", "desc", "Critic Rating"),
        ("audienceRating", "desc", "Audience Rating"),
        ("episode.addedAt", "desc", "Last Episode Date Added"),
        ("addedAt", "desc", "Date Added"),
        ("lastViewedAt", "desc", "Date Viewed"),
        ("random", "desc", "Randomly"),
    ),
    "season": (
        ("season.index,season.titleSort", "asc", "Season"),
        ("show.titleSort,index", "asc", "Show"),
        ("addedAt", "desc", "Date Added"),
        ("random", "desc", "Randomly"),
    ),
    "episode": (
        ("titleSort", "desc", "Title"),
        ("year", "desc", "Year"),
        ("originallyAvailableAt", "desc", "Release Date"),
        ("rating", "desc", "Critic Rating"),
        ("duration", "desc", "Duration"),
        ("viewOffset", "desc", "Progress"),
        ("viewCount", "desc", "Plays"),
        ("addedAt", "desc", "Date Added"),
        ("lastViewedAt", "desc", "Date Viewed"),
        ("mediaHeight", "desc", "Resolution"),
        ("mediaBitrate", "desc", "Bitrate"),
        ("random", "desc", "Randomly"),
    ),
    "artist": (
        ("titleSort", "asc", "Title"),
        ("addedAt", "desc", "Date Added"),
        ("lastViewedAt", "desc", "Date Played"),
        ("viewCount", "desc", "Plays"),
        ("random", "desc", "Randomly"),
    ),
    "album": (
        ("titleSort", "asc", "Title"),
        ("year", "desc", "Year"),
        ("originallyAvailableAt", "desc", "Release Date"),
        ("rating", "desc", "Critic Rating"),
        ("addedAt", "desc", "Date Added"),
        ("lastViewedAt", "desc", "Date Played"),
        ("viewCount", "desc", "Plays"),
        ("random", "desc", "Randomly"),
    ),
    "track": (
        ("titleSort", "asc", "Title"),
        ("album.titleSort", "asc", "Album"),
        ("duration", "desc", "Duration"),
        ("viewCount", "desc", "Plays"),
        ("addedAt", "desc", "Date Added"),
        ("lastViewedAt", "desc", "Date Played"),
        ("mediaBitrate", "desc", "Bitrate"),
        ("random", "desc", "Randomly"),
    ),
    "collection": (("titleSort", "asc", "Title"),),
}
_FIELDS: Final[dict[str, tuple[tuple[str, str, str, str | None], ...]]] = {
    "movie": (
        ("title", "string", "Title", None),
        ("studio", "string", "Studio", None),
        ("contentRating", "tag", "Content Rating", None),
        ("year", "integer", "Year", "year"),
        ("decade", "integer", "Decade", "decade"),
        ("originallyAvailableAt", "date", "Release Date", None),
        ("duration", "integer", "Duration", "duration"),
        ("genre", "tag", "Genre", None),
        ("director", "tag", "Director", None),
        ("writer", "tag", "Writer", None),
        ("producer", "tag", "Producer", None),
        ("actor", "tag", "Actor", None),
        ("country", "tag", "Country", None),
        ("addedAt", "date", "Date Added", None),
        ("viewCount", "integer", "Plays", None),
        ("lastViewedAt", "date", "Last Played", None),
        ("unwatched", "boolean", "Unplayed", None),
        ("resolution", "resolution", "Resolution", None),
        ("inProgress", "boolean", "In Progress", None),
    ),
    "show": (
        ("show.title", "string", "Show Title", None),
        ("show.studio", "string", "Studio", None),
        ("show.contentRating", "tag", "Content Rating", None),
        ("show.year", "integer", "Show Year", "year"),
        ("show.viewCount", "integer", "Show Plays", None),
        ("show.lastViewedAt", "date", "Show Last Played", None),
        ("show.genre", "tag", "Genre", None),
        ("show.actor", "tag", "Show Actor", None),
        ("show.addedAt", "date", "Date Show Added", None),
        ("show.unwatchedLeaves", "boolean", "Unplayed Episodes", None),
    ),
    "season": (),
    "episode": (
        ("episode.title", "string", "Episode Title", None),
        ("episode.addedAt", "date", "Date Episode Added", None),
        ("episode.originallyAvailableAt", "date", "Episode Air Date", None),
        ("episode.year", "integer", "Episode Year", "year"),
        ("episode.viewCount", "integer", "Episode Plays", None),
        ("episode.lastViewedAt", "date", "Episode Last Played", None),
        ("episode.unwatched", "boolean", "Episode Unplayed", None),
        ("episode.inProgress", "boolean", "Episode In Progress", None),
        ("episode.resolution", "resolution", "Resolution", None),
    ),
    "artist": (
        ("artist.title", "string", "Artist Title", None),
        ("artist.genre", "tag", "Artist Genre", None),
        ("artist.country", "tag", "Artist Country", None),
        ("artist.addedAt", "date", "Date Artist Added", None),
        ("artist.lastViewedAt", "date", "Artist Last Played", None),
    ),
    "album": (
        ("album.title", "string", "Album Title", None),
        ("album.year", "integer", "Year", "year"),
        ("album.genre", "tag", "Album Genre", None),
        ("album.viewCount", "integer", "Album Plays", None),
        ("album.studio", "string", "Record Label", None),
        ("album.addedAt", "date", "Date Album Added", None),
        ("album.originallyAvailableAt", "date", "Date Album Released", None),
    ),
    "track": (
        ("track.title", "string", "Track Title", None),
        ("track.viewCount", "integer", "Track Plays", None),
        ("track.lastViewedAt", "date", "Track Last Played", None),
        ("track.addedAt", "date", "Track Added At", None),
    ),
    "collection": (),
}
_FILTERS: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    "movie": (
        ("genre", "string", "Genre"),
        ("year", "integer", "Year"),
        ("decade", "integer", "Decade"),
        ("contentRating", "string", "Content Rating"),
        ("director", "string", "Director"),
        ("actor", "string", "Actor"),
        ("resolution", "string", "Resolution"),
        ("unwatched", "boolean", "Unplayed"),
        ("inProgress", "boolean", "In Progress"),
    ),
    "show": (
        ("genre", "string", "Genre"),
        ("year", "integer", "Year"),
        ("contentRating", "string", "Content Rating"),
        ("unwatchedLeaves", "boolean", "Unplayed"),
    ),
    "season": (),
    "episode": (
        ("year", "integer", "Year"),
        ("resolution", "string", "Resolution"),
        ("unwatched", "boolean", "Unplayed"),
        ("inProgress", "boolean", "In Progress"),
    ),
    "artist": (("genre", "string", "Genre"), ("country", "string", "Country")),
    "album": (("genre", "string", "Genre"), ("year", "integer", "Year")),
    "track": (),
    "collection": (),
}
_OPERATORS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "tag": (("=", "is"), ("!=", "is not")),
    "integer": (("=", "is"), ("!=", "is not"), (">>=", "is greater than"), ("<<=", "is less than")),
    "string": (
        ("=", "contains"),
        ("!=", "does not contain"),
        ("==", "is"),
        ("!==", "is not"),
        ("<=", "begins with"),
        (">=", "ends with"),
    ),
    "boolean": (("=", "is true"), ("!=", "is false")),
    "date": (("<<=", "is before"), (">>=", "is after")),
    "subtitleLanguage": (("=", "is"), ("!=", "is not")),
    "audioLanguage": (("=", "is"), ("!=", "is not")),
    "resolution": (("=", "is"),),
}
_TYPE_TITLES: Final = {
    "movie": "Movies",
    "show": "TV Shows",
    "season": "Seasons",
    "episode": "Episodes",
    "artist": "Artists",
    "album": "Albums",
    "track": "Tracks",
    "collection": "Collections",
}


def sort_elements(section: Section, libtype: str, tag: str = "Sort", active: bool = True) -> str:
    """`<Sort>` (inside Meta) or `<Directory>` (for /sorts) elements of one libtype."""
    out: list[str] = []
    for n, (key, default, title) in enumerate(_SORTS[libtype]):
        pairs: list[tuple[str, AttrValue]] = []
        if n == 0 and active:
            pairs += [("active", True), ("activeDirection", default), ("default", default)]
        pairs += [("defaultDirection", default), ("descKey", f"{key}:desc")]
        if key == "titleSort":
            pairs.append(("firstCharacterKey", f"/library/sections/{section.id}/firstCharacter"))
        pairs += [("key", key), ("title", title)]
        out.append(element(tag, pairs))
    return "".join(out)


def meta_element(section: Section, libtypes: Sequence[str], active_type: str) -> str:
    """The `<Meta>` block `includeMeta=1` adds (filter types, sorts, fields, operators)."""
    types: list[str] = []
    for libtype in libtypes:
        number = SEARCH_TYPES[libtype]
        children = [
            element(
                "Filter",
                [
                    ("filter", name),
                    ("filterType", ftype),
                    ("key", f"/library/sections/{section.id}/{name}?type={number}"),
                    ("title", title),
                    ("type", "filter"),
                ],
            )
            for name, ftype, title in _FILTERS[libtype]
        ]
        children.append(sort_elements(section, libtype, active=True))
        children += [
            element("Field", [("key", key), ("title", title), ("type", ftype), ("subType", sub)])
            for key, ftype, title, sub in _FIELDS[libtype]
        ]
        types.append(
            element(
                "Type",
                [
                    ("key", f"/library/sections/{section.id}/all?type={number}"),
                    ("type", libtype),
                    ("title", _TYPE_TITLES[libtype]),
                    ("active", libtype == active_type),
                ],
                children,
            )
        )
    if libtypes != ("collection",):
        types.append(
            element(
                "Type",
                [
                    ("key", f"/library/sections/{section.id}/folder"),
                    ("type", "folder"),
                    ("title", "Folders"),
                    ("active", False),
                ],
            )
        )
    for ftype, operators in _OPERATORS.items():
        ops = [element("Operator", [("key", key), ("title", title)]) for key, title in operators]
        types.append(element("FieldType", [("type", ftype)], ops))
    return element("Meta", (), types)


# ---------------------------------------------------------------------------------- playlists


def collection_element(collection: Collection, lib: Library) -> str:
    """A `<Directory type="collection">` of `/library/sections/<id>/collections`."""
    items = [lib.items[str(i)] for i in collection.items if str(i) in lib.items]
    years = [it.year for it in items if it.year]
    return element(
        "Directory",
        [
            ("ratingKey", collection.id),
            ("key", f"/library/collections/{collection.id}/children"),
            ("guid", collection.guid),
            ("type", "collection"),
            ("title", collection.title),
            ("librarySectionID", collection.section_id),
            ("contentRating", collection.content_rating),
            ("subtype", collection.subtype),
            ("summary", collection.summary),
            ("index", collection.id),
            ("thumb", f"/library/collections/{collection.id}/composite/{collection.updated_at}"),
            ("addedAt", collection.added_at),
            ("updatedAt", collection.updated_at),
            ("childCount", len(items)),
            ("maxYear", max(years) if years else None),
            ("minYear", min(years) if years else None),
        ],
    )


def playlist_element(playlist: Playlist, lib: Library) -> str:
    """A `<Playlist>` element as `/playlists` lists it."""
    items = [lib.items[str(i)] for i in playlist.items if str(i) in lib.items]
    return element(
        "Playlist",
        [
            ("ratingKey", playlist.id),
            ("key", f"/playlists/{playlist.id}/items"),
            ("guid", playlist.guid),
            ("type", "playlist"),
            ("title", playlist.title),
            ("summary", playlist.summary),
            ("smart", playlist.smart),
            ("playlistType", playlist.playlist_type),
            ("composite", f"/playlists/{playlist.id}/composite/{playlist.updated_at}"),
            ("viewCount", playlist.view_count or None),
            ("lastViewedAt", playlist.last_viewed_at),
            ("duration", sum(it.duration or 0 for it in items)),
            ("leafCount", len(items)),
            ("addedAt", playlist.added_at),
            ("updatedAt", playlist.updated_at),
        ],
    )


def play_queue_document(queue: PlayQueue, lib: Library, *, window: int | None = None) -> str:
    """A `/playQueues/<id>` document."""
    selected = queue.selected_index
    entries = list(enumerate(queue.items))
    if window is not None:
        entries = entries[max(0, selected - window) : selected + window + 1]
    children = []
    for _, (item_id, rating_key) in entries:
        item = lib.get(rating_key)
        if item is not None:
            children.append(
                item_element(item, lib, streams=True, extra=(("playQueueItemID", item_id),))
            )
    selected_item = queue.items[selected] if queue.items else (0, "0")
    return container(
        [
            ("size", len(children)),
            ("identifier", IDENTIFIER),
            ("mediaTagPrefix", MEDIA_TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("playQueueID", queue.id),
            ("playQueueSelectedItemID", selected_item[0]),
            ("playQueueSelectedItemOffset", selected),
            ("playQueueSelectedMetadataItemID", selected_item[1]),
            ("playQueueShuffled", queue.shuffled),
            ("playQueueSourceURI", queue.source_uri),
            ("playQueueTotalCount", len(queue.items)),
            ("playQueueVersion", queue.version),
        ],
        children,
    )


# ---------------------------------------------------------------------------------- clients


def client_server_element(client: SimulatedClient) -> str:
    """A `<Server>` element of `/clients`."""
    return element(
        "Server",
        [
            ("name", client.name),
            ("host", client.address),
            ("address", client.address),
            ("port", client.port),
            ("machineIdentifier", client.machine_identifier),
            ("version", client.version),
            ("protocol", "plex"),
            ("product", client.product),
            ("deviceClass", client.device_class),
            ("protocolVersion", 1),
            ("protocolCapabilities", client.capabilities),
        ],
    )


def player_element(client: SimulatedClient) -> str:
    """The `<Player>` child of a session item."""
    local = client.location == "lan"
    return element(
        "Player",
        [
            ("address", client.address),
            ("device", client.device),
            ("deviceClass", client.device_class),
            ("local", local),
            ("machineIdentifier", client.machine_identifier),
            ("model", client.model),
            ("platform", client.platform),
            ("platformVersion", client.platform_version),
            ("product", client.product),
            ("profile", client.profile),
            ("protocolVersion", 1),
            ("relayed", False),
            ("remotePublicAddress", client.remote_public_address),
            ("secure", True),
            ("state", client.state),
            ("title", client.name),
            ("userID", client.user_id),
            ("vendor", client.vendor),
            ("version", client.version),
        ],
    )


def transcode_session_element(client: SimulatedClient, item: Item) -> str:
    """A `<TranscodeSession>` for direct-stream ("copy") and transcode sessions."""
    media = item.media
    decision = client.stream_decision
    video = media is not None and media.video_codec is not None
    transcoding = decision == "transcode"
    duration = item.duration or 0
    position = client.position_ms
    progress = round(100.0 * position / duration, 1) if duration else 0.0
    return element(
        "TranscodeSession",
        [
            ("key", f"/transcode/sessions/{client.transcode_key}"),
            ("throttled", False),
            ("complete", False),
            ("progress", progress),
            ("size", -22),
            ("speed", 1.5 if transcoding else 9.0),
            ("error", False),
            ("duration", duration),
            ("remaining", max(0, (duration - position) // 1000)),
            ("context", "streaming"),
            ("sourceVideoCodec", media.video_codec if media and video else None),
            ("sourceAudioCodec", media.audio_codec if media else None),
            ("videoDecision", ("transcode" if transcoding else "copy") if video else None),
            ("audioDecision", "transcode" if transcoding else "copy"),
            ("protocol", "dash" if video else "http"),
            ("container", "mp4" if video else (media.container if media else "mp3")),
            ("videoCodec", "h264" if video else None),
            ("audioCodec", "aac" if transcoding else (media.audio_codec if media else None)),
            ("audioChannels", 2),
            ("transcodeHwRequested", True),
            ("timeStamp", f"{client.session_started:.4f}"),
            ("maxOffsetAvailable", round(position / 1000 + 30, 3)),
            ("minOffsetAvailable", 0),
            ("height", 720 if transcoding and video else (media.height if media else None)),
            ("width", 1280 if transcoding and video else (media.width if media else None)),
        ],
    )


def session_item_element(client: SimulatedClient, item: Item, lib: Library) -> str:
    """One `/status/sessions` entry: the item plus Media/Part decisions, User, Player, Session."""
    section = lib.sections.get(str(item.section_id))
    pairs = item_attrs(item, lib, section)
    pairs = [(k, v) for k, v in pairs if k != "viewOffset"]
    pairs += [("sessionKey", client.session_key), ("viewOffset", client.position_ms)]
    decision = client.stream_decision
    children: list[str] = []
    media = item.media
    if media is not None:
        transcoding = decision == "transcode"
        video = media.video_codec is not None
        part_decision = "directplay" if decision == "directplay" else "transcode"
        stream_decision = {"directplay": "directplay", "copy": "copy"}.get(decision, "transcode")
        media_pairs = media_attrs(media)
        if transcoding and video:
            media_pairs = [(k, _TRANSCODED_MEDIA.get(k, v)) for k, v in media_pairs]
        if decision != "directplay":
            media_pairs += [("protocol", "dash" if video else "http")]
        media_pairs += [("selected", True)]
        part_pairs = [*part_attrs(media), ("decision", part_decision), ("selected", True)]
        if decision != "directplay":
            part_pairs += [("protocol", "dash" if video else "http")]
        streams = stream_elements(
            item,
            media,
            decision=stream_decision,
            selected_only=True,
            audio_id=client.audio_stream_id,
            subtitle_id=client.subtitle_stream_id,
        )
        part = element("Part", part_pairs, streams)
        children.append(element("Media", media_pairs, (part,)))
    children.extend(guid_elements(item))
    children.extend(tag_elements(item, lib, full=False))
    account = client.user_title
    children.append(
        element(
            "User",
            [
                ("id", client.user_id),
                ("thumb", f"https://plex.tv/users/{client.user_id:016x}/avatar?c=1"),
                ("title", account),
            ],
        )
    )
    children.append(player_element(client))
    children.append(
        element(
            "Session",
            [
                ("id", client.session_id),
                ("bandwidth", client.bandwidth),
                ("location", client.location),
            ],
        )
    )
    if decision != "directplay" and media is not None:
        children.append(transcode_session_element(client, item))
    return element(_ITEM_TAG[item.type], pairs, children)


def timeline_document(client: SimulatedClient, lib: Library, server: tuple[str, str, int]) -> str:
    """What a player answers to `/player/timeline/poll` (one Timeline per media type)."""
    machine_identifier, address, port = server
    item = lib.get(client.rating_key) if client.rating_key else None
    kind = None
    if item is not None:
        kind = "music" if item.type == "track" else "video"
    timelines: list[str] = []
    for media_type in ("music", "photo", "video"):
        if item is None or media_type != kind:
            timelines.append(element("Timeline", [("type", media_type), ("state", "stopped")]))
            continue
        queue = client.play_queue
        timelines.append(
            element(
                "Timeline",
                [
                    ("type", media_type),
                    ("itemType", media_type),
                    ("state", client.state),
                    ("time", client.position_ms),
                    ("duration", item.duration),
                    ("seekRange", f"0-{item.duration}"),
                    ("ratingKey", item.id),
                    ("key", f"/library/metadata/{item.id}"),
                    ("containerKey", f"/playQueues/{queue.id}" if queue else None),
                    ("playQueueID", queue.id if queue else None),
                    ("playQueueItemID", client.play_queue_item_id),
                    ("playQueueVersion", queue.version if queue else None),
                    ("machineIdentifier", machine_identifier),
                    ("providerIdentifier", IDENTIFIER),
                    ("protocol", "http"),
                    ("address", address),
                    ("port", port),
                    ("volume", client.volume),
                    ("shuffle", False),
                    ("repeat", 0),
                    ("controllable", client.controllable),
                    ("partIndex", 0),
                    ("partCount", 1),
                ],
            )
        )
    location = "navigation"
    if item is not None and client.state != "stopped":
        location = "fullScreenMusic" if kind == "music" else "fullScreenVideo"
    return container(
        [("commandID", client.last_command_id), ("location", location), ("size", 3)], timelines
    )


def history_element(item: Item) -> str:
    """One `/status/sessions/history/all` entry (Video, or Track for music)."""
    pairs: list[tuple[str, AttrValue]] = [
        ("historyKey", f"/status/sessions/history/{item.id}"),
        ("key", item.key),
        ("ratingKey", item.rating_key),
        ("librarySectionID", item.section_id),
        ("title", item.title),
        ("type", item.type),
        ("thumb", f"/library/metadata/{item.id}/thumb/{item.updated_at}"),
        ("originallyAvailableAt", item.originally_available_at),
        ("viewedAt", item.last_viewed_at),
        ("accountID", 1),
        ("deviceID", 1),
    ]
    parent, grandparent = item.parent, item.grandparent
    if parent is not None:
        pairs += [
            ("parentKey", parent.key),
            ("parentRatingKey", parent.rating_key),
            ("parentTitle", parent.title),
            ("parentIndex", parent.index),
            ("index", item.index),
        ]
    if grandparent is not None:
        pairs += [
            ("grandparentKey", grandparent.key),
            ("grandparentRatingKey", grandparent.rating_key),
            ("grandparentTitle", grandparent.title),
        ]
    return element("Track" if item.type == "track" else "Video", pairs)
