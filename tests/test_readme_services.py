"""The README's Plexus actions exist, and its example YAML passes their real schemas.

Read from README.md itself: every `plexus.<name>` the text mentions must be a registered action,
and every YAML block (examples, automations) that calls `action: plexus.*` must pass that action's
schema as registered in Home Assistant. Bad input this catches: a renamed or removed action, a field
the README spells differently from the schema (`show_name` for `show`), a value the schema refuses.
"""

from collections.abc import Iterator
from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
import voluptuous as vol
import yaml

from custom_components.plexus.const import DOMAIN

README = Path(__file__).parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")


def _actions(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping with `action: plexus.…` in a parsed YAML block, however deep."""
    if isinstance(node, dict):
        if str(node.get("action", "")).startswith(f"{DOMAIN}."):
            yield node
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _actions(value)


def readme_calls() -> list[dict[str, Any]]:
    """The `action: plexus.*` calls of every YAML block of the README."""
    blocks = re.findall(r"```yaml\n(.*?)```", TEXT, re.DOTALL)
    return [call for block in blocks for call in _actions(yaml.safe_load(block))]


@pytest.fixture
async def services(hass: HomeAssistant) -> dict[str, Any]:
    """The integration's registered actions (registered in async_setup, no entry needed)."""
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    return hass.services.async_services_for_domain(DOMAIN)


def test_readme_has_action_examples() -> None:
    """The extraction finds the README's examples (an empty list would prove nothing)."""
    names = {call["action"] for call in readme_calls()}
    assert {"plexus.sync_media", "plexus.search", "plexus.playlist_add"} <= names


async def test_every_action_the_readme_names_exists(services: dict[str, Any]) -> None:
    named = set(re.findall(rf"\b{DOMAIN}\.([a-z_]+)\b", TEXT))
    assert named, "the README names no action"
    assert named - set(services) == set()


@pytest.mark.parametrize(
    "call", readme_calls(), ids=lambda call: f"{call['action']}:{sorted(call.get('data', {}))}"
)
async def test_readme_example_passes_the_schema(
    services: dict[str, Any], call: dict[str, Any]
) -> None:
    service = services[call["action"].removeprefix(f"{DOMAIN}.")]
    assert service.schema is not None
    service.schema(call.get("data", {}))


async def test_schema_check_refuses_a_misspelt_field(services: dict[str, Any]) -> None:
    """The check above can fail: a field the schema does not know is refused."""
    with pytest.raises(vol.Invalid):
        services["sync_media"].schema({"profile": "Laptop", "show_name": "Doctor Who"})
