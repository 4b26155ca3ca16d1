"""The sync-play group subentry flow of a server entry: add and reconfigure."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentryFlow, SubentryFlowResult

from .const import CONF_GROUP_NAME, CONF_SECRET, CONF_TOPIC, SUBENTRY_SYNC_GROUP
from .flow_schemas import group_schema
from .flow_validate import validate_group


def _topic_taken(entry: ConfigEntry, topic: str, own_id: str | None) -> bool:
    """Whether another sync-play group of this server uses `topic` (its unique id)."""
    return any(
        sub.unique_id == topic
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_SYNC_GROUP and sub.subentry_id != own_id
    )


class SyncGroupSubentryFlow(ConfigSubentryFlow):
    """Add or change a sync-play group.

    Homes join the same group by using the same name, topic and secret. The secret is generated
    when left empty. The group is created as soon as the form is accepted; the finish dialog shows
    the secret to copy to the other homes, and the group's reconfigure form shows it again, so
    closing a dialog loses nothing.
    """

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name, topic, secret (empty: generate one) and the local players taking part."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = validate_group(user_input)
            entry = self._get_entry()
            if not errors and _topic_taken(entry, data[CONF_TOPIC], None):
                errors[CONF_TOPIC] = "group_exists"
            if not errors:
                # Start the group's engine: reload the server entry once the subentry is stored.
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_create_entry(
                    title=data[CONF_GROUP_NAME],
                    data=data,
                    unique_id=data[CONF_TOPIC],
                    description="created",
                    description_placeholders={
                        "name": data[CONF_GROUP_NAME],
                        "topic": data[CONF_TOPIC],
                        "secret": data[CONF_SECRET],
                    },
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(group_schema(), user_input or {}),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change members, topic or secret (a new secret must be given to every home)."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = validate_group(
                {
                    **user_input,
                    CONF_SECRET: user_input.get(CONF_SECRET) or subentry.data[CONF_SECRET],
                }
            )
            if not errors and _topic_taken(entry, data[CONF_TOPIC], subentry.subentry_id):
                errors[CONF_TOPIC] = "group_exists"
            if not errors:
                return self.async_update_reload_and_abort(
                    entry,
                    subentry,
                    title=data[CONF_GROUP_NAME],
                    data=data,
                    unique_id=data[CONF_TOPIC],
                )
        suggested = {k: v for k, v in subentry.data.items() if k != CONF_SECRET}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                group_schema(), user_input or suggested
            ),
            errors=errors,
            description_placeholders={
                "topic": subentry.data[CONF_TOPIC],
                "secret": subentry.data[CONF_SECRET],
            },
        )
