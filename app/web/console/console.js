// The console's few behaviours: sign in and out, the live monitor, the inbox's labels.
// No framework, no CDN: this file is all the script the console runs.
"use strict";

function csrf() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function send(method, url, body) {
  const response = await fetch(url, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail || response.status));
  }
  return data;
}

function signIn() {
  const form = document.getElementById("login");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("login-error");
    error.textContent = "";
    try {
      await send("POST", "/v1/auth/login", {
        name: document.getElementById("name").value,
        password: document.getElementById("password").value,
      });
      window.location.assign(form.dataset.next || "/console");
    } catch (e) {
      error.textContent = e.message;
    }
  });
}

function signOut() {
  const button = document.getElementById("sign-out");
  if (!button) return;
  button.addEventListener("click", async () => {
    try { await send("POST", "/v1/auth/logout"); } catch (e) { /* signed out anyway */ }
    window.location.assign("/console/login");
  });
}

function inbox() {
  for (const form of document.querySelectorAll("form.label-item")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = form.querySelector(".status");
      status.textContent = "…";
      try {
        const saved = await send("POST", "/v1/inbox/labels", {
          call_id: form.dataset.call, seq: Number(form.dataset.seq),
          label: form.querySelector("select").value,
        });
        status.textContent = "✓ " + saved.label;
        status.className = "status saved";
        form.closest("tr").dataset.labelled = saved.label;
      } catch (e) {
        status.textContent = e.message;
        status.className = "status error";
      }
    });
  }
  const retrain = document.getElementById("retrain");
  if (retrain) {
    retrain.addEventListener("click", async () => {
      retrain.disabled = true;
      try { await send("POST", "/v1/inbox/retrain", { reason: retrain.dataset.reason || "labels from the inbox" }); } catch (e) {
        document.getElementById("training").textContent = e.message;
      }
      pollTraining();
    });
    pollTraining();
  }
}

function showProgress(progress) {
  const bar = document.getElementById("training-progress");
  const label = document.getElementById("training-phase");
  if (!bar || !progress) return;
  bar.value = progress.percent;
  bar.textContent = progress.percent + "%";
  label.textContent = progress.phase ? `${progress.phase} (${progress.phase_index}/${progress.phases}): `
    + `${progress.step}/${progress.total} · ${progress.percent}%` : "";
}

async function pollTraining() {
  const box = document.getElementById("training");
  const retrain = document.getElementById("retrain");
  try {
    const job = await send("GET", "/v1/inbox/retrain");
    box.textContent = job.summary;
    box.dataset.state = job.state;
    showProgress(job.progress);
    if (job.state === "running") { setTimeout(pollTraining, 500); return; }
  } catch (e) { box.textContent = e.message; }
  if (retrain) retrain.disabled = false;
}

function intentsPage() {
  const form = document.getElementById("example-add");
  if (!form) return;
  const out = document.getElementById("example-result");
  const done = () => location.reload();
  const fail = (e) => { out.textContent = ""; for (const p of problems(e)) resultLine(out, p, "error"); };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await send("POST", "/v1/intents/examples", { intent: form.intent.value,
        locale: form.locale.value, text: form.text.value });
      done();
    } catch (e) { fail(e); }
  });
  for (const li of document.querySelectorAll("li.console-example")) {
    const row = li.closest("tr");
    const ex = { intent: row.dataset.intent, locale: row.dataset.locale, text: li.dataset.text };
    li.querySelector(".example-remove").addEventListener("click", async () => {
      try { await send("POST", "/v1/intents/examples/remove", ex); done(); } catch (e) { fail(e); }
    });
    li.querySelector(".example-edit").addEventListener("click", async () => {
      const text = window.prompt(ex.text, ex.text);
      if (!text || text === ex.text) return;
      try { await send("PATCH", "/v1/intents/examples", { ...ex, new_text: text }); done(); } catch (e) { fail(e); }
    });
  }
  const models = document.getElementById("model-result");
  const modelFail = (e) => { models.textContent = ""; for (const p of problems(e)) resultLine(models, p, "error"); };
  for (const button of document.querySelectorAll("button.model-activate")) {
    button.addEventListener("click", async () => {
      try {
        await send("POST", `/v1/intents/models/${encodeURIComponent(button.dataset.version)}/activate`);
        done();
      } catch (e) { modelFail(e); }
    });
  }
  document.getElementById("model-rollback").addEventListener("click", async () => {
    try { await send("POST", "/v1/intents/models/rollback"); done(); } catch (e) { modelFail(e); }
  });
}

