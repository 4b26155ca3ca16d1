"""The server's watch history, read page by page (engine, against the simulator)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import ClientSession

from custom_components.plexus.plex.api import PlexServerAPI
from custom_components.plexus.plex.history import parse_history, read_history
from tests.plex_simulator import PlexSimulator


async def test_read_history_since_a_time_in_pages(
    simulator: PlexSimulator, session: ClientSession
) -> None:
    lib = simulator.library
    movies = lib.movies()[:5]
    for n, movie in enumerate(movies):
        lib.clock = lambda n=n: 1_800_000_000 + n * 3600
        lib.mark_watched(movie.rating_key)
    api = PlexServerAPI(session, simulator.url, simulator.token)

    since = datetime.fromtimestamp(1_800_000_000 + 3600, UTC)  # after the first two views
    pages = [page async for page in read_history(api, since=since, page_size=2)]
    # Three views after that time, newest first, two per page.
    assert [len(p) for p in pages] == [2, 1]
    keys = [e.rating_key for page in pages for e in page]
    assert keys == [m.rating_key for m in reversed(movies[2:])]
    assert all(e.viewed_at > since for page in pages for e in page)
    asked = [q for _, p, q in simulator.requests if p == "/status/sessions/history/all"]
    assert all(q["viewedAt>"] == str(int(since.timestamp())) for q in asked)


def test_rows_of_deleted_items_and_without_a_time_are_skipped() -> None:
    """A deleted item keeps its history row without a rating key: nothing to match it to."""
    body = b"""<MediaContainer size="4" totalSize="40">
      <Video historyKey="/status/sessions/history/1" title="Gone" type="movie"
             viewedAt="1700000000" />
      <Video ratingKey="12" title="No time" type="movie" />
      <Video ratingKey="13" title="Bad time" type="movie" viewedAt="yesterday" />
      <Video ratingKey="14" title="Pilot" type="episode" grandparentTitle="Show" parentIndex="1"
             index="x" viewedAt="1700000100" accountID="3" />
    </MediaContainer>"""
    entries, total = parse_history(body)
    assert total == 40
    assert [e.rating_key for e in entries] == ["14"]
    pilot = entries[0]
    assert (pilot.season, pilot.episode, pilot.account_id) == (1, None, "3")
    assert pilot.viewed_at == datetime.fromtimestamp(1_700_000_100, UTC)
