"""Read routing YAML strictly: every problem is a ``RoutingFileError(file, line, reason)``.

Lines come from the YAML compose tree (each key's start mark), as in ``app.flows.loader``;
pydantic error locations and ``check_refs`` paths are mapped back through it. Duplicate keys
are errors (YAML would silently keep the last one). ``check_text``/``check_file`` return
every problem; ``load_file`` raises the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.flows.loader import YamlLines
from app.flows.schema import Flow
from app.routing.config import RoutingConfig
from app.routing.refs import check_flows, check_refs

Path_ = tuple[str, ...]
_UNION_TAGS = {"str", "int", "float", "bool", "list[str]", "function-after", "function-before"}


class RoutingFileError(ValueError):
    """A problem in a routing file: ``file:line: reason``."""

    def __init__(self, file: Path | str, line: int, reason: str) -> None:
        self.file = Path(file)
        self.line = line
        self.reason = reason
        super().__init__(f"{file}:{line}: {reason}")


def parse_yaml(text: str, file: Path, what: str = "a routing file"
               ) -> tuple[dict[str, Any], YamlLines[RoutingFileError]]:
    """The document as a mapping and its line map; YAML errors name the line."""
    lines = YamlLines(file, RoutingFileError)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise RoutingFileError(file, 1, f"{what} is empty")
            lines.walk(node, ())
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = f"YAML error: {exc.problem or exc}"
        if exc.context and exc.context_mark is not None:
            reason += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise RoutingFileError(file, mark.line + 1 if mark else 1, reason) from exc
    except yaml.YAMLError as exc:
        raise RoutingFileError(file, 1, f"YAML error: {exc}") from exc
    if not isinstance(data, dict):
        raise RoutingFileError(file, 1, f"{what} must be a mapping of keys to values")
    return data, lines


def error_location(loc: tuple[str | int, ...]) -> list[str | int]:
    return [x for x in loc if str(x) not in _UNION_TAGS and not str(x).startswith(
        ("function-", "literal["))]


def error_reason(err: Any, loc: list[str | int]) -> str:
    kind = err["type"]
    where = ".".join(str(x) for x in loc)
    if kind == "extra_forbidden":
        return f"unknown field {where!r}"
    if kind == "missing":
        return f"missing field {where!r}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def check_text(text: str, file: Path, known_intents: set[str] | None = None,
               flows: Mapping[str, Flow] | None = None,
               ) -> tuple[RoutingConfig | None, list[RoutingFileError]]:
    """The configuration and every problem of a document (config None when any);
    ``known_intents``/``flows`` also check intent names and the hotlines' flows."""
    try:
        data, lines = parse_yaml(text, file)
    except RoutingFileError as exc:
        return None, [exc]
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as exc:
        errors: list[RoutingFileError] = []
        seen: set[tuple[int, str]] = set()
        for err in exc.errors():
            loc = error_location(tuple(err["loc"]))
            problem = lines.error(loc, error_reason(err, loc))
            if (problem.line, problem.reason) not in seen:
                seen.add((problem.line, problem.reason))
                errors.append(problem)
        errors.sort(key=lambda e: e.line)
        return None, errors
    problems = check_refs(config, known_intents)
    if flows is not None:
        problems += check_flows(config, flows)
    errors = [lines.error(path, reason) for path, reason in problems]
    errors.sort(key=lambda e: e.line)
    return (None if errors else config), errors


def check_file(file: Path, known_intents: set[str] | None = None,
               flows: Mapping[str, Flow] | None = None,
               ) -> tuple[RoutingConfig | None, list[RoutingFileError]]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RoutingFileError(file, 1, f"cannot read: {exc}")]
    return check_text(text, file, known_intents, flows)


def load_file(file: Path, known_intents: set[str] | None = None,
              flows: Mapping[str, Flow] | None = None) -> RoutingConfig:
    config, errors = check_file(file, known_intents, flows)
    if errors or config is None:
        raise errors[0]
    return config


def dump_yaml(config: RoutingConfig) -> str:
    """The configuration as YAML (defaults left out), readable back by ``check_text``."""
    data = {"version": config.version,
            **config.model_dump(mode="json", exclude_defaults=True, exclude={"version"})}
    header = "# Hotline routing (hotline routing export)\n"
    return header + yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                              width=100)


class _Dumper(yaml.SafeDumper):
    """Short lists of scalars on one line (``languages: [zh, en]``), the rest as blocks."""


def _list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    flat = all(not isinstance(x, dict | list) for x in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flat)


_Dumper.add_representer(list, _list)