// -- live monitor ---------------------------------------------------------------------
const calls = new Map();
let supervising = null;  // { callId, pc, stream }: one call at a time

function showAgent(el, agentId) {
  el.querySelector(".agent").textContent = agentId ? "☎ " + agentId : "";
  el.querySelector(".supervise").hidden = !agentId;
}

function superviseButtons(el, callId, list) {
  if (!list.dataset.canListen) return;
  const box = el.querySelector(".supervise");
  for (const mode of ["listen", "whisper", "barge", "leave"]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "supervise-" + mode;
    button.textContent = list.dataset[mode];
    button.addEventListener("click", () => supervise(callId, mode, el).catch((e) => {
      el.dataset.superviseError = e.message;
    }));
    box.append(button);
  }
}

async function supervise(callId, mode, el) {
  const base = "/v1/calls/" + encodeURIComponent(callId) + "/supervise";
  if (mode === "leave") {
    if (supervising && supervising.callId === callId) {
      stopSupervising();
      await send("POST", base + "/leave");
    }
    el.dataset.supervise = "";
    return;
  }
  if (supervising && supervising.callId === callId) {
    const state = await send("POST", base + "/mode", { mode });
    el.dataset.supervise = state.mode;
    return;
  }
  if (supervising) stopSupervising();
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const pc = new RTCPeerConnection();
  supervising = { callId, pc, stream };
  window.hotlineSupervise = supervising;  // the page's peer, for a look from the devtools
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  pc.addEventListener("track", (e) => {
    const audio = document.getElementById("supervise-audio");
    audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    audio.play().catch(() => {});
  });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  const answer = await send("POST", base, { mode, sdp: pc.localDescription.sdp });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  el.dataset.supervise = answer.mode;
}

function stopSupervising() {
  if (!supervising) return;
  supervising.pc.close();
  for (const track of supervising.stream.getTracks()) track.stop();
  supervising = null;
  window.hotlineSupervise = null;
}

function liveRow(callId) {
  let row = calls.get(callId);
  if (!row) {
    const list = document.getElementById("live-calls");
    const el = document.createElement("div");
    el.className = "live-call";
    el.dataset.call = callId;
    el.innerHTML = '<div><a></a> <span class="node"></span> <span class="intent"></span> <span class="sentiment"></span> <span class="agent"></span> <span class="supervise" hidden></span></div><ol class="turns"></ol>';
    el.querySelector("a").textContent = callId;
    el.querySelector("a").href = "/console/calls/" + encodeURIComponent(callId);
    superviseButtons(el, callId, list);
    list.prepend(el);
    row = { el, turns: el.querySelector(".turns") };
    calls.set(callId, row);
  }
  return row;
}

// alerts (app/alerts): the banner, and the call or queue row they name highlighted
const alerts = new Map();

function showAlert(event) {
  if (event.state === "raised") alerts.set(event.alert_id, event);
  else alerts.delete(event.alert_id);
  drawAlerts();
}

function drawAlerts() {
  const box = document.getElementById("alerts");
  if (!box) return;
  const list = document.getElementById("alert-list");
  list.textContent = "";
  for (const a of alerts.values()) {
    const li = document.createElement("li");
    li.className = "alert " + a.severity;
    li.dataset.alert = a.alert_id;
    li.title = a.detail || "";
    li.textContent = (box.dataset["label" + a.kind[0].toUpperCase() + a.kind.slice(1)] || a.kind) + ": " +
      [a.subject.queue, a.subject.call_id].filter(Boolean).join(" ") + " " + a.value + " " + a.unit +
      " (" + box.dataset.labelThreshold + " " + a.threshold + ")";
    list.append(li);
  }
  box.classList.toggle("firing", alerts.size > 0);
  document.getElementById("alert-count").textContent = String(alerts.size);
  const named = [...alerts.values()].map((a) => a.subject);
  for (const [id, row] of calls) row.el.classList.toggle("alerted", named.some((s) => s.call_id === id));
  for (const tr of document.querySelectorAll("#queues tbody tr")) {
    tr.classList.toggle("alerted", named.some((s) => s.queue && s.queue === tr.dataset.queue));
  }
}

