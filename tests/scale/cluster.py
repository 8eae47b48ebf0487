"""Launching a cluster on loopback: several real ``hotline serve`` nodes on one real
PostgreSQL database (and optionally one Redis), behind a real Kamailio
(``deploy/kamailio/kamailio.cfg``), called by sipp. Shared by the multi-node tests
(``tests/scale``) and the scale benchmark (``bench/scale.py``).

Nodes run the keypad-only ``data/hold.yaml`` flow (no speech model, no intents): a call waits
in a queue until sipp hangs up, so calls stay up as long as a caller needs them.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.settings import PROJECT_ROOT
from tests.helpers.auth import ADMIN
from tests.sip.conftest import SipServer, free_udp_port, start_server, stop_server

HOLD_FLOW = PROJECT_ROOT / "tests" / "scale" / "data" / "hold.yaml"
NUMBER = "4000000009"
KAMAILIO_CFG = PROJECT_ROOT / "deploy" / "kamailio" / "kamailio.cfg"

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="hotline call held {hold_ms} ms">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Max-Forwards: 70
      Content-Type: application/sdp
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Length: [len]

      v=0
      o=user1 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" rtd="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <ResponseTimeRepartition value="10, 20, 50, 100, 200, 500, 1000, 2000, 3000"/>
</scenario>
"""

FORBIDDEN = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="a call from an address not on the trunk allow-list">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="403"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


@dataclass
class Kamailio:
    proc: subprocess.Popen[bytes]
    port: int
    ctl: str
    log: Path

    def dispatcher(self) -> dict[str, str]:
        """Each node's dispatcher flags (``AP``: up, ``IP``/``TP``: down, probing)."""
        out = subprocess.run(["kamcmd", "-s", self.ctl, "dispatcher.list"], text=True,
                             capture_output=True, timeout=30).stdout
        states: dict[str, str] = {}
        uri = ""
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("URI:"):
                uri = line.split("URI:", 1)[1].strip()
            elif line.startswith("FLAGS:") and uri:
                states[uri] = line.split("FLAGS:", 1)[1].strip()
        return states


@dataclass
class Cluster:
    tmp: Path
    db_url: str
    kamailio: Kamailio
    nodes: dict[str, SipServer] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    def api(self, node: str | None = None) -> SipServer:
        """A live node (to read the shared records through)."""
        names = [node] if node else list(self.nodes)
        for name in names:
            if self.nodes[name].proc.poll() is None:
                return self.nodes[name]
        raise AssertionError("no node alive")

    def calls(self) -> list[dict[str, Any]]:
        url = self.api().url
        items = httpx.get(f"{url}/v1/calls", params={"limit": 500}, timeout=30,
                          headers=ADMIN).json()["items"]
        return list(items)

    def restart(self, name: str) -> SipServer:
        """Start a stopped node again at the same HTTP and SIP ports (Kamailio's list)."""
        old = self.nodes[name]
        assert old.proc.poll() is not None, f"{name} is still running"
        port = int(old.url.rsplit(":", 1)[1])
        self.nodes[name] = start_server(old.tmp, port=port, sip_port=old.sip_port,
                                        **self.envs[name])
        return self.nodes[name]

    def node_uri(self, name: str) -> str:
        return f"sip:127.0.0.1:{self.nodes[name].sip_port}"

    def sipp(self, scenario: str, calls: int, *args: str, local_ip: str = "127.0.0.1",
             timeout_s: int = 180, background: bool = False, port: int | None = None,
             work: Path | None = None) -> Any:
        """Run a sipp scenario (a template, or FORBIDDEN) against Kamailio (or ``port``:
        a node's SIP port, Kamailio bypassed); its files (traces, ``sipp.out`` when in the
        background) go to ``work`` (default: a fresh folder)."""
        work = work or self.tmp / f"sipp-{uuid.uuid4().hex[:8]}"
        work.mkdir(exist_ok=True)
        (work / "scenario.xml").write_text(scenario)
        command = ["sipp", "-sf", "scenario.xml", "-s", NUMBER, "-m", str(calls),
                   "-i", local_ip, "-p", str(free_udp_port()), "-mi", local_ip,
                   "-mp", str(free_udp_port()), "-timeout", f"{timeout_s}s",
                   "-timeout_error", "-nostdin", "-trace_err", "-trace_stat", "-trace_rtt",
                   "-rtt_freq", "1", "-fd", "1", *args,
                   f"127.0.0.1:{port or self.kamailio.port}"]
        if background:
            log = (work / "sipp.out").open("wb")
            return subprocess.Popen(command, cwd=work, stdout=log, stderr=log)
        result = subprocess.run(command, cwd=work, capture_output=True, text=True,
                                timeout=timeout_s + 60)
        if result.returncode != 0:
            for log_file in work.glob("*.log"):
                result.stdout += f"\n--- {log_file.name}\n" + log_file.read_text(
                    errors="replace")[-4000:]
        return result


def uac(hold_ms: int) -> str:
    return UAC.replace("{hold_ms}", str(hold_ms))


