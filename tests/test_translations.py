"""Every string of translations/en.json must render in HA's frontend.

The frontend formats every translation string (with or without placeholders) with
intl-messageformat, which parses ICU MessageFormat: `{` starts an argument, `<` followed by a
letter or `/` starts a rich-text tag, and an apostrophe before one of `{ } < >` quotes text up to
the next apostrophe (`''` is one apostrophe). A parse error shows "Translation error: INVALID_TAG"
(or similar) instead of the text. `check_icu` below parses the same way and names the error with
formatjs's names (checked once against @formatjs/icu-messageformat-parser 2.x: same verdict for
every en.json string and every case below), and is stricter in three places: any tag (the frontend
passes no tag formatters), a stray `}` and a placeholder inside quotes (printed literally; hassfest
refuses it too). The tests run it over every string, and check that the placeholders the flows,
exceptions and repairs use are ones the code provides.
"""

import ast
from collections.abc import Iterator
import json
from pathlib import Path
import re
import string
from typing import Any

import pytest
import yaml

from custom_components.plexus.config_flow import PlexusConfigFlow

PACKAGE = Path(__file__).parent.parent / "custom_components" / "plexus"
EN = json.loads((PACKAGE / "translations" / "en.json").read_text(encoding="utf-8"))

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER_IN_BRACES = re.compile(r"\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}")
_SIMPLE_TYPES = {"number", "date", "time"}
_CHOICE_TYPES = {"plural", "select", "selectordinal"}


class ICUError(ValueError):
    """A string the frontend's message formatter cannot parse."""


