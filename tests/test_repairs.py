"""The Repairs fix flow of watch-tracking conflicts: stale flows, unloaded entries, two servers."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import DOMAIN as REPAIRS_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.plexus.const import DOMAIN
from custom_components.plexus.repairs import conflict_issue_id
from tests.conftest import entry_data
from tests.plex_simulator import PlexSimulator
from tests.test_tracking_ha import form, history, imported, item_payload, manager_of, url_of


async def _conflict(
    hass: HomeAssistant,
    sim: PlexSimulator,
    entry: MockConfigEntry,
    client_factory: ClientSessionGenerator,
    name: str,
) -> tuple[str, list[str]]:
    """Two shows near one webhook's title: a conflict. Its issue id and candidates' keys."""
    lib = sim.library
    us = lib.add_show(f"{name} (US)", year=2005)
    uk = lib.add_show(f"{name} (UK)", year=2001)
    episode = lib.add_episode(us, 1, 1, title="Pilot", duration_ms=1_500_000)
    lib.add_episode(uk, 1, 1, title="Downsize", duration_ms=1_800_000)
    await imported(hass, entry)
    payload = item_payload(sim, episode)
    payload["Metadata"] |= {
        "ratingKey": "777777",
        "guid": "local://777777",
        "Guid": [],
        "grandparentTitle": name,
        "grandparentRatingKey": "777770",
        "grandparentGuid": "local://777770",
    }
    client = await client_factory()
    assert (await client.post(url_of(entry), data=form(payload))).status == 200
    await hass.async_block_till_done(wait_background_tasks=True)
    tracker = manager_of(entry).tracker
    assert tracker is not None
    mine = [c for c in await tracker.conflicts() if c.server == sim.machine_identifier]
    assert len(mine) == 1
    return conflict_issue_id(entry.entry_id, mine[0].show_key), [us.rating_key, uk.rating_key]


async def _open_fix(client: Any, issue_id: str) -> dict[str, Any]:
    resp = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert resp.status == 200, await resp.text()
    flow: dict[str, Any] = await resp.json()
    return flow


async def _answer(client: Any, flow: dict[str, Any], choice: str) -> dict[str, Any]:
    resp = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={"choice": choice})
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def test_second_fix_flow_of_a_resolved_conflict_aborts(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Two browser tabs on one conflict: the second answer finds it resolved; recorded once."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    issue_id, (us_key, uk_key) = await _conflict(
        hass, simulator, loaded, hass_client_no_auth, "The Office"
    )
    client = await hass_client()
    first = await _open_fix(client, issue_id)
    second = await _open_fix(client, issue_id)
    assert first["step_id"] == second["step_id"] == "init"
    assert first["description_placeholders"]["title"] == "The Office"

    # An answer that is none of the candidates is refused; the flow stays open.
    resp = await client.post(
        f"/api/repairs/issues/fix/{first['flow_id']}", json={"choice": "not-a-candidate"}
    )
    assert resp.status == 400
    assert "choice" in (await resp.json())["errors"]

    done = await _answer(client, first, us_key)
    assert done["type"] == "create_entry"
    await hass.async_block_till_done(wait_background_tasks=True)
    stale = await _answer(client, second, uk_key)
    assert stale["type"] == "abort"
    assert stale["reason"] == "already_resolved"
    watches = await history(loaded)
    # Recorded once, on the show picked first.
    assert [w.show_rating_key for w in watches] == [us_key]


async def test_fix_flow_of_an_unloaded_entry_aborts(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The server entry was unloaded (disabled): the fix flow says so instead of failing."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    issue_id, _ = await _conflict(hass, simulator, loaded, hass_client_no_auth, "The Office")
    assert await hass.config_entries.async_unload(loaded.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    flow = await _open_fix(await hass_client(), issue_id)
    assert flow["type"] == "abort"
    assert flow["reason"] == "not_loaded"


async def test_conflicts_of_two_servers_sharing_the_catalog(
    hass: HomeAssistant,
    simulator: PlexSimulator,
    loaded: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Both servers' conflicts live in one database; each entry raises issues for its own only."""
    other = PlexSimulator(token="other-token", clients=1, seed=9, friendly_name="Other Plex")
    await other.start()
    try:
        second = MockConfigEntry(
            domain=DOMAIN,
            title="Other Plex",
            unique_id=other.machine_identifier,
            data=entry_data(other),
        )
        second.add_to_hass(hass)
        assert await hass.config_entries.async_setup(second.entry_id)
        await hass.async_block_till_done()
        other_issue, _ = await _conflict(hass, other, second, hass_client_no_auth, "Ghosts")
        mine, _ = await _conflict(hass, simulator, loaded, hass_client_no_auth, "The Office")
        registry = ir.async_get(hass)
        ours = {
            issue_id
            for (domain, issue_id) in registry.issues
            if domain == DOMAIN and issue_id.startswith("tracking_conflict_")
        }
        assert ours == {mine, other_issue}
        assert registry.async_get_issue(DOMAIN, mine).translation_placeholders["server"] == (
            loaded.title
        )
        assert registry.async_get_issue(DOMAIN, other_issue).translation_placeholders["server"] == (
            "Other Plex"
        )
        assert await hass.config_entries.async_unload(second.entry_id)
        await hass.async_block_till_done()
    finally:
        await other.stop()


async def test_fix_flow_of_an_issue_without_data_aborts(
    hass: HomeAssistant, loaded: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """A fixable Plexus issue that lost its data (not one we raise) aborts instead of failing."""
    assert await async_setup_component(hass, REPAIRS_DOMAIN, {})
    ir.async_create_issue(
        hass,
        DOMAIN,
        "tracking_conflict_without_data",
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="tracking_conflict",
        translation_placeholders={"title": "?", "server": "?", "pending": "0"},
    )
    flow = await _open_fix(await hass_client(), "tracking_conflict_without_data")
    assert flow["type"] == "abort"
    assert flow["reason"] == "not_loaded"
