"""Repairs of Plexus: a watch-tracking conflict is a fixable issue the user resolves.

When a watched show (or movie) cannot be matched to the catalog with enough confidence, the tracker
keeps its watches pending and Plexus raises one issue per show (`tracking_conflict`). Its fix flow
lists the candidates (title, year, library, confidence) and lets the user pick one or ignore the
show; the choice is remembered (later watches of the show are mapped at once) and the pending
watches are recorded.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
import probatio as vol

from .const import DOMAIN
from .ids import signal_watches_changed

if TYPE_CHECKING:
    from .tracking_manager import TrackingManager

CONFLICT_PREFIX = "tracking_conflict_"
IGNORE = "ignore"
CHOICE = "choice"


def conflict_issue_id(entry_id: str, show_key: str) -> str:
    """Return the issue id of a show's conflict (stable, short)."""
    digest = hashlib.sha256(show_key.encode()).hexdigest()[:16]
    return f"{CONFLICT_PREFIX}{entry_id}_{digest}"


async def async_raise_conflicts(hass: HomeAssistant, manager: TrackingManager) -> None:
    """Raise (or refresh) one fixable issue per show waiting for the user."""
    tracker = manager.tracker
    # Called for a conflict the tracker has just found: it exists (and is never closed).
    assert tracker is not None
    for conflict in await tracker.conflicts():
        if conflict.server != manager.server_id:
            continue
        ir.async_create_issue(
            hass,
            DOMAIN,
            conflict_issue_id(manager.entry.entry_id, conflict.show_key),
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="tracking_conflict",
            translation_placeholders={
                "title": conflict.title or conflict.show_key,
                "server": manager.entry.title,
                "pending": str(conflict.pending),
            },
            data={"entry_id": manager.entry.entry_id, "show_key": conflict.show_key},
        )


def _label(candidate: dict[str, Any]) -> str:
    year = f" ({candidate['year']})" if candidate.get("year") else ""
    library = f" — {candidate['library']}" if candidate.get("library") else ""
    confidence = round(float(candidate.get("confidence") or 0.0) * 100)
    return f"{candidate.get('title')}{year}{library} · {confidence} %"


class TrackingConflictRepairFlow(RepairsFlow):
    """Pick the right item for a show Plexus could not match, or ignore the show."""

    def __init__(self, entry_id: str, show_key: str) -> None:
        """Remember which conflict this is."""
        self._entry_id = entry_id
        self._show_key = show_key

    def _manager(self) -> TrackingManager | None:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        runtime = getattr(entry, "runtime_data", None) if entry is not None else None
        return getattr(runtime, "tracking", None)

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> RepairsFlowResult:
        """Show the candidates; apply the choice."""
        manager = self._manager()
        tracker = manager.tracker if manager is not None else None
        if manager is None or tracker is None:
            return self.async_abort(reason="not_loaded")
        conflict = next(
            (
                c
                for c in await tracker.conflicts()
                if c.server == manager.server_id and c.show_key == self._show_key
            ),
            None,
        )
        if conflict is None:
            return self.async_abort(reason="already_resolved")
        keys = {str(c["rating_key"]) for c in conflict.candidates}
        # The repairs manager opens the flow with the issue's data: only a choice is an answer.
        choice = (user_input or {}).get(CHOICE)
        if choice is not None and (choice == IGNORE or choice in keys):
            await tracker.resolve_conflict(
                manager.server_id, self._show_key, None if choice == IGNORE else choice
            )
            async_dispatcher_send(self.hass, signal_watches_changed(manager.server_id))
            return self.async_create_entry(data={})
        options = [
            SelectOptionDict(value=str(c["rating_key"]), label=_label(c))
            for c in conflict.candidates
        ] + [SelectOptionDict(value=IGNORE, label="Ignore this show")]
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(CHOICE): SelectSelector(
                        SelectSelectorConfig(
                            options=options,
                            mode=SelectSelectorMode.LIST,
                            # translates "ignore"; a candidate (a rating key) keeps its label
                            translation_key="conflict_choice",
                        )
                    )
                }
            ),
            description_placeholders={
                "title": conflict.title or self._show_key,
                "server": manager.entry.title,
                "pending": str(conflict.pending),
            },
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the fix flow of an issue: Plexus's only fixable issues are tracking conflicts."""
    values = data or {}
    return TrackingConflictRepairFlow(str(values.get("entry_id")), str(values.get("show_key")))
