"""A picture of a flow: Mermaid text, or Graphviz DOT rendered by the ``dot`` binary."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from app.flows.loader import node_targets
from app.flows.schema import BranchNode, Flow, MenuNode, Node

# Chinese labels need a CJK font (fonts-noto-cjk, installed by the Makefile and Dockerfile);
# fontconfig falls back to it for Hanzi when another sans font is picked.
FONT = "Noto Sans CJK SC,sans"
_SHAPES = {"menu": ("{{", "}}"), "collect": ("[/", "/]"), "branch": ("{", "}"),
           "transfer": ("[[", "]]"), "hangup": ("((", "))")}


def _id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _edge_labels(node: Node) -> list[tuple[str, str]]:
    """(target, label) for every edge."""
    if isinstance(node, MenuNode):
        out = []
        for o in node.options:
            bits = [f"#{o.dtmf}"] if o.dtmf else []
            bits += o.intents[:2] + (["…"] if len(o.intents) > 2 else [])
            bits += [p for ps in o.phrases.values() for p in ps[:1]]
            if o.any_intent:
                bits.append("any intent")
            out.append((o.next, " / ".join(bits)))
        out += [(t, label) for t, label in ((node.no_match, "no match"),
                                            (node.no_input, "no input")) if t]
        return out
    if isinstance(node, BranchNode):
        out = []
        for c in node.cases:
            cond = c.when.model_dump(exclude_none=True, by_alias=True)
            out.append((c.next, ", ".join(f"{k}={v}" for k, v in cond.items())))
        return [*out, (node.default, "else")]
    return [(t, "/".join(p for p in path if not p.isdigit() and p != "next"))
            for path, t in node_targets(node)]


def _global_handlers(flow: Flow) -> list[tuple[str, str, str | None, str]]:
    """(pseudo-node id, label, target node or None, edge label) for the handlers that act
    from anywhere: the agent key / "talk to an agent", and the queue timeout."""
    g = flow.globals
    out: list[tuple[str, str, str | None, str]] = []
    how = [f"#{g.agent_key}"] if g.agent_key else []
    how.append("talk_to_agent")
    queue = g.talk_to_agent.queue
    out.append(("g_agent", f"any time: {' / '.join(how)}\n-> queue {queue}", None, ""))
    if g.queue_timeout:
        out.append(("g_queue_timeout", "any transfer: nobody answered in time",
                    g.queue_timeout, "queue timeout"))
    if g.repeat_key:
        out.append(("g_repeat", f"any time: #{g.repeat_key} repeats the last prompt", None, ""))
    return out


def _clean(label: str) -> str:
    return label.replace('"', "'").replace("|", "/")


def to_mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f'  start(["{flow.id}"]) --> {_id(flow.start)}']
    for name, node in flow.nodes.items():
        left, right = _SHAPES.get(node.kind, ("[", "]"))
        extra = f": {node.queue}" if node.kind == "transfer" else ""  # type: ignore[union-attr]
        lines.append(f'  {_id(name)}{left}"{name}<br/>({node.kind}{extra})"{right}')
    for name, node in flow.nodes.items():
        for target, label in _edge_labels(node):
            arrow = f'-->|"{_clean(label)}"|' if label else "-->"
            lines.append(f"  {_id(name)} {arrow} {_id(target)}")
    for gid, text, entry, label in _global_handlers(flow):
        lines.append(f'  {gid}[/"{_clean(text).replace(chr(10), "<br/>")}"/]')
        if entry is not None:
            lines.append(f'  {gid} -.->|"{_clean(label)}"| {_id(entry)}')
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    shapes = {"menu": "hexagon", "collect": "parallelogram", "branch": "diamond",
              "transfer": "box3d", "hangup": "doublecircle", "webhook": "component"}
    lines = [f'digraph "{flow.id}" {{', "  rankdir=TB;", f'  node [fontname="{FONT}"];',
             f'  edge [fontname="{FONT}"];',
             '  start [shape=oval, label="start"];', f"  start -> {_id(flow.start)};"]
    for name, node in flow.nodes.items():
        extra = f"\\n{node.queue}" if node.kind == "transfer" else ""  # type: ignore[union-attr]
        shape = shapes.get(node.kind, "box")
        lines.append(f'  {_id(name)} [shape={shape}, label="{name}\\n({node.kind}){extra}"];')
    for name, node in flow.nodes.items():
        for target, label in _edge_labels(node):
            lines.append(f'  {_id(name)} -> {_id(target)} [label="{_clean(label)}"];')
    for gid, text, entry, label in _global_handlers(flow):
        shown = _clean(text).replace("\n", "\\n")
        lines.append(f'  {gid} [shape=note, style=dashed, label="{shown}"];')
        if entry is not None:
            lines.append(f'  {gid} -> {_id(entry)} [style=dashed, label="{_clean(label)}"];')
    return "\n".join([*lines, "}"]) + "\n"


class GraphError(RuntimeError):
    pass


def write_graph(flow: Flow, out: Path, dot_timeout_s: float = 60.0) -> None:
    """Write ``.mmd`` (Mermaid), ``.dot``, or ``.svg``/``.png`` through Graphviz ``dot``."""
    suffix = out.suffix.lower()
    if suffix in (".mmd", ".mermaid"):
        out.write_text(to_mermaid(flow), encoding="utf-8")
        return
    if suffix == ".dot":
        out.write_text(to_dot(flow), encoding="utf-8")
        return
    if suffix not in (".svg", ".png"):
        raise GraphError(f"unsupported output {suffix!r}: use .mmd, .dot, .svg or .png")
    dot = shutil.which("dot")
    if dot is None:
        raise GraphError("Graphviz `dot` is not installed (apt-get install graphviz); "
                         "write .mmd (Mermaid) instead")
    proc = subprocess.run(
        [dot, f"-T{suffix[1:]}", "-o", str(out)], input=to_dot(flow).encode(),
        capture_output=True, timeout=dot_timeout_s, check=False,
    )
    if proc.returncode != 0:
        raise GraphError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
