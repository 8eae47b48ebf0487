"""Small files for the desk tests: routing for the demo number served by two agents, and a
short flow on that number (a two-word menu where 0 asks for an agent) for the tests about
routing rather than the demo flow."""

from __future__ import annotations

from pathlib import Path


def two_agent_routing(folder: Path, *, ring_timeout_s: float = 4, max_wait_s: float = 60,
                      max_missed_offers: int = 3, strategy: str = "sequential") -> Path:
    """Group ``zh_service`` (li.na first, then zhang.wei) for every call of 4008001234;
    no overflow: at the max wait the flow's queue-timeout path runs."""
    path = folder / "routing.yaml"
    path.write_text(f"""\
version: 1
offers:
  no_answer_delay_s: 60
  reject_delay_s: 60
  busy_delay_s: 60
  max_missed_offers: {max_missed_offers}
agents:
  li.na: {{name: 李娜, languages: [zh], skills: {{general: 5}}}}
  zhang.wei: {{name: 张伟, languages: [zh], skills: {{general: 3}}}}
groups:
  zh_service:
    strategy: {strategy}
    members: [li.na, zhang.wei]
    skills: [general]
    ring_timeout_s: {ring_timeout_s}
    max_wait_s: {max_wait_s}
    wrap_up_s: 0
    overflow_if_empty: false
hotlines:
  - number: "4008001234"
    flow: demo_hotline
    default: {{group: zh_service}}
""", encoding="utf-8")
    return path


def short_flow(folder: Path) -> Path:
    """A flows folder with ``desk_short`` on 4008001234: "press 0" -> queue ``general``;
    at the queue's max wait the flow's ``busy`` node says so and hangs up."""
    flows = folder / "short_flows"
    flows.mkdir(exist_ok=True)
    (flows / "desk_short.yaml").write_text("""\
id: desk_short
locales: [zh]
default_locale: zh
hotline_numbers: ["4008001234"]
start: menu
queues:
  general: {skills: [general]}
globals:
  queue_timeout: busy
  agent_key: "0"
  timeout_s: 30
  talk_to_agent:
    queue: general
    confirm: false
    prompt: {zh: 请稍候。}
  no_input: {max_attempts: 3, prompt: {zh: 请按键。}}
  no_match: {max_attempts: 3, prompt: {zh: 请按键。}}
  goodbye: {prompt: {zh: 再见。}}
nodes:
  menu:
    kind: menu
    prompt: {zh: 人工请按0。}
    options:
      - {dtmf: "1", next: busy}
  busy:
    kind: hangup
    outcome: self_service
    prompt: {zh: 客服都在忙，再见。}
""", encoding="utf-8")
    return flows


def phone_agent_routing(folder: Path, uri: str, ring_timeout_s: float = 15) -> Path:
    """Group ``zh_service`` with one agent, wang.fang, who answers on a SIP phone at ``uri``."""
    path = folder / "routing_phone.yaml"
    path.write_text(f"""\
version: 1
agents:
  wang.fang:
    name: 王芳
    languages: [zh]
    skills: {{general: 5}}
    devices: [{{kind: sip, uri: "{uri}"}}]
groups:
  zh_service:
    strategy: sequential
    members: [wang.fang]
    skills: [general]
    ring_timeout_s: {ring_timeout_s}
    max_wait_s: 60
    wrap_up_s: 0
    overflow_if_empty: false
hotlines:
  - number: "4008001234"
    flow: desk_short
    default: {{group: zh_service}}
""", encoding="utf-8")
    return path


def actions_routing(folder: Path, *, agent_ring_timeout_s: float = 3,
                    callback_offer_after_s: float | None = None,
                    max_wait_s: float = 60) -> Path:
    """Group ``zh_service`` (li.na, then zhang.wei) for every call of 4008001234, an agent
    target rings ``agent_ring_timeout_s``; the bot takes callers back at ``verify``."""
    callback = (f"    callback_offer_after_s: {callback_offer_after_s}\n"
                if callback_offer_after_s else "")
    path = folder / "routing_actions.yaml"
    path.write_text(f"""\
version: 1
offers:
  no_answer_delay_s: 60
  reject_delay_s: 60
  busy_delay_s: 60
  max_missed_offers: 3
  agent_ring_timeout_s: {agent_ring_timeout_s}
agents:
  li.na: {{name: 李娜, languages: [zh], skills: {{general: 5}}}}
  zhang.wei: {{name: 张伟, languages: [zh], skills: {{general: 3}}}}
groups:
  zh_service:
    strategy: sequential
    members: [li.na, zhang.wei]
    skills: [general]
    ring_timeout_s: 30
    max_wait_s: {max_wait_s}
    wrap_up_s: 0
    overflow_if_empty: false
{callback}hotlines:
  - number: "4008001234"
    flow: desk_actions
    default: {{group: zh_service}}
    handback: {{verify: 身份验证 / ID check}}
""", encoding="utf-8")
    return path


def actions_flow(folder: Path) -> Path:
    """``desk_actions`` on 4008001234: "press 0" -> queue ``general``; ``verify`` (where an
    agent hands the caller back) takes four digits and transfers back; at a queue timeout
    the bot says its ``busy`` line and hangs up."""
    flows = folder / "actions_flows"
    flows.mkdir(exist_ok=True)
    (flows / "desk_actions.yaml").write_text("""\
id: desk_actions
locales: [zh]
default_locale: zh
hotline_numbers: ["4008001234"]
start: menu
queues:
  general: {skills: [general]}
globals:
  queue_timeout: busy
  agent_key: "0"
  timeout_s: 30
  talk_to_agent:
    queue: general
    confirm: false
    prompt: {zh: 请稍候。}
  no_input: {max_attempts: 3, prompt: {zh: 请按键。}}
  no_match: {max_attempts: 3, prompt: {zh: 请按键。}}
  goodbye: {prompt: {zh: 再见。}}
nodes:
  menu:
    kind: menu
    prompt: {zh: 人工请按0，验证身份请按2。}
    options:
      - {dtmf: "1", next: busy}
      - {dtmf: "2", next: verify}
  verify:
    kind: collect
    slot: id_last4
    type: digits
    min_length: 4
    max_length: 4
    prompt: {zh: 请输入身份证后四位。}
    next: back_to_agent
  back_to_agent:
    kind: transfer
    queue: general
    reason: verified
  busy:
    kind: hangup
    outcome: self_service
    prompt: {zh: 抱歉，现在无法为您转接，请稍后再拨，再见。}
""", encoding="utf-8")
    return flows
