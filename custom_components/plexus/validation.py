"""Validators shared by the service schemas (numbers that must be finite and bounded)."""

from __future__ import annotations

import math
from typing import Any, Final

import probatio as vol

# services.yaml's bound for positions; the sync-play engine refuses anything past 24 h too.
MAX_POSITION_S: Final = 86_400.0


def finite(value: float) -> float:
    """Refuse infinity and NaN (which `vol.Range` lets through)."""
    if not math.isfinite(value):
        raise vol.Invalid("must be a finite number")
    return value


def whole(value: Any) -> int:
    """A whole number: an int, or an integral finite float/numeric string ("3", 3.0)."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise vol.Invalid("expected a whole number") from err
    if not math.isfinite(number) or not number.is_integer():
        raise vol.Invalid("expected a whole number")
    return int(number)


POSITION: Final = vol.All(vol.Coerce(float), finite, vol.Range(min=0, max=MAX_POSITION_S))
