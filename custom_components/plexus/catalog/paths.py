r"""Map paths as Plex sees them to paths as this machine sees them.

A server has a list of ``(Plex prefix, local prefix)`` pairs. A Plex path is split into
components (POSIX ``/data/movies``, Windows ``D:\Media\Movies`` or ``d:/media``, UNC
``\\server\share\…`` or ``//server/share/…``); the mapping whose Plex prefix matches the most
leading components wins (ties: the first in the list). Matching is on whole components only, so
``/data/movies2`` never matches ``/data/movies``; Windows drive and UNC paths compare without
regard to case, POSIX paths with it. Paths no mapping covers are kept as they are and flagged.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
import re
from typing import Final, Literal

type PathStyle = Literal["posix", "drive", "unc"]

_DRIVE_RE: Final = re.compile(r"([A-Za-z]):(?:[\\/]|$)", re.ASCII)


@dataclass(frozen=True, slots=True)
class SplitPath:
    """A path split into an anchor and components."""

    style: PathStyle
    # "/" for POSIX absolute, "" for POSIX relative, "d:" for drives, "//server/share" for UNC.
    anchor: str
    parts: tuple[str, ...]

    @property
    def case_insensitive(self) -> bool:
        """Return True for Windows paths."""
        return self.style != "posix"

    def key(self) -> tuple[str, tuple[str, ...]]:
        """Return what two paths must share to be equal."""
        if self.case_insensitive:
            return self.anchor.casefold(), tuple(p.casefold() for p in self.parts)
        return self.anchor, self.parts


def split_path(path: str) -> SplitPath:
    """Split a POSIX, Windows drive or UNC path into anchor and components."""
    text = path.strip()
    if text[:2] in ("\\\\", "//", "\\/", "/\\") and len(text) > 2 and text[2] not in "\\/":
        pieces = [p for p in re.split(r"[\\/]+", text[2:]) if p and p != "."]
        if not pieces:
            return SplitPath("posix", "/", ())
        anchor_parts = pieces[:2]
        return SplitPath("unc", "//" + "/".join(anchor_parts), tuple(pieces[2:]))
    if (match := _DRIVE_RE.match(text)) is not None or re.fullmatch(r"[A-Za-z]:", text):
        drive = text[0].lower() + ":"
        rest = text[2:] if match is None else text[match.end() :]
        pieces = [p for p in re.split(r"[\\/]+", rest) if p and p != "."]
        return SplitPath("drive", drive, tuple(pieces))
    if "\\" in text and "/" not in text:
        # A relative Windows path; treat backslashes as separators.
        pieces = [p for p in text.split("\\") if p and p != "."]
        return SplitPath("drive", "", tuple(pieces))
    anchor = "/" if text.startswith("/") else ""
    pieces = [p for p in text.split("/") if p and p != "."]
    return SplitPath("posix", anchor, tuple(pieces))


def join_path(split: SplitPath) -> str:
    """Return the normal text form of a split path (native separators of its style)."""
    if split.style == "posix":
        return split.anchor + "/".join(split.parts) if split.parts else (split.anchor or ".")
    if split.style == "unc":
        head = "\\\\" + split.anchor[2:].replace("/", "\\")
        return "\\".join((head, *split.parts))
    if split.anchor:
        return split.anchor.upper() + "\\" + "\\".join(split.parts)
    return "\\".join(split.parts)


def normalise_path(path: str) -> str:
    """Return ``path`` with separators normalised for its style (drive letters upper-cased)."""
    return join_path(split_path(path))


@dataclass(frozen=True, slots=True)
class PathMapping:
    """Plex sees ``plex_prefix``; this machine sees the same folder at ``local_prefix``."""

    plex_prefix: str
    local_prefix: str


@dataclass(frozen=True, slots=True)
class MappedPath:
    """A Plex path and where it is locally; ``mapped`` is False when no mapping covered it."""

    plex_path: str
    local_path: str
    mapped: bool
    mapping: PathMapping | None = None


def _is_prefix(prefix: SplitPath, path: SplitPath) -> bool:
    if prefix.style != path.style or len(prefix.parts) > len(path.parts):
        return False
    p_anchor, p_parts = prefix.key()
    anchor, parts = path.key()
    return p_anchor == anchor and parts[: len(p_parts)] == p_parts


class PathMapper:
    """Apply one server's path mappings."""

    def __init__(self, mappings: Iterable[PathMapping | tuple[str, str]] = ()) -> None:
        """Prepare the mappings (order breaks ties between equally long prefixes)."""
        self.mappings: tuple[PathMapping, ...] = tuple(
            m if isinstance(m, PathMapping) else PathMapping(m[0], m[1]) for m in mappings
        )
        self._split = [
            (m, split_path(m.plex_prefix), split_path(m.local_prefix)) for m in self.mappings
        ]
        self._cache: dict[str, MappedPath] = {}

    def map(self, plex_path: str) -> MappedPath:
        """Return the local path for a Plex path (unchanged and flagged when unmapped)."""
        if (cached := self._cache.get(plex_path)) is not None:
            return cached
        path = split_path(plex_path)
        best: tuple[PathMapping, SplitPath, SplitPath] | None = None
        for entry in self._split:
            if _is_prefix(entry[1], path) and (
                best is None or len(entry[1].parts) > len(best[1].parts)
            ):
                best = entry
        if best is None:
            result = MappedPath(plex_path, plex_path, False)
        else:
            mapping, prefix, local = best
            rest = path.parts[len(prefix.parts) :]
            target = SplitPath(local.style, local.anchor, local.parts + rest)
            result = MappedPath(plex_path, join_path(target), True, mapping)
        if len(self._cache) < 4096:
            self._cache[plex_path] = result
        return result

    def map_dir(self, plex_dir: str) -> str | None:
        """Return the local folder for a Plex folder, or None when unmapped."""
        result = self.map(plex_dir)
        return result.local_path if result.mapped else None