def sip_request_status(port: int, method: str = "OPTIONS", timeout_s: float = 10) -> int:
    """Send one SIP request over UDP to 127.0.0.1:``port``; the final status answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        call_id = uuid.uuid4().hex
        message = (
            f"{method} sip:{NUMBER}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id[:12]};rport\r\n"
            f"From: <sip:probe@127.0.0.1:{local}>;tag={call_id[:8]}\r\n"
            f"To: <sip:{NUMBER}@127.0.0.1:{port}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        sock.settimeout(timeout_s)
        sock.sendto(message.encode(), ("127.0.0.1", port))
        while True:
            status = int(sock.recv(65535).split(b" ", 2)[1])
            if status >= 200:
                return status


def start_kamailio(tmp: Path, node_ports: list[int], ping_s: int = 1) -> Kamailio:
    kam = tmp / "kamailio"
    kam.mkdir()
    shutil.copy(KAMAILIO_CFG, kam / "kamailio.cfg")
    port = free_udp_port()
    ctl = f"unix:{kam / 'ctl'}"
    (kam / "hotline-local.cfg").write_text(
        f"listen=udp:127.0.0.1:{port}\n"
        f'#!define DS_LIST "{kam / "dispatcher.list"}"\n'
        f'#!define TRUNKS_LIST "{kam / "trunks.list"}"\n'
        f"#!define DS_PING_S {ping_s}\n"
        f'#!define CTL_SOCKET "{ctl}"\n'
        "#!define PIKE_REQS_PER_2S 2000\n")
    (kam / "dispatcher.list").write_text(
        "".join(f"1 sip:127.0.0.1:{p}\n" for p in node_ports))
    (kam / "trunks.list").write_text("1 127.0.0.1\n")  # 127.0.0.2.. are strangers
    log = kam / "kamailio.log"
    proc = subprocess.Popen(
        ["kamailio", "-f", str(kam / "kamailio.cfg"), "-DD", "-E", "-Y", str(kam),
         "-w", str(kam), "-m", "64", "-M", "8"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT)
    kamailio = Kamailio(proc, port, ctl, log)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"kamailio exited: {log.read_text()[-3000:]}")
        try:
            if sip_request_status(port, timeout_s=1) == 200:
                return kamailio
        except (TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"kamailio never answered: {log.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def node_env(name: str, db_url: str, flows: Path, **extra: str) -> dict[str, str]:
    return {
        "HOTLINE_NODE_ID": name, "HOTLINE_DATABASE_URL": db_url,
        "HOTLINE_FLOWS_DIR": str(flows), "HOTLINE_ASR_MODELS": "{}",
        "HOTLINE_TTS_VOICES": '{"en": "en-us"}', "HOTLINE_INTENT_MODEL_DIR": "/nonexistent",
        "HOTLINE_NODE_HEARTBEAT_S": "1", "HOTLINE_NODE_STALE_AFTER_S": "5",
        "HOTLINE_QUEUE_MAX_WAIT_S": "600", "HOTLINE_SIP_RATE_LIMIT_PER_S": "1000",
        "HOTLINE_SIP_RATE_LIMIT_BURST": "2000", "HOTLINE_MAX_CALLS": "40",
        "HOTLINE_SIP_MAX_CALLS": "40", **extra,
    }


def by_node(calls: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        counts[call["node_id"]] = counts.get(call["node_id"], 0) + 1
    return counts



def _start_node(folder: Path, env: Mapping[str, str]) -> SipServer:
    return start_server(folder, port=None, sip_port=None, **env)


@contextmanager
def running_cluster(tmp: Path, db_url: str, names: tuple[str, ...] = ("node-a", "node-b"),
                    env: Mapping[str, str] | None = None,
                    per_node: Mapping[str, Mapping[str, str]] | None = None,
                    ping_s: int = 1) -> Iterator[Cluster]:
    """Start the nodes (at once: model-free, seconds) and Kamailio in front; stop all after.
    ``env`` is added to every node's settings, ``per_node[name]`` to one node's."""
    flows = tmp / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    shutil.copy(HOLD_FLOW, flows / HOLD_FLOW.name)
    envs = {name: node_env(name, db_url, flows, **(env or {}), **(per_node or {}).get(name, {}))
            for name in names}
    nodes: dict[str, SipServer] = {}
    kamailio: Kamailio | None = None
    cluster: Cluster | None = None
    try:
        with ThreadPoolExecutor(len(names)) as pool:
            started = {name: pool.submit(_start_node, tmp / name, envs[name])
                       for name in names}
        for name, future in started.items():
            if future.exception() is None:
                nodes[name] = future.result()
        for future in started.values():
            future.result()  # raises the first start failure (after the others are known)
        kamailio = start_kamailio(tmp, [n.sip_port for n in nodes.values()], ping_s=ping_s)
        cluster = Cluster(tmp, db_url, kamailio, nodes, envs)
        yield cluster
    finally:
        if kamailio is not None:
            stop_process(kamailio.proc)
        for node in (cluster.nodes if cluster is not None else nodes).values():
            if node.proc.poll() is None:
                stop_server(node.proc)
