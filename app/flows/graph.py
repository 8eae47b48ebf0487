"""A picture of a flow: Mermaid text, or Graphviz DOT rendered by the ``dot`` binary."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from app.flows.loader import node_targets
from app.flows.schema import BranchNode, Flow, MenuNode, Node

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
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    shapes = {"menu": "hexagon", "collect": "parallelogram", "branch": "diamond",
              "transfer": "box3d", "hangup": "doublecircle", "webhook": "component"}
    lines = [f'digraph "{flow.id}" {{', "  rankdir=TB;", '  node [fontname="sans"];',
             '  start [shape=oval, label="start"];', f"  start -> {_id(flow.start)};"]
    for name, node in flow.nodes.items():
        extra = f"\\n{node.queue}" if node.kind == "transfer" else ""  # type: ignore[union-attr]
        shape = shapes.get(node.kind, "box")
        lines.append(f'  {_id(name)} [shape={shape}, label="{name}\\n({node.kind}){extra}"];')
    for name, node in flow.nodes.items():
        for target, label in _edge_labels(node):
            lines.append(f'  {_id(name)} -> {_id(target)} [label="{_clean(label)}"];')
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