def _common_parent(paths: Sequence[SplitPath]) -> SplitPath | None:
    first = paths[0]
    if any(p.style != first.style or p.key()[0] != first.key()[0] for p in paths):
        return None
    keys = [p.key()[1] for p in paths]
    common = 0
    while all(len(k) > common for k in keys) and len({k[common] for k in keys}) == 1:
        common += 1
    return SplitPath(first.style, first.anchor, first.parts[:common])


def suggest_mappings(
    library_roots: Iterable[str],
    local_root: str,
    *,
    exists: Callable[[str], bool] | None = None,
) -> list[PathMapping]:
    """Suggest mappings from the libraries' root folders (as Plex sees them) to ``local_root``.

    When several roots share a parent folder below the filesystem root (``/data/media/movies``,
    ``/data/media/tv``), that parent is mapped to ``local_root`` as one mapping. Otherwise each
    root is mapped to ``local_root/<the root's last folder>``. ``exists`` (optional, e.g.
    ``os.path.isdir`` run in an executor) lets the caller check that a suggested local folder is
    there; a root whose suggestion is missing locally gets its own mapping to
    ``local_root/<last folder>``, or the longest trailing part of its path that does exist.
    """
    roots: list[SplitPath] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for raw in library_roots:
        if not raw or not raw.strip():
            continue
        split = split_path(raw)
        if split.key() not in seen:
            seen.add(split.key())
            roots.append(split)
    if not roots:
        return []
    local = split_path(local_root)

    def local_for(parts: tuple[str, ...]) -> str:
        return join_path(SplitPath(local.style, local.anchor, local.parts + parts))

    def ok(path: str) -> bool:
        return exists is None or exists(path)

    if (
        len(roots) > 1
        and (parent := _common_parent(roots)) is not None
        and parent.parts
        and all(ok(local_for(r.parts[len(parent.parts) :])) for r in roots)
    ):
        return [PathMapping(join_path(parent), join_path(local))]

    suggestions: list[PathMapping] = []
    for root in roots:
        target = local_for(root.parts[-1:])
        if exists is not None and not exists(target):
            for size in range(2, len(root.parts) + 1):
                candidate = local_for(root.parts[-size:])
                if exists(candidate):
                    target = candidate
                    break
        suggestions.append(PathMapping(join_path(root), target))
    return suggestions