async function loadAlerts() {
  try {
    const state = await send("GET", "/v1/alerts");
    for (const a of state.active) alerts.set(a.alert_id, a);
  } catch (e) { /* the live events still arrive */ }
  drawAlerts();
}

function showEvent(event) {
  if (event.type === "alert") { showAlert(event); return; }
  const row = liveRow(event.call_id);
  const el = row.el;
  if (event.type === "node_entered") el.querySelector(".node").textContent = "▸ " + event.node;
  if (event.type === "intent") {
    el.querySelector(".intent").textContent =
      (event.intent || "?") + " " + Number(event.confidence || 0).toFixed(2);
  }
  if (event.type === "sentiment") {
    const s = el.querySelector(".sentiment");
    s.textContent = event.label + " " + Number(event.score).toFixed(2);
    s.className = "sentiment " + event.label;
  }
  if ((event.type === "transcript" && event.is_final) || (event.type === "prompt_played" && event.text)) {
    const li = document.createElement("li");
    li.className = event.type === "transcript" ? (event.speaker || "caller") : "bot";
    li.textContent = event.type === "transcript" ? event.text : (event.display || event.text);
    row.turns.append(li);
  }
  if (event.type === "agent_connected" || event.type === "agent_disconnected") {
    showAgent(el, event.type === "agent_connected" ? event.agent_id : null);
  }
  if (event.type === "call_ended") {
    if (supervising && supervising.callId === event.call_id) stopSupervising();
    el.remove();
    calls.delete(event.call_id);
  }
  document.getElementById("active-count").textContent = String(calls.size);
}

function monitor() {
  const list = document.getElementById("live-calls");
  if (!list) return;
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(scheme + "//" + window.location.host + "/v1/calls/events");
  socket.addEventListener("message", (message) => showEvent(JSON.parse(message.data)));
  socket.addEventListener("open", () => { document.body.dataset.live = "open"; });
  socket.addEventListener("close", () => { document.body.dataset.live = "closed"; });
  loadAlerts();
  refreshQueues();
}

async function refreshQueues() {
  try {
    const state = await send("GET", "/v1/monitor");
    const body = document.querySelector("#queues tbody");
    body.textContent = "";
    for (const q of state.queues) {
      const tr = document.createElement("tr");
      tr.dataset.queue = q.queue;
      for (const v of [q.queue, q.waiting, q.longest_wait_s.toFixed(0) + " s"]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      body.append(tr);
    }
    for (const c of state.calls) {
      const known = calls.has(c.call_id);
      const el = liveRow(c.call_id).el;
      if (!known) {  // a call that started before this page: what is known of it so far
        if (c.node) el.querySelector(".node").textContent = "▸ " + c.node;
        if (c.intent) el.querySelector(".intent").textContent = c.intent + " " + Number(c.confidence || 0).toFixed(2);
        if (c.sentiment) {
          const s = el.querySelector(".sentiment");
          s.textContent = c.sentiment;
          s.className = "sentiment " + c.sentiment;
        }
      }
      if (!known || c.agent) showAgent(el, c.agent);
    }
    showAgents(state.agents || []);
    document.getElementById("active-count").textContent = String(calls.size);
    drawAlerts();
  } catch (e) { /* shown on the next refresh */ }
  setTimeout(refreshQueues, 2000);
}

// the agents' rows: state, and (with agents:state) buttons forcing it
function showAgents(agents) {
  const table = document.getElementById("agents");
  if (!table) return;
  const labels = table.dataset;
  const body = table.querySelector("tbody");
  body.textContent = "";
  for (const a of agents) {
    const tr = document.createElement("tr");
    tr.dataset.agent = a.agent_id;
    tr.dataset.state = a.state;
    const name = document.createElement("td");
    name.textContent = a.agent_id;
    const state = document.createElement("td");
    state.className = "agent-state";
    const stateKey = "state" + a.state.split("_").map((w) => w[0].toUpperCase() + w.slice(1)).join("");
    state.textContent = (labels[stateKey] || a.state) + (a.away_reason ? " (" + a.away_reason + ")" : "");
    const actions = document.createElement("td");
    if (labels.canForce) {
      for (const target of ["available", "away", "offline"]) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "force-" + target;
        button.textContent = labels[target];
        button.addEventListener("click", () => forceState(a.agent_id, target, tr));
        actions.append(button);
      }
    }
    tr.append(name, state, actions);
    body.append(tr);
  }
}

