r"""Where a copy goes: destination layouts, safe names, and the checks that keep writes inside.

Layouts (relative to a profile's destination root for the file's media type — the movies
folder or the TV folder, each a Plex library folder of its own):

- ``mirror``: the file's path relative to its source root, each component sanitised;
- ``plex``: ``Title (Year)/Title (Year)[ - pt1].ext`` under the movies folder,
  ``Show[ (Year)]/Season 01/Show[ (Year)] - S01E02[-E03][ - Title].ext`` under the TV folder
  (season 0 is ``Specials``; absolute-numbered anime ``Show/Show - 123.ext``); a name that parsed
  to nothing certain keeps its mirror path. When one folder is the destination of both media
  types (``type_folders=True``), the layout adds ``Movies/`` and ``TV/`` inside it so the two
  libraries do not mix.

Every component goes through :func:`sanitize_component` (no ``/``, ``\\``, NUL or control
characters, no ``..``, no reserved Windows names, no trailing dots/spaces, at most 255 bytes).
:func:`plan_destination` then resolves the final path — symlinks included — and refuses it
(:class:`.PathEscapeError`) unless it is inside the resolved destination root, and asks the
host's ``is_allowed(path)`` (Home Assistant's ``hass.config.is_allowed_path``) about the root
and the final path (:class:`.PathNotAllowedError` naming the path). All blocking: run it in an
executor (``is_allowed_path`` itself touches the disk).
"""

from collections.abc import Callable, Sequence
import os
from pathlib import Path, PurePosixPath
import re
import shutil
from typing import Final
import unicodedata

from .errors import PathEscapeError, PathNotAllowedError
from .models import Layout
from .naming import MediaType, ParsedName

type IsAllowed = Callable[[str], bool]

PARTIAL_SUFFIX: Final = ".plexus-partial"
# 255 bytes, less room for the partial name ".<name>.plexus-partial".
_MAX_NAME_BYTES: Final = 255 - 1 - len(PARTIAL_SUFFIX)
_RESERVED: Final = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_DROP_RE: Final = re.compile(r'[<>"|?*]')


def sanitize_component(name: str) -> str:
    """Return ``name`` made safe as ONE path component on Linux, macOS and Windows shares."""
    text = unicodedata.normalize("NFC", name)
    text = _CONTROL_RE.sub(" ", text)
    text = text.replace(":", " -").replace("/", "-").replace("\\", "-")
    text = _DROP_RE.sub("", text)
    text = re.sub(r"\s+", " ", text).strip().lstrip(".").rstrip(". ")
    if not text:
        return "_"
    if text.split(".", 1)[0].strip().casefold() in _RESERVED:
        text = f"_{text}"
    encoded = text.encode()
    if len(encoded) > _MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        keep_ext = f".{ext}" if dot and 0 < len(ext) <= 8 else ""
        body = (stem if keep_ext else text).encode()[: _MAX_NAME_BYTES - len(keep_ext.encode())]
        text = body.decode(errors="ignore").rstrip(". ") + keep_ext
    return text


def _year(title: str, year: int | None) -> str:
    return f"{title} ({year})" if year else title


def plex_parts(
    parsed: ParsedName,
    extension: str,
    media_type: MediaType,
    rel_path: str,
    *,
    type_folders: bool = False,
) -> list[str]:
    """Return the ``plex`` layout's path components for a parsed file (see the module doc)."""
    ext = extension if extension.startswith(".") or not extension else f".{extension}"
    parts: list[str]
    if parsed.kind == "movie":
        name = _year(parsed.title, parsed.year)
        part = f" - pt{parsed.part}" if parsed.part else ""
        parts = [name, f"{name}{part}{ext}"]
    elif parsed.kind == "episode" and parsed.episodes:
        show = _year(parsed.title, parsed.year)
        first, last = parsed.episodes[0], parsed.episodes[-1]
        if parsed.absolute or parsed.season is None:
            numbers = f"{first:03d}" + (f"-{last:03d}" if last != first else "")
            parts = [show, f"{show} - {numbers}{ext}"]
        else:
            numbers = f"S{parsed.season:02d}E{first:02d}"
            numbers += f"-E{last:02d}" if last != first else ""
            title = f" - {parsed.episode_title}" if parsed.episode_title else ""
            season = "Specials" if parsed.season == 0 else f"Season {parsed.season:02d}"
            parts = [show, season, f"{show} - {numbers}{title}{ext}"]
    else:
        parts = mirror_parts(rel_path)
    if not type_folders:
        return parts
    kind = parsed.kind if parsed.kind in ("movie", "episode") else media_type
    return ["Movies" if kind == "movie" else "TV", *parts]


def mirror_parts(rel_path: str) -> list[str]:
    r"""Return the ``mirror`` layout's components: the source-relative path, split on / or \\."""
    parts = [p for p in re.split(r"[\\/]+", rel_path) if p not in ("", ".")]
    if not parts:
        raise ValueError(f"empty relative path: {rel_path!r}")
    return parts


def check_allowed(path: str | Path, is_allowed: IsAllowed) -> None:
    """Raise :class:`.PathNotAllowedError` unless the host allows ``path``."""
    if not is_allowed(str(path)):
        raise PathNotAllowedError(path)


def ensure_inside(root: str | Path, path: str | Path) -> Path:
    """Return ``path`` resolved (symlinks included); PathEscapeError if not inside root."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real == real_root or not real.is_relative_to(real_root):
        raise PathEscapeError(path, root)
    return real


def join_inside(root: str | Path, parts: Sequence[str], is_allowed: IsAllowed) -> str:
    """Sanitise ``parts``, join them under ``root``, check containment and permission."""
    check_allowed(root, is_allowed)
    if not parts:
        raise ValueError("no destination path components")
    safe = [sanitize_component(p) for p in parts]
    path = str(Path(root).absolute().joinpath(*safe))
    real = ensure_inside(root, path)
    check_allowed(real, is_allowed)
    return path


def plan_destination(
    root: str | Path,
    *,
    layout: Layout,
    rel_path: str,
    parsed: ParsedName,
    media_type: MediaType,
    is_allowed: IsAllowed,
    type_folders: bool = False,
) -> str:
    """Return where a file goes under ``root`` in ``layout`` (blocking; see the module doc).

    ``type_folders``: ``root`` holds both media types (the ``plex`` layout adds ``Movies/`` or
    ``TV/``).
    """
    if layout == "mirror":
        parts = mirror_parts(rel_path)
    elif layout == "plex":
        ext = PurePosixPath(rel_path).suffix.lower()
        parts = plex_parts(parsed, ext, media_type, rel_path, type_folders=type_folders)
    else:
        raise ValueError(f"unknown layout {layout!r} (mirror or plex)")
    return join_inside(root, parts, is_allowed)


def partial_path(destination: str | Path) -> Path:
    """Return the temporary name a copy is written under, beside its final name."""
    dest = Path(destination)
    return dest.with_name(f".{dest.name}{PARTIAL_SUFFIX}")


def free_bytes(folder: Path) -> int | None:
    """Return the free bytes of the filesystem holding ``folder`` (or its nearest parent)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None
