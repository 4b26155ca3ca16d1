"""Catalog rows to read models: the item query and loading items with their GUIDs and files."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from . import schema as s
from .models import CatalogItem, GuidRef, MediaFileInfo


def item_query() -> Any:
    """Return the select of items with their server and library keys."""
    i = s.items
    return (
        select(
            i,
            s.servers.c.machine_identifier,
            s.libraries.c.section_key,
        )
        .join(s.servers, s.servers.c.id == i.c.server_id)
        .join(s.libraries, s.libraries.c.id == i.c.library_id)
    )


def load_items(conn: Connection, rows: Sequence[Row[Any]]) -> list[CatalogItem]:
    """Return the items of ``item_query()`` rows, with their GUIDs and files."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    guid_map: dict[int, list[GuidRef]] = {}
    for g in conn.execute(
        select(
            s.guids.c.item_id,
            s.guids.c.provider,
            s.guids.c.value,
            s.guids.c.season,
            s.guids.c.episode,
        )
        .where(s.guids.c.item_id.in_(ids))
        .order_by(s.guids.c.id)
    ):
        guid_map.setdefault(g[0], []).append(GuidRef(g[1], g[2], g[3], g[4]))
    file_map: dict[int, list[MediaFileInfo]] = {}
    m = s.media_files
    for f in conn.execute(
        select(
            m.c.item_id,
            m.c.plex_path,
            m.c.local_path,
            m.c.mapped,
            m.c.size,
            m.c.container,
            m.c.video_codec,
            m.c.video_resolution,
        )
        .where(m.c.item_id.in_(ids))
        .order_by(m.c.id)
    ):
        file_map.setdefault(f[0], []).append(
            MediaFileInfo(f[1], f[2], bool(f[3]), f[4], f[5], f[6], f[7])
        )
    return [
        CatalogItem(
            server_id=row.machine_identifier,
            library_key=row.section_key,
            rating_key=row.rating_key,
            type=row.type,
            title=row.title,
            sort_title=row.sort_title,
            original_title=row.original_title,
            year=row.year,
            parent_rating_key=row.parent_rating_key,
            grandparent_rating_key=row.grandparent_rating_key,
            grandparent_title=row.grandparent_title,
            season_number=row.season_number,
            episode_number=row.episode_number,
            duration=row.duration,
            added_at=row.added_at,
            updated_at=row.updated_at,
            guids=tuple(guid_map.get(row.id, ())),
            files=tuple(file_map.get(row.id, ())),
            parent_title=row.parent_title,
        )
        for row in rows
    ]