class _Parser:
    """A small ICU MessageFormat parser that behaves like intl-messageformat's (errors only)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.arguments: set[str] = set()

    def fail(self, what: str) -> ICUError:
        return ICUError(f"{what} at {self.pos}: {self.text!r}")

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def message(self, nesting: int, plural: bool) -> None:
        """Parse until the end, or the `}` closing a nested message (left for the caller)."""
        while self.pos < len(self.text):
            char = self.peek()
            if char == "'" and self.peek(1) == "'":
                self.pos += 2
            elif char == "'" and (self.peek(1) in "{}<>" or (plural and self.peek(1) == "#")):
                end = self._quote_end(self.pos + 2)
                if _IDENTIFIER_IN_BRACES.search(self.text, self.pos, end):
                    # Printed literally, never filled in (hassfest refuses these too).
                    raise self.fail("QUOTED_PLACEHOLDER")
                self.pos = end
            elif char == "{":
                self.argument(nesting)
            elif char == "}":
                if nesting > 0:
                    return
                # intl-messageformat prints a stray `}` as text; it is always a typo here.
                raise self.fail("UNMATCHED_CLOSING_BRACE")
            elif char == "<" and self.peek(1) == "/":
                raise self.fail("UNMATCHED_CLOSING_TAG")
            elif char == "<" and self.peek(1).isalpha():
                raise self.fail("INVALID_TAG")  # a tag (even a valid one) needs a formatter
            else:
                self.pos += 1

    def _quote_end(self, index: int) -> int:
        """Index after the apostrophe closing a quote (`''` inside is one apostrophe)."""
        while index < len(self.text):
            if self.text[index] == "'":
                if index + 1 < len(self.text) and self.text[index + 1] == "'":
                    index += 2
                    continue
                return index + 1
            index += 1
        return index  # an unterminated quote runs to the end, as in intl-messageformat

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def identifier(self, error: str) -> str:
        match = _IDENTIFIER.match(self.text, self.pos)
        if match is None:
            raise self.fail(error)
        self.pos = match.end()
        return match.group()

    def expect(self, char: str, error: str) -> None:
        if self.peek() != char:
            raise self.fail(error)
        self.pos += 1

    def argument(self, nesting: int) -> None:
        """`{name}`, `{name, number[, style]}` or `{name, plural|select, key {message} …}`."""
        self.pos += 1
        self.skip_space()
        if self.peek() == "}":
            raise self.fail("EMPTY_ARGUMENT")
        if not self.peek():
            raise self.fail("EXPECT_ARGUMENT_CLOSING_BRACE")
        name = self.identifier("MALFORMED_ARGUMENT")
        self.arguments.add(name)
        self.skip_space()
        if not self.peek():
            raise self.fail("EXPECT_ARGUMENT_CLOSING_BRACE")
        if self.peek() == "}":
            self.pos += 1
            return
        self.expect(",", "MALFORMED_ARGUMENT")
        self.skip_space()
        kind = self.identifier("EXPECT_ARGUMENT_TYPE")
        self.skip_space()
        if kind in _SIMPLE_TYPES:
            if self.peek() == ",":
                self.pos += 1
                style_end = self.text.find("}", self.pos)
                if style_end < 0 or "{" in self.text[self.pos : style_end]:
                    raise self.fail("EXPECT_ARGUMENT_STYLE")
                self.pos = style_end
            self.expect("}", "EXPECT_ARGUMENT_CLOSING_BRACE")
        elif kind in _CHOICE_TYPES:
            self.choices(nesting, plural=kind != "select")
        else:
            raise self.fail("INVALID_ARGUMENT_TYPE")

    def choices(self, nesting: int, plural: bool) -> None:
        self.expect(",", "EXPECT_SELECT_ARGUMENT_OPTIONS")
        seen: set[str] = set()
        while True:
            self.skip_space()
            if not self.peek():
                raise self.fail("EXPECT_ARGUMENT_CLOSING_BRACE")
            if self.peek() == "}":
                self.pos += 1
                break
            match = re.compile(r"=\d+|offset:\d+|[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
            if match is None:
                raise self.fail("INVALID_ARGUMENT_SELECTOR")
            self.pos = match.end()
            if match.group().startswith("offset:"):
                continue
            if match.group() in seen:
                kind = "PLURAL" if plural else "SELECT"
                raise self.fail(f"DUPLICATE_{kind}_ARGUMENT_SELECTOR")
            seen.add(match.group())
            self.skip_space()
            self.expect("{", "EXPECT_SELECTOR_FRAGMENT")
            self.message(nesting + 1, plural)
            self.expect("}", "EXPECT_SELECTOR_FRAGMENT_CLOSING_BRACE")
        if "other" not in seen:
            raise self.fail("MISSING_OTHER_CLAUSE")


def check_icu(text: str) -> set[str]:
    """Parse `text` as the frontend does; return its argument names or raise ICUError."""
    parser = _Parser(text)
    parser.message(0, plural=False)
    return parser.arguments


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (dotted path, string) of a translations tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else key)
    else:
        assert isinstance(node, str), f"{path} is not a string"
        yield path, node


ALL_STRINGS = dict(strings(EN))


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """These tests read files only: no Home Assistant instance (overrides the conftest one)."""


# --------------------------------------------------------------------------- the checker itself


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        ("plain text", set()),
        ("Group {name} uses `{topic}`", {"name", "topic"}),
        ("{ name }", {"name"}),
        ("Home Assistant's config folder", set()),  # a lone apostrophe is text
        ("Use '<group name>' literally", set()),  # quoted
        ("It''s {n}", {"n"}),
        ("a < b and 1<2", set()),  # `<` not followed by a letter is text
        ("{count, number} items", {"count"}),
        ("{count, plural, one {# item} other {# items of {kind}}}", {"count", "kind"}),
        ("{kind, select, movie {Film} other {Thing}}", {"kind"}),
        ("D:\\\\Media => /mnt/media", set()),
    ],
)
def test_checker_accepts(text: str, arguments: set[str]) -> None:
    """Strings intl-messageformat formats fine pass, and their arguments are found."""
    assert check_icu(text) == arguments


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Leave empty for plexus/sync/<group name>.", "INVALID_TAG"),
        ("<b>bold</b>", "INVALID_TAG"),
        ("a </b> b", "UNMATCHED_CLOSING_TAG"),
        ("Hello {name", "EXPECT_ARGUMENT_CLOSING_BRACE"),
        ("Hello {", "EXPECT_ARGUMENT_CLOSING_BRACE"),
        ("Hello {}", "EMPTY_ARGUMENT"),
        ("Hello {first name}", "MALFORMED_ARGUMENT"),
        ("Hello {%key:x%}", "MALFORMED_ARGUMENT"),
        ("Hello name}", "UNMATCHED_CLOSING_BRACE"),
        ("{n, numbr}", "INVALID_ARGUMENT_TYPE"),
        ("{n, plural, one {x}}", "MISSING_OTHER_CLAUSE"),
        ("{n, plural, one {x} other {y}", "EXPECT_ARGUMENT_CLOSING_BRACE"),
        ("{n, plural, one {x} one {y} other {z}}", "DUPLICATE_PLURAL_ARGUMENT_SELECTOR"),
        ("Group '{name}' was created", "QUOTED_PLACEHOLDER"),
    ],
)
def test_checker_rejects(text: str, error: str) -> None:
    """Each kind of string the frontend cannot format is named by its error."""
    with pytest.raises(ICUError, match=error):
        check_icu(text)


# --------------------------------------------------------------------------- en.json


def test_en_json_has_strings() -> None:
    """The walk below really covers the file (every section, hundreds of strings)."""
    assert {"config", "options", "config_subentries", "exceptions", "services"} <= set(EN)
    assert len(ALL_STRINGS) > 200


def test_every_string_renders() -> None:
    """Every translation string parses as ICU MessageFormat (no tags, balanced braces)."""
    failures = []
    for path, text in ALL_STRINGS.items():
        try:
            check_icu(text)
        except ICUError as err:
            failures.append(f"{path}: {err}")
    assert not failures, "\n".join(failures)


def test_every_string_parses_as_home_assistant_backend_does() -> None:
    """HA's backend checks translations with Python's `string.Formatter` (helpers/translation.py)
    and logs an ERROR for a string it cannot parse: nested braces (an ICU `select`/`plural`) are
    refused there even though the frontend would render them."""
    failures = []
    for path, text in ALL_STRINGS.items():
        try:
            fields = [field for _lit, field, _spec, _conv in string.Formatter().parse(text)]
        except ValueError as err:
            failures.append(f"{path}: {err}")
            continue
        failures += [f"{path}: nested field {f!r}" for f in fields if f and not f.isidentifier()]
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- placeholders

# Flow methods whose first translation key argument names the string they show.
_FLOW_CALLS = {
    "async_show_form": ("step_id", "step"),
    "async_show_menu": ("step_id", "step"),
    "async_external_step": ("step_id", "step"),
    "async_abort": ("reason", "abort"),
    "async_create_entry": ("description", "create_entry"),
}
_FLOW_BASES = {
    "ConfigFlow": "config",
    "OptionsFlow": "options",
    "OptionsFlowWithReload": "options",
}


def _keys(node: ast.expr | None) -> set[str] | None:
    """The keys of a literal dict (None when it is not one)."""
    if node is None:
        return set()
    if not isinstance(node, ast.Dict):
        return None
    keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
    return (
        {k for k in keys if isinstance(k, str)} if all(isinstance(k, str) for k in keys) else None
    )


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _flow_sections() -> dict[str, str]:
    """Flow class name -> translation section (`config_subentries.<type>` for subentry flows)."""
    sections = dict(_FLOW_BASES)
    for subentry_type, flow in PlexusConfigFlow.async_get_supported_subentry_types(
        None  # type: ignore[arg-type]
    ).items():
        sections[flow.__name__] = f"config_subentries.{subentry_type}"
    return sections


def provided_placeholders() -> tuple[dict[str, set[str]], set[str]]:
    """What the code passes, by translation path prefix; and the prefixes it passes unknown dicts.

    Flow steps, aborts and finish dialogs (`<section>.step.<id>` …), the flow title
    (`config.flow_title` from `context["title_placeholders"]`), exceptions and repairs issues
    (`exceptions.<key>`, `issues.<key>`): only literal dicts can be read.
    """
    sections = _flow_sections()
    provided: dict[str, set[str]] = {}
    dynamic: set[str] = set()

    def record(prefix: str, keys: set[str] | None) -> None:
        if keys is None:
            dynamic.add(prefix)
        else:
            provided.setdefault(prefix, set()).update(keys)

    for module in PACKAGE.rglob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            section = next(
                (
                    sections[name]
                    for name in [cls.name, *(b.id for b in cls.bases if isinstance(b, ast.Name))]
                    if name in sections
                ),
                None,
            )
            if section is None:
                continue
            for node in ast.walk(cls):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    if node.func.attr not in _FLOW_CALLS:
                        continue
                    arg, kind = _FLOW_CALLS[node.func.attr]
                    key = _kwarg(node, arg)
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        record(
                            f"{section}.{kind}.{key.value}",
                            _keys(_kwarg(node, "description_placeholders")),
                        )
                elif (
                    isinstance(node, ast.Assign)
                    and isinstance(node.targets[0], ast.Subscript)
                    and isinstance(node.targets[0].slice, ast.Constant)
                    and node.targets[0].slice.value == "title_placeholders"
                ):
                    record(f"{section}.flow_title", _keys(node.value))
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            key = _kwarg(call, "translation_key")
            placeholders = _kwarg(call, "translation_placeholders")
            if placeholders is None or not isinstance(key, ast.Constant):
                continue
            assert isinstance(key.value, str), ast.unparse(call)
            section = "issues" if "issue" in ast.unparse(call.func) else "exceptions"
            record(f"{section}.{key.value}", _keys(placeholders))
    return provided, dynamic


def _owner(path: str, provided: dict[str, set[str]], dynamic: set[str]) -> str | None:
    """The provided-placeholder prefix a translation path falls under."""
    for prefix in sorted(provided.keys() | dynamic, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "."):
            return prefix
    return None


CHECKED_SECTIONS = ("config.", "options.", "config_subentries.", "exceptions.", "issues.")


def test_placeholders_are_provided_by_the_code() -> None:
    """Every placeholder a flow, exception or issue string uses is passed where it is shown.

    A missing value makes the frontend print a translation error (or the backend fail to format
    an exception). Form errors share their step's placeholders, so they may use only placeholders
    every step of their section provides.
    """
    provided, dynamic = provided_placeholders()
    # The walk finds flow steps, the flow title, exceptions and issues with their literal dicts.
    assert provided["config.step.zeroconf_confirm"] == {"name", "url"}
    assert provided["config.flow_title"] == {"name"}
    assert provided["exceptions.command_failed"] == {"client", "error"}
    assert provided["issues.mqtt_missing"] == {"group"}
    failures = []
    for path, text in ALL_STRINGS.items():
        used = check_icu(text)
        if not used or not path.startswith(CHECKED_SECTIONS):
            continue
        owner = _owner(path, provided, dynamic)
        if owner in dynamic:
            continue
        if owner is None and ".error." in path:
            section = path.split(".error.")[0]
            steps = [v for k, v in provided.items() if k.startswith(f"{section}.step.")]
            available = set.intersection(*steps) if steps else set()
        else:
            available = provided.get(owner, set()) if owner else set()
        if missing := used - available:
            failures.append(f"{path} uses {sorted(missing)}, the code passes {sorted(available)}")
    assert not failures, "\n".join(failures)


def test_every_action_and_field_is_translated() -> None:
    """Every action and field of services.yaml has a name and a description in en.json, and
    every select's options have labels; en.json describes no action or field that is not there.

    Bad input this catches: a field added to services.yaml only (the UI shows its raw key and no
    help), a select without `translation_key` (raw option values), a renamed field left behind.
    """
    services = yaml.safe_load((PACKAGE / "services.yaml").read_text(encoding="utf-8"))
    translated = EN["services"]
    failures = [f"{name}: not in services.yaml" for name in set(translated) - set(services)]
    for name, spec in services.items():
        text = translated.get(name, {})
        failures += [f"{name}: no {key}" for key in ("name", "description") if not text.get(key)]
        fields = (spec or {}).get("fields", {})
        failures += [
            f"{name}.{field}: not in services.yaml"
            for field in set(text.get("fields", {})) - set(fields)
        ]
        for field, field_spec in fields.items():
            field_text = text.get("fields", {}).get(field, {})
            failures += [
                f"{name}.{field}: no {key}"
                for key in ("name", "description")
                if not field_text.get(key)
            ]
            select = field_spec.get("selector", {}).get("select")
            if select is None:
                continue
            labels = EN["selector"].get(select.get("translation_key"), {}).get("options", {})
            failures += [
                f"{name}.{field}: option {option!r} has no label"
                for option in select["options"]
                if option not in labels
            ]
    assert len(services) > 20
    assert not failures, "\n".join(failures)
