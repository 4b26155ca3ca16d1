"""The Plex server's own updates: ``/updater/status`` and ``PUT /updater/apply``.

A server lists the releases it knows in ``<Release>`` elements (version, ``fixed``/``added``
release notes); ``canInstall="1"`` on the container means it can install the newest one itself
(Windows/macOS; on Linux packages and Docker it cannot). Download URLs carry the account token,
so they are never kept.
"""

from dataclasses import dataclass
from xml.etree import ElementTree as ET

from .api import PlexServerAPI
from .errors import PlexResponseError


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """The newest release the server knows, and whether it can install it."""

    latest_version: str | None
    release_notes: str | None
    can_install: bool


def parse_update_status(body: bytes) -> UpdateStatus:
    """Read an ``/updater/status`` answer; PlexResponseError when it is not one."""
    try:
        root = ET.fromstring(body)  # noqa: S314 - the body comes from the user's own server
    except ET.ParseError as err:
        raise PlexResponseError(f"/updater/status is not XML: {err}") from err
    if root.tag != "MediaContainer":
        raise PlexResponseError("/updater/status is not a MediaContainer")
    releases = root.findall("Release")
    if not releases:
        return UpdateStatus(None, None, can_install=False)
    newest = releases[-1]
    notes = "\n\n".join(
        f"{title}:\n{text}"
        for title, text in (("Fixed", newest.get("fixed", "")), ("New", newest.get("added", "")))
        if text.strip()
    )
    return UpdateStatus(
        newest.get("version") or None,
        notes or None,
        can_install=root.get("canInstall") in ("1", "true"),
    )


async def update_status(api: PlexServerAPI) -> UpdateStatus:
    """Ask the server which release is newest."""
    return parse_update_status(await api.request("/updater/status"))


async def apply_update(api: PlexServerAPI) -> None:
    """Ask the server to install the newest release (only where it can)."""
    await api.request("/updater/apply", method="PUT")
