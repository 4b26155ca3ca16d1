"""The HA-free reads behind browsing: image paths, image types, stream files and MIME types."""

import pytest

from custom_components.plexus.plex.browse_reads import (
    is_image_path,
    mime_type_for,
    parse_first_part,
    sniff_image_type,
    thumbnail,
)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/library/metadata/12/thumb/1700000000", True),
        ("/playlists/951/composite/1700000000", True),
        ("/:/resources/movie.png", True),
        ("", False),
        ("http://elsewhere.example/a.jpg", False),
        ("//elsewhere.example/a.jpg", False),
        ("/library/../../etc/passwd", False),
        ("/library/metadata/1?url=http://x", False),
        ("/photo/:/transcode", False),
    ],
)
def test_is_image_path(path: str, allowed: bool) -> None:
    """Only server-relative image paths reach the photo transcoder."""
    assert is_image_path(path) is allowed


def test_sniff_image_type() -> None:
    """JPEG, PNG, GIF and WebP are recognised by their first bytes; anything else is not."""
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image_type(b"\x89PNG\r\n\x1a\nrest") == "image/png"
    assert sniff_image_type(b"GIF89a") == "image/gif"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"<MediaContainer/>") is None


def test_mime_type_for() -> None:
    """Containers map to MIME types; unknown ones fall back on the kind of item."""
    assert mime_type_for("movie", "mkv") == "video/x-matroska"
    assert mime_type_for("episode", "MP4") == "video/mp4"
    assert mime_type_for("track", "flac") == "audio/flac"
    assert mime_type_for("track", "") == "audio/mpeg"
    assert mime_type_for("movie", "weird") == "video/mp4"
    # not in our table: Python's own (audio/video only; a text type is not taken)
    assert mime_type_for("movie", "webm") == "video/webm"
    assert mime_type_for("clip", "mov") == "video/quicktime"
    assert mime_type_for("track", "txt") == "audio/mpeg"


class _NoServer:
    """A server API that must not be asked anything."""

    async def request(self, *_: object, **__: object) -> bytes:
        raise AssertionError("the server was asked")


@pytest.mark.parametrize("path", ["http://elsewhere.example/a.jpg", "/library/../../etc/passwd"])
async def test_thumbnail_of_a_foreign_path_asks_nothing(path: str) -> None:
    """A path that is not a server image path is never sent to the photo transcoder."""
    assert await thumbnail(_NoServer(), path) is None  # type: ignore[arg-type]


def test_parse_first_part() -> None:
    """The first Part of the first item, its container from the Part or else the Media."""
    body = (
        '<MediaContainer size="1"><Video ratingKey="5" type="movie">'
        '<Media container="mkv"><Part key="/library/parts/7/1/file.mkv" /></Media>'
        '<Media container="mp4"><Part key="/library/parts/8/1/file.mp4" container="mp4" /></Media>'
        "</Video></MediaContainer>"
    )
    part = parse_first_part(body)
    assert part is not None
    assert (part.key, part.container, part.mime_type) == (
        "/library/parts/7/1/file.mkv",
        "mkv",
        "video/x-matroska",
    )
    assert parse_first_part('<MediaContainer size="0" />') is None
    assert (
        parse_first_part('<MediaContainer><Directory ratingKey="1" type="show"/></MediaContainer>')
        is None
    )


def test_parse_first_part_beside_media() -> None:
    """A Part listed beside its Media (not inside it) is read too, as the catalog does."""
    body = (
        '<MediaContainer size="1"><Track ratingKey="9" type="track">'
        '<Media container="flac" /><Part key="/library/parts/3/1/file.flac" />'
        "</Track></MediaContainer>"
    )
    part = parse_first_part(body)
    assert part is not None
    assert (part.key, part.container, part.mime_type) == (
        "/library/parts/3/1/file.flac",
        "flac",
        "audio/flac",
    )
