"""Load and check flow files; every problem is a ``FlowError(file, line, reason)``.

Lines come from the YAML compose tree (each node carries its start mark); pydantic error
locations are mapped back through it. ``check_file`` returns every problem of a file;
``load_flow`` / ``load_flows`` raise the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from app.flows.schema import (
    LISTENING_KINDS,
    NODE_KINDS,
    AnswerNode,
    BranchNode,
    CollectNode,
    Flow,
    MenuNode,
    Node,
    Prompt,
    SayNode,
    TransferNode,
    WebhookNode,
)

Path_ = tuple[str, ...]


class FlowError(ValueError):
    """A problem in a flow file: ``file:line: reason``."""

    def __init__(self, file: Path | str, line: int, reason: str) -> None:
        self.file = Path(file)
        self.line = line
        self.reason = reason
        super().__init__(f"{file}:{line}: {reason}")


E = TypeVar("E", bound=ValueError)


class YamlLines(Generic[E]):
    """Path in the document (keys and list indices as strings) -> 1-based line; errors are
    made with ``error_type(file, line, reason)`` (flows: ``FlowError``; routing files too)."""

    def __init__(self, file: Path, error_type: type[E]) -> None:
        self.file = file
        self.error_type = error_type
        self.map: dict[Path_, int] = {}

    def walk(self, node: yaml.Node, path: Path_) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name in seen:
                    raise self.error_type(self.file, key.start_mark.line + 1,  # type: ignore[call-arg]
                                          f"duplicate key {name!r}")
                seen.add(name)
                self.map[(*path, name)] = key.start_mark.line + 1
                self.walk(value, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.map[(*path, str(i))] = item.start_mark.line + 1
                self.walk(item, (*path, str(i)))

    def line(self, loc: Iterable[str | int]) -> int:
        path: Path_ = ()
        for elem in loc:
            cand = (*path, str(elem))
            if cand in self.map:
                path = cand
        return self.map.get(path, 1)

    def error(self, loc: Iterable[str | int], reason: str) -> E:
        return self.error_type(self.file, self.line(loc), reason)  # type: ignore[call-arg]


FlowLines = YamlLines[FlowError]  # a flow file's line map


def _parse_yaml(text: str, file: Path) -> tuple[Any, FlowLines]:
    lines = YamlLines(file, FlowError)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise FlowError(file, 1, "empty flow file")
            lines.walk(node, ())
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = f"YAML error: {exc.problem or exc}"
        if exc.context and exc.context_mark is not None:
            reason += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise FlowError(file, line, reason) from exc
    except yaml.YAMLError as exc:
        raise FlowError(file, 1, f"YAML error: {exc}") from exc
    if not isinstance(data, dict):
        raise FlowError(file, 1, "a flow file must be a mapping (id, locales, nodes, ...)")
    return data, lines


def _reason(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    where = ".".join(str(x) for x in err["loc"] if not str(x).startswith(("function-", "by_")))
    if kind == "union_tag_invalid":
        return f"unknown node kind {ctx.get('tag')!r} (one of {', '.join(NODE_KINDS)})"
    if kind == "union_tag_not_found":
        return f"{where}: node has no `kind` (one of {', '.join(NODE_KINDS)})"
    if kind == "extra_forbidden":
        return f"unknown field {where!r}"
    if kind == "missing":
        return f"missing field {where!r}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _strip_tags(loc: tuple[str | int, ...]) -> list[str | int]:
    """Drop the union tag pydantic puts after the node name: nodes.<name>.<kind>.field."""
    if len(loc) > 2 and loc[0] == "nodes" and loc[2] in NODE_KINDS:
        return [*loc[:2], *loc[3:]]
    return list(loc)


def parse_flow(text: str, file: Path) -> tuple[Flow | None, list[FlowError], FlowLines]:
    data, lines = _parse_yaml(text, file)
    try:
        return Flow.model_validate(data), [], lines
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = _strip_tags(tuple(err["loc"]))
            errors.append(lines.error(loc, _reason({**err, "loc": loc})))
        return None, errors, lines


def node_targets(node: Node) -> list[tuple[Path_, str]]:
    """(field path inside the node, target node name) for every edge out of ``node``."""
    out: list[tuple[Path_, str]] = []
    if isinstance(node, SayNode | AnswerNode | WebhookNode | CollectNode):
        out.append((("next",), node.next))
    if isinstance(node, MenuNode):
        out += [(("options", str(i), "next"), o.next) for i, o in enumerate(node.options)]
        out += [((f,), t) for f, t in (("no_match", node.no_match), ("no_input", node.no_input))
                if t]
    if isinstance(node, CollectNode):
        out += [((f,), t) for f, t in (("on_no", node.on_no), ("on_fail", node.on_fail)) if t]
    if isinstance(node, AnswerNode) and node.fallback:
        out.append((("fallback",), node.fallback))
    if isinstance(node, WebhookNode):
        out.append((("on_failure",), node.on_failure))
        out += [(("on_status", str(k)), t) for k, t in node.on_status.items()]
    if isinstance(node, BranchNode):
        out += [(("cases", str(i), "next"), c.next) for i, c in enumerate(node.cases)]
        out.append((("default",), node.default))
    if isinstance(node, TransferNode) and node.on_timeout:
        out.append((("on_timeout",), node.on_timeout))
    return out


def walk_prompts(flow: Flow) -> Iterator[tuple[Path_, Prompt]]:
    """Every prompt of ``flow`` with its path in the file (("nodes", "menu", "prompt"))."""
    return _walk_prompts(flow, ())


def _walk_prompts(value: Any, path: Path_) -> Iterator[tuple[Path_, Prompt]]:
    if isinstance(value, Prompt):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk_prompts(getattr(value, name), (*path, name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_prompts(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_prompts(v, (*path, str(i)))


def _check_graph(flow: Flow, lines: FlowLines) -> list[FlowError]:
    errors: list[FlowError] = []
    if flow.start not in flow.nodes:
        errors.append(lines.error(("start",), f"start node {flow.start!r} does not exist"))
    for name, node in flow.nodes.items():
        for sub, target in node_targets(node):
            if target not in flow.nodes:
                errors.append(lines.error(("nodes", name, *sub), f"node {name!r} goes to "
                                          f"missing node {target!r}"))
    entry = flow.globals.queue_timeout
    if entry is not None and entry not in flow.nodes:
        errors.append(lines.error(("globals", "queue_timeout"),
                                  f"queue_timeout goes to missing node {entry!r}"))
    seen = {flow.start} if flow.start in flow.nodes else set()
    if entry in flow.nodes:
        seen.add(entry)
    todo = list(seen)
    while todo:
        for _, target in node_targets(flow.nodes[todo.pop()]):
            if target in flow.nodes and target not in seen:
                seen.add(target)
                todo.append(target)
    for name in flow.nodes:
        if seen and name not in seen:
            errors.append(lines.error(("nodes", name), f"node {name!r} is unreachable"))
    errors += _check_cycles(flow, lines)
    return errors


def _check_cycles(flow: Flow, lines: FlowLines) -> list[FlowError]:
    """A cycle through nodes that never wait for the caller would loop forever."""
    quiet = {n for n, node in flow.nodes.items() if node.kind not in LISTENING_KINDS}
    edges = {
        n: [t for _, t in node_targets(flow.nodes[n]) if t in quiet] for n in quiet
    }
    errors: list[FlowError] = []
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    reported: set[frozenset[str]] = set()

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        stack.append(n)
        for t in edges[n]:
            if state.get(t) == 1:
                cycle = stack[stack.index(t):]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    text = " -> ".join([*cycle, t])
                    errors.append(lines.error(
                        ("nodes", t), f"cycle with no listening node (would loop forever): {text}"
                    ))
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(quiet):
        if n not in state:
            visit(n, [])
    return errors


def _check_refs(flow: Flow, lines: FlowLines, known_intents: set[str] | None) -> list[FlowError]:
    errors: list[FlowError] = []
    g = flow.globals
    for sub, queue in (
        (("talk_to_agent", "queue"), g.talk_to_agent.queue),
        (("no_input", "queue"), g.no_input.queue),
        (("no_match", "queue"), g.no_match.queue),
    ):
        if queue is not None and queue not in flow.queues:
            errors.append(lines.error(("globals", *sub), f"queue {queue!r} is not declared in "
                                      f"`queues` ({', '.join(sorted(flow.queues))})"))
    for loc in flow.voice:
        if loc not in flow.locales:
            errors.append(lines.error(("voice", loc), f"voice for undeclared locale {loc!r}"))
    for path, prompt in _walk_prompts(flow, ()):
        missing = [loc for loc in flow.locales if loc not in prompt.by_locale]
        extra = [loc for loc in prompt.by_locale if loc not in flow.locales]
        if missing:
            errors.append(lines.error(path, f"prompt missing locale {', '.join(missing)}"))
        if extra:
            errors.append(lines.error(path, f"prompt has undeclared locale {', '.join(extra)}"))
    for name, node in flow.nodes.items():
        errors += _check_node(flow, name, node, lines, known_intents)
    return errors


def _check_node(
    flow: Flow, name: str, node: Node, lines: FlowLines, known: set[str] | None
) -> list[FlowError]:
    errors: list[FlowError] = []
    base: Path_ = ("nodes", name)

    def intent_ok(intent: str, sub: Path_) -> None:
        if known is not None and intent not in known:
            errors.append(lines.error((*base, *sub), f"unknown intent {intent!r} "
                                      "(not defined in intents/)"))

    if isinstance(node, TransferNode) and node.queue not in flow.queues:
        errors.append(lines.error((*base, "queue"), f"transfer to undeclared queue "
                                  f"{node.queue!r} ({', '.join(sorted(flow.queues))})"))
    if isinstance(node, AnswerNode) and node.intent:
        intent_ok(node.intent, ("intent",))
    if isinstance(node, BranchNode):
        for i, case in enumerate(node.cases):
            if case.when.intent:
                intent_ok(case.when.intent, ("cases", str(i), "when", "intent"))
    if isinstance(node, MenuNode):
        keys: dict[str, int] = {}
        for i, opt in enumerate(node.options):
            sub: Path_ = ("options", str(i))
            for intent in opt.intents:
                intent_ok(intent, (*sub, "intent"))
            if opt.dtmf is not None:
                if opt.dtmf in keys:
                    reason = (f"DTMF key {opt.dtmf!r} used twice in menu {name!r} "
                              f"(options {keys[opt.dtmf] + 1} and {i + 1})")
                    errors.append(lines.error((*base, *sub, "dtmf"), reason))
                keys[opt.dtmf] = i
                clash = _global_key_clash(flow, opt.dtmf)
                if clash:
                    errors.append(lines.error((*base, *sub, "dtmf"),
                                              f"menu {name!r} option {i + 1}: {clash}"))
            for loc in [*opt.phrases, *opt.label,
                        *([opt.set_locale] if opt.set_locale else [])]:
                if loc not in flow.locales:
                    errors.append(lines.error((*base, *sub), f"option uses undeclared locale "
                                              f"{loc!r}"))
        errors += [lines.error((*base, "listen_locales"), f"undeclared locale {loc!r}")
                   for loc in node.listen_locales if loc not in flow.locales]
    return errors


def _check_speech(flow: Flow, lines: FlowLines, voices: dict[str, str]) -> list[FlowError]:
    """Every prompt text of every locale can be spoken: each language run has a voice."""
    from app.flows.match import render
    from app.tts.runs import unreadable_chars

    errors: list[FlowError] = []
    have = ", ".join(sorted(voices)) or "none"
    voiced = [loc for loc in flow.locales if loc in voices]
    for loc in flow.locales:
        if loc not in voices:
            errors.append(lines.error(("locales",), f"locale {loc!r} has no voice "
                                      f"(settings tts_voices has: {have})"))
    for path, prompt in _walk_prompts(flow, ()):
        for loc, part in prompt.by_locale.items():
            if loc not in voiced or not isinstance(part, str):
                continue
            bad = unreadable_chars(render(part, {}), loc, voices)
            if bad:
                chars = ", ".join(f"{ch!r}" for ch in bad[:5])
                errors.append(lines.error((*path, loc), f"no voice can read {chars} in the "
                                          f"{loc!r} prompt (voices: {have})"))
    return errors


def _global_key_clash(flow: Flow, key: str) -> str | None:
    """Why a menu option on ``key`` would misbehave, or None."""
    g = flow.globals
    if key == g.repeat_key:
        return (f"key {key!r} never reaches this option: it is the repeat key "
                f"(globals.repeat_key); use another key or set repeat_key: null")
    if key == g.agent_key:
        return (f"key {key!r} hides the agent key (globals.agent_key) in this menu; use "
                f"another key, or set agent_key: null if this option is the way to an agent")
    return None


def check_text(text: str, file: Path, known_intents: set[str] | None = None,
               voices: dict[str, str] | None = None) -> tuple[Flow | None, list[FlowError]]:
    try:
        flow, errors, lines = parse_flow(text, file)
    except FlowError as exc:
        return None, [exc]
    if flow is None:
        return None, errors
    errors = _check_graph(flow, lines) + _check_refs(flow, lines, known_intents)
    if voices is not None:
        errors += _check_speech(flow, lines, voices)
    errors.sort(key=lambda e: e.line)
    return (None if errors else flow), errors


def check_file(file: Path, known_intents: set[str] | None = None,
               voices: dict[str, str] | None = None) -> tuple[Flow | None, list[FlowError]]:
    """The flow and every problem of one file (flow is None when there is any).

    With ``voices`` (locale -> espeak-ng voice) every prompt is also checked speakable.
    """
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(file, 1, f"cannot read: {exc}")]
    return check_text(text, file, known_intents, voices)


def load_flow(file: Path, known_intents: set[str] | None = None) -> Flow:
    flow, errors = check_file(file, known_intents)
    if errors or flow is None:
        raise errors[0]
    return flow


def flow_files(folder: Path) -> list[Path]:
    """The flow files of a folder (``*.yaml``/``*.yml``, not sub-folders such as tests/)."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def check_files(files: Iterable[Path], known_intents: set[str] | None = None,
                voices: dict[str, str] | None = None
                ) -> tuple[dict[str, Flow], list[FlowError]]:
    flows: dict[str, Flow] = {}
    errors: list[FlowError] = []
    numbers: dict[str, str] = {}
    for file in files:
        flow, errs = check_file(file, known_intents, voices)
        errors += errs
        if flow is None:
            continue
        if flow.id in flows:
            errors.append(FlowError(file, 1, f"flow id {flow.id!r} is defined twice"))
            continue
        clash = [n for n in flow.hotline_numbers if _digits(n) in numbers]
        for number in clash:
            errors.append(FlowError(file, 1, f"hotline number {number} is served by both "
                                    f"{numbers[_digits(number)]!r} and {flow.id!r}"))
        if clash:
            continue
        numbers.update({_digits(n): flow.id for n in flow.hotline_numbers})
        flows[flow.id] = flow
    return flows, errors


def load_flows(folder_or_files: Path | Iterable[Path], known_intents: set[str] | None = None
               ) -> dict[str, Flow]:
    """Every flow of a folder (or a list of files) by id; raises the first ``FlowError``."""
    files = (flow_files(folder_or_files) if isinstance(folder_or_files, Path)
             else list(folder_or_files))
    flows, errors = check_files(files, known_intents)
    if errors:
        raise errors[0]
    return flows


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def flow_for_number(flows: dict[str, Flow], hotline_number: str) -> Flow | None:
    """The flow serving a dialled number (digits compared, so "400-800-1234" matches)."""
    want = _digits(hotline_number)
    for flow in flows.values():
        if any(_digits(number) == want for number in flow.hotline_numbers):
            return flow
    return None
