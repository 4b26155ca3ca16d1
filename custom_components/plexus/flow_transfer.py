"""The transfer-profile subentry flow of a server entry (file sync): add and reconfigure.

A profile says where media comes from (source folders per media type, or "from the catalog":
Plex's paths mapped to local mounts by the server's path mappings), where copies go (a destination
root per media type), in which layout, and how (verification, bandwidth, retries, concurrency,
free-space reserve). Every folder must be one Home Assistant allows (`allowlist_external_dirs` /
`media_dirs`); that is asked off the event loop. Reconfiguring keeps the queue (it lives in the
catalog database under the subentry's id).
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
import probatio as vol

from .const import (
    CONF_BACKOFF_BASE,
    CONF_BACKOFF_CAP,
    CONF_BANDWIDTH_LIMIT,
    CONF_CONCURRENCY,
    CONF_FREE_SPACE_RESERVE,
    CONF_LAYOUT,
    CONF_MOVIE_DESTINATION,
    CONF_MOVIE_SOURCES,
    CONF_PROFILE_NAME,
    CONF_RETRIES,
    CONF_SOURCE_MODE,
    CONF_TV_DESTINATION,
    CONF_TV_SOURCES,
    CONF_VERIFY,
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_CONCURRENCY,
    DEFAULT_FREE_SPACE_RESERVE,
    DEFAULT_LAYOUT,
    DEFAULT_RETRIES,
    DEFAULT_VERIFY,
    SOURCE_MODE_CATALOG,
    SOURCE_MODE_FOLDERS,
    SUBENTRY_TRANSFER,
)

SOURCE_FIELDS = (CONF_MOVIE_SOURCES, CONF_TV_SOURCES)
DESTINATION_FIELDS = (CONF_MOVIE_DESTINATION, CONF_TV_DESTINATION)


def _select(options: list[str], key: str) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(options=options, translation_key=key, mode=SelectSelectorMode.LIST)
    )


def _box(minimum: float, maximum: float, unit: str, step: float = 1) -> vol.All[Any]:
    return vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=minimum,
                max=maximum,
                step=step,
                mode=NumberSelectorMode.BOX,
                unit_of_measurement=unit,
            )
        ),
        vol.Coerce(float if step < 1 else int),
    )


def profile_schema() -> vol.Schema:
    """The profile form (the same for adding and reconfiguring)."""
    multiline = TextSelector(TextSelectorConfig(multiline=True))
    return vol.Schema(
        {
            vol.Required(CONF_PROFILE_NAME): TextSelector(),
            vol.Required(CONF_SOURCE_MODE, default=SOURCE_MODE_FOLDERS): _select(
                [SOURCE_MODE_FOLDERS, SOURCE_MODE_CATALOG], CONF_SOURCE_MODE
            ),
            vol.Optional(CONF_MOVIE_SOURCES): multiline,
            vol.Optional(CONF_TV_SOURCES): multiline,
            vol.Optional(CONF_MOVIE_DESTINATION): TextSelector(),
            vol.Optional(CONF_TV_DESTINATION): TextSelector(),
            vol.Required(CONF_LAYOUT, default=DEFAULT_LAYOUT): _select(
                ["plex", "mirror"], CONF_LAYOUT
            ),
            vol.Required(CONF_VERIFY, default=DEFAULT_VERIFY): _select(
                ["sha256", "size"], CONF_VERIFY
            ),
            vol.Required(CONF_BANDWIDTH_LIMIT, default=0): _box(0, 10_000_000, "KiB/s"),
            vol.Required(CONF_RETRIES, default=DEFAULT_RETRIES): _box(0, 100, ""),
            vol.Required(CONF_BACKOFF_BASE, default=DEFAULT_BACKOFF_BASE): _box(0.5, 60, "s", 0.5),
            vol.Required(CONF_BACKOFF_CAP, default=DEFAULT_BACKOFF_CAP): _box(0.5, 60, "s", 0.5),
            vol.Required(CONF_CONCURRENCY, default=DEFAULT_CONCURRENCY): _box(1, 8, ""),
            vol.Required(CONF_FREE_SPACE_RESERVE, default=DEFAULT_FREE_SPACE_RESERVE): _box(
                0, 10_000_000, "MiB"
            ),
        }
    )


def _lines(value: Any) -> list[str]:
    """The folders of a multi-line text box (its selector only lets text through)."""
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def validate_profile(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the profile's data and the form errors (no I/O: the allowlist is asked later)."""
    errors: dict[str, str] = {}
    name = str(user_input.get(CONF_PROFILE_NAME, "")).strip()
    if not name:
        errors[CONF_PROFILE_NAME] = "invalid_name"
    mode = user_input.get(CONF_SOURCE_MODE, SOURCE_MODE_FOLDERS)
    data: dict[str, Any] = {CONF_PROFILE_NAME: name, CONF_SOURCE_MODE: mode}
    for key in SOURCE_FIELDS:
        paths = [os.path.normpath(p) for p in _lines(user_input.get(key))]
        if any(not PurePath(p).is_absolute() for p in paths):
            errors[key] = "path_not_absolute"
        data[key] = paths
    for key in DESTINATION_FIELDS:
        path = str(user_input.get(key) or "").strip()
        if path and not PurePath(path).is_absolute():
            errors[key] = "path_not_absolute"
        data[key] = os.path.normpath(path) if path else ""
    if not data[CONF_MOVIE_DESTINATION] and not data[CONF_TV_DESTINATION]:
        errors[CONF_MOVIE_DESTINATION] = "destination_required"
    if mode == SOURCE_MODE_FOLDERS and not data[CONF_MOVIE_SOURCES] and not data[CONF_TV_SOURCES]:
        errors[CONF_MOVIE_SOURCES] = "sources_required"
    base = float(user_input.get(CONF_BACKOFF_BASE, DEFAULT_BACKOFF_BASE))
    cap = float(user_input.get(CONF_BACKOFF_CAP, DEFAULT_BACKOFF_CAP))
    if not 0 < base <= cap <= 60:
        errors[CONF_BACKOFF_BASE] = "invalid_backoff"
    data |= {
        CONF_LAYOUT: user_input.get(CONF_LAYOUT, DEFAULT_LAYOUT),
        CONF_VERIFY: user_input.get(CONF_VERIFY, DEFAULT_VERIFY),
        CONF_BANDWIDTH_LIMIT: int(user_input.get(CONF_BANDWIDTH_LIMIT, 0)),
        CONF_RETRIES: int(user_input.get(CONF_RETRIES, DEFAULT_RETRIES)),
        CONF_BACKOFF_BASE: base,
        CONF_BACKOFF_CAP: cap,
        CONF_CONCURRENCY: int(user_input.get(CONF_CONCURRENCY, DEFAULT_CONCURRENCY)),
        CONF_FREE_SPACE_RESERVE: int(
            user_input.get(CONF_FREE_SPACE_RESERVE, DEFAULT_FREE_SPACE_RESERVE)
        ),
    }
    return data, errors