async function forceState(agentId, target, tr) {
  const body = target === "away" ? { state: target, reason: "other" } : { state: target };
  try {
    const after = await send("POST", "/v1/agents/" + encodeURIComponent(agentId) + "/state", body);
    tr.dataset.state = after.state;
    tr.dataset.forceError = "";
  } catch (e) { tr.dataset.forceError = e.message; tr.title = e.message; }
}

function flowCheck() {
  const form = document.getElementById("flow-check");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("flow-file").files[0];
    const out = document.getElementById("flow-check-result");
    out.textContent = "";
    if (!file) return;
    const line = (text, cls) => {
      const li = document.createElement("li");
      li.textContent = text;
      li.className = cls;
      out.append(li);
    };
    try {
      const result = await send("POST", "/v1/config/flows/check", { filename: file.name, text: await file.text() });
      if (result.ok) line(`${file.name}: ok (flow ${result.flow.id})`, "saved");
      for (const e of result.errors) line(`${e.file}:${e.line}: ${e.reason}`, "error");
    } catch (e) { line(e.message, "error"); }
  });
}

function resultLine(out, text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  li.className = cls;
  out.append(li);
}

function problems(e) {
  try { return JSON.parse(e.message).map((p) => p.msg); } catch (x) { return [e.message]; }
}

