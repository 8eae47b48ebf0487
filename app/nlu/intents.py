"""Intent data: one YAML file per domain, schema-validated, errors name file, line and reason.

A domain file::

    domain: orders
    description: Orders and deliveries
    slots: {hotline: 400 800 1234}        # optional defaults for answer templates
    intents:
      - name: order_status
        description: Where is my order
        entities: [digits]                  # optional, what the flow may look for
        examples:
          zh: [我的订单到哪了, ...]
          en: [where is my order, ...]
        answer:                             # optional, FAQ reply per locale
          en: Our hotline is {hotline}
    out_of_scope:                           # optional: negatives, trained as "no intent"
      en: [what's the weather like]

``load_intents(dir)`` reads every ``*.yaml``/``*.yml`` file of a folder (not sub-folders).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from app.events import EntityKind
from app.nlu.text import base_locale, canonical_example

OUT_OF_SCOPE = "out_of_scope"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SLOT = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


class _StringLoader(yaml.SafeLoader):
    """Every plain scalar is a string ("yes", "no", "on", "12345" stay text); only null
    is resolved. Intent files hold text, never booleans or numbers."""


_StringLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class IntentFileError(ValueError):
    """A problem in an intent file: ``file:line: reason``."""

    def __init__(self, file: Path, line: int, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        super().__init__(f"{file}:{line}: {reason}")


Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
Example = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Intent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    entities: list[EntityKind] = Field(default_factory=list)
    examples: dict[Locale, list[Example]]
    answer: dict[Locale, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("intent name must be snake_case: [a-z][a-z0-9_]*")
        if v == OUT_OF_SCOPE:
            raise ValueError(f"{OUT_OF_SCOPE!r} is reserved (use the out_of_scope section)")
        return v

    @field_validator("examples")
    @classmethod
    def _examples(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not any(v.values()):
            raise ValueError("intent has no examples")
        return v


class _Domain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str = ""
    description: str = ""
    slots: dict[str, str] = Field(default_factory=dict)
    intents: list[_Intent] = Field(default_factory=list)
    out_of_scope: dict[Locale, list[Example]] = Field(default_factory=dict)
    # more examples of intents defined in another file (the console's inbox writes these)
    more_examples: dict[str, dict[Locale, list[Example]]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Intent:
    name: str
    description: str
    domain: str
    examples: dict[str, list[str]]
    answer: dict[str, str]
    entities: list[str]
    slots: dict[str, str]
    file: Path
    line: int


@dataclass
class IntentCatalog:
    """All intents of a folder; what the classifier trains on and the flows answer from."""

    intents: dict[str, Intent] = field(default_factory=dict)
    out_of_scope: dict[str, list[str]] = field(default_factory=dict)
    data_hash: str = ""

    def names(self) -> set[str]:
        return set(self.intents)

    def locales(self) -> list[str]:
        found = {loc for i in self.intents.values() for loc, ex in i.examples.items() if ex}
        return sorted(found)

    def examples(self, locale: str) -> list[tuple[str, str]]:
        """(text, intent) pairs of one locale, in file order."""
        return [(t, i.name) for i in self.intents.values() for t in i.examples.get(locale, [])]

    def answer(self, intent: str, locale: str) -> str | None:
        found = self.intents.get(intent)
        if found is None:
            return None
        return found.answer.get(base_locale(locale))

    def render_answer(self, intent: str, locale: str, slots: dict[str, str]) -> str | None:
        """The answer with ``{slot}`` filled from ``slots``, then the file's defaults.

        A slot with no value renders as an empty string (never an exception).
        """
        template = self.answer(intent, locale)
        if template is None:
            return None
        defaults = self.intents[intent].slots

        def fill(m: re.Match[str]) -> str:
            key = m.group(1)
            return str(slots.get(key, defaults.get(key, "")))

        return re.sub(r"[ \t]{2,}", " ", _SLOT.sub(fill, template)).strip()


def load_intents(directory: Path) -> IntentCatalog:
    """Read and validate every YAML file of ``directory``; raise ``IntentFileError``."""
    if not directory.is_dir():
        raise IntentFileError(directory, 0, "intents folder not found")
    files = sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"})
    if not files:
        raise IntentFileError(directory, 0, "no intent files (*.yaml) in folder")
    catalog = IntentCatalog(data_hash=data_hash(files))
    seen_examples: dict[tuple[str, str], tuple[str, Path, int]] = {}
    extra: list[tuple[Path, _Domain, yaml.Node]] = []
    for path in files:
        domain, root = _parse_file(path)
        if domain.more_examples:
            extra.append((path, domain, root))
        for index, raw in enumerate(domain.intents):
            line = _line_of(root, ("intents", index, "name"))
            _add_intent(catalog, path, line, domain, raw)
            for loc, items in raw.examples.items():
                for j, text in enumerate(items):
                    ex_line = _line_of(root, ("intents", index, "examples", loc, j))
                    _check_unique_example(seen_examples, raw.name, loc, text, path, ex_line)
        for loc, items in domain.out_of_scope.items():
            for j, text in enumerate(items):
                ex_line = _line_of(root, ("out_of_scope", loc, j))
                _check_unique_example(seen_examples, OUT_OF_SCOPE, loc, text, path, ex_line)
            catalog.out_of_scope.setdefault(loc, []).extend(items)
    for path, domain, root in extra:
        _add_more_examples(catalog, path, domain, root, seen_examples)
    if not catalog.intents:
        raise IntentFileError(directory, 0, "no intents defined")
    return catalog


def check_with_file(directory: Path, name: str, text: str) -> None:
    """Load the whole folder ``directory`` as it would be with ``text`` as its file ``name``
    (a console-owned file about to be written); nothing in ``directory`` changes.

    Raises ``IntentFileError`` naming the real file (``name`` or one of the folder's) by its
    bare file name, with the line and the loader's reason.
    """
    with tempfile.TemporaryDirectory(prefix="hotline-intents-check-") as tmp:
        folder = Path(tmp)
        for path in directory.iterdir():
            if path.suffix in {".yaml", ".yml"} and path.name != name:
                shutil.copy(path, folder / path.name)
        (folder / name).write_text(text, encoding="utf-8")
        try:
            load_intents(folder)
        except IntentFileError as exc:
            reason = exc.reason.replace(f"{folder}/", "")
            raise IntentFileError(Path(exc.file.name), exc.line, reason) from None


def _add_more_examples(catalog: IntentCatalog, path: Path, domain: _Domain, root: yaml.Node,
                       seen: dict[tuple[str, str], tuple[str, Path, int]]) -> None:
    """``more_examples`` of a file: examples added to intents any file defines."""
    for name, by_locale in domain.more_examples.items():
        intent = catalog.intents.get(name)
        if intent is None:
            raise IntentFileError(path, _key_line(root, "more_examples", name),
                                  f"more_examples of unknown intent {name!r}")
        for loc, items in by_locale.items():
            for j, text in enumerate(items):
                line = _line_of(root, ("more_examples", name, loc, j))
                _check_unique_example(seen, name, loc, text, path, line)
            intent.examples.setdefault(loc, []).extend(items)


def check_trainable(catalog: IntentCatalog) -> None:
    """Raise ``IntentFileError`` for a locale whose examples name one intent only: it would
    train a one-class model that answers that intent to everything, almost always from a
    misspelled locale key (``fr:`` for ``en:``). Called before training."""
    by_locale: dict[str, list[Intent]] = {}
    for intent in catalog.intents.values():
        for loc, examples in intent.examples.items():
            if examples:
                by_locale.setdefault(loc, []).append(intent)
    others = [loc for loc, found in by_locale.items() if len(found) > 1]
    for loc, found in by_locale.items():
        if len(found) == 1 and len(catalog.intents) > 1:
            only = found[0]
            hint = f"; other locales: {', '.join(sorted(others))}" if others else ""
            raise IntentFileError(
                only.file, only.line,
                f"locale {loc!r} has examples for one intent only ({only.name!r}): a classifier "
                f"needs at least two, so this is likely a wrong locale key{hint}",
            )


def data_hash(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _add_intent(
    catalog: IntentCatalog, path: Path, line: int, domain: _Domain, raw: _Intent
) -> None:
    previous = catalog.intents.get(raw.name)
    if previous is not None:
        raise IntentFileError(
            path, line,
            f"duplicated intent name {raw.name!r} (first defined at {previous.file}:"
            f"{previous.line})",
        )
    catalog.intents[raw.name] = Intent(
        name=raw.name, description=raw.description, domain=domain.domain or path.stem,
        examples={k: list(v) for k, v in raw.examples.items()}, answer=dict(raw.answer),
        entities=list(raw.entities), slots=dict(domain.slots), file=path, line=line,
    )


def _check_unique_example(
    seen: dict[tuple[str, str], tuple[str, Path, int]],
    intent: str, locale: str, text: str, path: Path, line: int,
) -> None:
    key = (locale, canonical_example(text))
    if not key[1]:
        raise IntentFileError(path, line, f"example {text!r} is empty after normalisation")
    if not any(ch.isalpha() for ch in text):
        raise IntentFileError(
            path, line, f"example {text!r} has no words (only digits or symbols): an example "
            "is what a caller says, and digits alone are masked in training",
        )
    other = seen.get(key)
    if other is None:
        seen[key] = (intent, path, line)
        return
    other_intent, other_path, other_line = other
    where = f"{other_path}:{other_line}"
    if other_intent == intent:
        raise IntentFileError(path, line, f"example {text!r} listed twice in {intent!r} ({where})")
    raise IntentFileError(
        path, line,
        f"example {text!r} listed under two intents: {intent!r} and {other_intent!r} ({where})",
    )


def _parse_file(path: Path) -> tuple[_Domain, yaml.Node]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IntentFileError(path, 0, f"not UTF-8: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=_StringLoader)
        data: Any = yaml.load(text, Loader=_StringLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 0
        raise IntentFileError(path, line, f"invalid YAML: {exc.problem}") from exc
    if root is None or not isinstance(root, yaml.MappingNode):
        raise IntentFileError(path, 1, "an intent file must be a mapping with an 'intents' list")
    _check_duplicate_keys(path, root)
    try:
        return _Domain.model_validate(data), root
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc if p != "[key]")
        msg = str(err["msg"])
        if "pattern" in msg and loc and loc[-1] == "[key]":
            msg = f"locale must be a language code like 'zh' or 'en', got {loc[-2]!r}"
        raise IntentFileError(path, _line_of(root, loc), f"{where}: {msg}") from exc


def _check_duplicate_keys(path: Path, node: yaml.Node) -> None:
    for child in _walk(node):
        if isinstance(child, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, _ in child.value:
                key = str(key_node.value)
                if key in keys:
                    line = key_node.start_mark.line + 1
                    raise IntentFileError(path, line, f"duplicated key {key!r}")
                keys.add(key)


def _walk(node: yaml.Node) -> Iterator[yaml.Node]:
    yield node
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item)


def _key_line(root: yaml.Node, section: str, key: str) -> int:
    """1-based line of ``key`` in the mapping ``section`` of the file (else the section's)."""
    parent = root
    if isinstance(root, yaml.MappingNode):
        parent = next((v for k, v in root.value if str(k.value) == section), root)
    if isinstance(parent, yaml.MappingNode):
        for key_node, _ in parent.value:
            if str(key_node.value) == key:
                return int(key_node.start_mark.line) + 1
    return int(parent.start_mark.line) + 1


def _line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest node reachable along ``loc`` (a pydantic error path)."""
    node = root
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    child = value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                child = node.value[part]
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1
