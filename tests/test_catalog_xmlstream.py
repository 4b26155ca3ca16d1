"""The streaming parsers of library listings, fed what real servers send that is odd."""

from xml.etree.ElementTree import ParseError

import pytest

from custom_components.plexus.catalog.models import ItemRecord
from custom_components.plexus.catalog.xmlstream import (
    ItemStreamParser,
    KeyStreamParser,
    parse_sections,
)

LISTING = b"""<?xml version="1.0" encoding="UTF-8"?>
<MediaContainer size="5" totalSize="12" librarySectionID="1">
  <Meta>
    <Type key="/library/sections/1/all?type=1" type="movie"><Filter filter="genre"/></Type>
  </Meta>
  <Directory ratingKey="900" type="collection" title="Dune Collection" />
  <Video type="movie" title="Keyless" year="2001" />
  <Video ratingKey="10" type="movie" title="Dune" year="unknown" duration="9.5e3x"
         addedAt="1700000000.0" guid="plex://movie/5d776b59ad5437001f79c6f8">
    <Media videoCodec="h264" videoResolution="1080" width="1920" height="800" container="mkv">
      <Part id="1" file="/data/movies/Dune (2021)/Dune.mkv" size="123456789" />
      <Part id="2" />
    </Media>
    <Guid id="imdb://tt1160419" />
    <Guid />
    <Genre tag="Science Fiction" />
  </Video>
  <Video ratingKey="11" type="episode" title="Pilot" index="1" parentIndex="2" />
</MediaContainer>
"""


def _feed_in_chunks(parser: ItemStreamParser, body: bytes, size: int) -> list[ItemRecord]:
    items: list[ItemRecord] = []
    for start in range(0, len(body), size):
        items += parser.feed(body[start : start + size])
    return items + parser.close()


@pytest.mark.parametrize("chunk", [7, 64, len(LISTING)])
def test_items_from_a_listing_with_collections_keyless_rows_and_bad_numbers(chunk: int) -> None:
    parser = ItemStreamParser()
    items = _feed_in_chunks(parser, LISTING, chunk)
    assert [i.rating_key for i in items] == ["10", "11"]
    # Every item element is counted as listed (the collection and keyless row too); two kept.
    assert (parser.listed, parser.count, parser.total_size) == (4, 2, 12)
    dune, pilot = items
    assert dune.year is None
    assert dune.duration is None
    assert dune.added_at == 1_700_000_000
    # A Part without a file (not on disk) is no media file.
    assert [m.plex_path for m in dune.media] == ["/data/movies/Dune (2021)/Dune.mkv"]
    assert dune.media[0].video_resolution == "1080"
    # The Guid without an id is passed over.
    assert [(g.provider, g.id) for g in dune.guids] == [
        ("plex", "movie/5d776b59ad5437001f79c6f8"),
        ("imdb", "tt1160419"),
    ]
    assert (pilot.season_number, pilot.episode_number) == (2, 1)


def test_keys_skip_collections_and_keyless_rows() -> None:
    parser = KeyStreamParser()
    parser.feed(LISTING[:100])
    parser.feed(LISTING[100:])
    parser.close()
    assert parser.keys == ["10", "11"]
    assert parser.count == 4
    assert parser.container["totalSize"] == "12"


def test_truncated_listing_raises() -> None:
    parser = ItemStreamParser()
    parser.feed(LISTING[: len(LISTING) // 2])
    with pytest.raises(ParseError):
        parser.close()


def test_sections_without_a_key_are_skipped() -> None:
    body = b"""<MediaContainer size="2">
      <Directory title="Broken" type="movie" />
      <Directory key="2" type="show" title="TV Shows" agent="tv.plex.agents.series">
        <Location id="3" path="/data/tv" />
      </Directory>
    </MediaContainer>"""
    sections = parse_sections(body)
    assert [(s.key, s.title) for s in sections] == [("2", "TV Shows")]