async function flowVersionRows(box) {
  const flow = box.dataset.flow;
  const body = box.querySelector("tbody");
  const out = document.getElementById("flow-upload-result");
  body.textContent = "";
  const listed = await send("GET", `/v1/config/flows/${encodeURIComponent(flow)}/versions`);
  for (const v of listed.versions) {
    const tr = document.createElement("tr");
    for (const text of [String(v.version), v.at, v.by]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    if (v.active) {
      td.textContent = "active";
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Activate";
      button.addEventListener("click", async () => {
        try {
          await send("POST", `/v1/config/flows/${encodeURIComponent(flow)}/versions/${v.version}/activate`);
          location.reload();
        } catch (e) { for (const p of problems(e)) resultLine(out, p, "error"); }
      });
      td.append(button);
    }
    tr.append(td);
    body.append(tr);
  }
}

function flowVersions() {
  const form = document.getElementById("flow-upload");
  if (!form) return;
  const out = document.getElementById("flow-upload-result");
  const boxes = document.querySelectorAll(".flow-versions");
  for (const box of boxes) {
    flowVersionRows(box).catch((e) => resultLine(out, e.message, "error"));
    box.querySelector(".flow-rollback").addEventListener("click", async () => {
      try {
        await send("POST", `/v1/config/flows/${encodeURIComponent(box.dataset.flow)}/rollback`);
        location.reload();
      } catch (e) { for (const p of problems(e)) resultLine(out, p, "error"); }
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.textContent = "";
    const file = document.getElementById("flow-upload-file").files[0];
    if (!file) return;
    try {
      const v = await send("POST", "/v1/config/flows", { filename: file.name, text: await file.text() });
      resultLine(out, `${file.name}: stored as version ${v.version} of ${v.flow} (not active yet)`, "saved");
      for (const box of boxes) if (box.dataset.flow === v.flow) await flowVersionRows(box);
    } catch (e) { for (const p of problems(e)) resultLine(out, p, "error"); }
  });
}

function routingEdit() {
  const form = document.getElementById("routing-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("routing-result");
    out.textContent = "";
    const line = (text, cls) => {
      const li = document.createElement("li");
      li.textContent = text;
      li.className = cls;
      out.append(li);
    };
    try {
      const saved = await send("POST", "/v1/config/routing", { text: document.getElementById("routing-yaml").value });
      line("saved: " + saved.saved, "saved");
      document.getElementById("explain-go").click();  // the preview, with the new rules
    } catch (e) {
      let problems = [e.message];
      try { problems = JSON.parse(e.message).map((p) => p.msg); } catch (x) { /* text */ }
      for (const p of problems) line(p, "error");
    }
  });
}

// -- prompts: play (the recording or the voice), upload and remove recordings ----------
function problemText(data, status) {
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
  return "HTTP " + status;
}

function prompts() {
  for (const row of document.querySelectorAll("tr.prompt")) {
    const status = row.querySelector(".status");
    const say = (text, cls) => { if (status) { status.textContent = text; status.className = "status " + cls; } };
    for (const button of row.querySelectorAll("button.play")) {
      button.addEventListener("click", async () => {
        const query = new URLSearchParams({
          locale: row.dataset.locale, text: row.querySelector(".text").firstChild.textContent,
          flow: row.dataset.flow || "", source: button.dataset.source,
        });
        say("…", "");
        const response = await fetch("/v1/config/prompts/play?" + query, { credentials: "same-origin" });
        if (!response.ok) {
          let data = null;
          try { data = await response.json(); } catch (e) { data = null; }
          say(problemText(data, response.status), "error");
          return;
        }
        const audio = row.querySelector("audio.preview");
        audio.src = URL.createObjectURL(await response.blob());
        audio.hidden = false;
        say(response.headers.get("X-Prompt-Source") || "", "saved");
        audio.play().catch(() => { /* the controls are shown */ });
      });
    }
    const form = row.querySelector("form.upload-recording");
    if (form) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const body = new FormData(form);
        say("…", "");
        const response = await fetch("/v1/config/prompts/" + row.dataset.key + "/recording", {
          method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() }, body,
        });
        let data = null;
        try { data = await response.json(); } catch (e) { data = null; }
        if (response.ok) window.location.reload();
        else say(problemText(data, response.status), "error");
      });
    }
    const remove = row.querySelector("button.remove-recording");
    if (remove) {
      remove.addEventListener("click", async () => {
        try {
          await send("DELETE", "/v1/config/prompts/" + row.dataset.key + "/recording");
          window.location.reload();
        } catch (e) { say(e.message, "error"); }
      });
    }
  }
}

// -- calendar: add and remove the admin's dated entries ----------------------------------
function calendarEntries() {
  const form = document.getElementById("entry-form");
  if (!form) return;
  const out = document.getElementById("entry-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.textContent = "";
    const hours = document.getElementById("entry-hours").value.split(",")
      .map((h) => h.trim()).filter((h) => h);
    const body = {
      date: document.getElementById("entry-date").value,
      kind: document.getElementById("entry-kind").value,
      name: document.getElementById("entry-name").value,
    };
    if (hours.length) body.hours = hours;
    try {
      await send("POST", "/v1/config/calendar/entries", body);
      window.location.reload();
    } catch (e) { for (const p of problems(e)) resultLine(out, p, "error"); }
  });
  for (const row of document.querySelectorAll("tr.entry")) {
    row.querySelector("button.remove-entry").addEventListener("click", async () => {
      try {
        await send("DELETE", "/v1/config/calendar/entries/" + row.dataset.date);
        window.location.reload();
      } catch (e) { resultLine(out, e.message, "error"); }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  signIn(); signOut(); inbox(); intentsPage(); monitor(); flowCheck(); routingEdit(); flowVersions(); prompts();
  calendarEntries();
});