async def refused_paths(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, str]:
    """Return {field: first refused path} for folders Home Assistant does not allow."""
    wanted: list[tuple[str, str]] = [(k, p) for k in SOURCE_FIELDS for p in data.get(k, [])]
    wanted += [(k, data[k]) for k in DESTINATION_FIELDS if data.get(k)]

    def check() -> dict[str, str]:
        refused: dict[str, str] = {}
        for key, path in wanted:
            if key not in refused and not hass.config.is_allowed_path(path):
                refused[key] = path
        return refused

    return await hass.async_add_executor_job(check)


def _form_values(data: dict[str, Any]) -> dict[str, Any]:
    """Subentry data as the form shows it (lists of folders as lines)."""
    return {k: "\n".join(v) if k in SOURCE_FIELDS else v for k, v in data.items()}


class TransferProfileSubentryFlow(ConfigSubentryFlow):
    """Add or change a transfer profile (file sync)."""

    async def _validate(
        self, user_input: dict[str, Any], own_id: str | None
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
        data, errors = validate_profile(user_input)
        placeholders: dict[str, str] = {"path": "-"}
        entry = self._get_entry()
        if any(
            sub.subentry_type == SUBENTRY_TRANSFER
            and sub.subentry_id != own_id
            and sub.data.get(CONF_PROFILE_NAME, "").casefold() == data[CONF_PROFILE_NAME].casefold()
            for sub in entry.subentries.values()
        ):
            errors[CONF_PROFILE_NAME] = "profile_exists"
        if not errors:
            refused = await refused_paths(self.hass, data)
            for key in refused:
                errors[key] = "path_not_allowed"
            if refused:  # (one placeholder for every field's error: name every folder refused)
                placeholders["path"] = ", ".join(dict.fromkeys(refused.values()))
        return data, errors, placeholders

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name, sources, destinations, layout and transfer settings."""
        errors: dict[str, str] = {}
        placeholders = {"path": "-"}
        if user_input is not None:
            data, errors, placeholders = await self._validate(user_input, None)
            if not errors:
                # Start the profile's queue: reload the server entry once the subentry is stored.
                self.hass.config_entries.async_schedule_reload(self._get_entry().entry_id)
                return self.async_create_entry(title=data[CONF_PROFILE_NAME], data=data)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(profile_schema(), user_input or {}),
            errors=errors,
            description_placeholders={"path": placeholders["path"]},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change the profile; its queue (and partial copies) are kept."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        placeholders = {"path": "-"}
        if user_input is not None:
            data, errors, placeholders = await self._validate(user_input, subentry.subentry_id)
            if not errors:
                return self.async_update_reload_and_abort(
                    self._get_entry(), subentry, title=data[CONF_PROFILE_NAME], data=data
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                profile_schema(), user_input or _form_values(dict(subentry.data))
            ),
            errors=errors,
            description_placeholders={"path": placeholders["path"]},
        )
