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
      try { await send("POST", "/v1/inbox/retrain", { reason: "labels from the inbox" }); } catch (e) {
        document.getElementById("training").textContent = e.message;
      }
      pollTraining();
    });
    pollTraining();
  }
}

async function pollTraining() {
  const box = document.getElementById("training");
  const retrain = document.getElementById("retrain");
  try {
    const job = await send("GET", "/v1/inbox/retrain");
    box.textContent = job.summary;
    box.dataset.state = job.state;
    if (job.state === "running") { setTimeout(pollTraining, 1000); return; }
  } catch (e) { box.textContent = e.message; }
  if (retrain) retrain.disabled = false;
}

// -- live monitor ---------------------------------------------------------------------
const calls = new Map();

function liveRow(callId) {
  let row = calls.get(callId);
  if (!row) {
    const list = document.getElementById("live-calls");
    const el = document.createElement("div");
    el.className = "live-call";
    el.dataset.call = callId;
    el.innerHTML = '<div><a></a> <span class="node"></span> <span class="intent"></span> <span class="sentiment"></span></div><ol class="turns"></ol>';
    el.querySelector("a").textContent = callId;
    el.querySelector("a").href = "/console/calls/" + encodeURIComponent(callId);
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
  if (event.type === "call_ended") {
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
    }
    document.getElementById("active-count").textContent = String(calls.size);
    drawAlerts();
  } catch (e) { /* shown on the next refresh */ }
  setTimeout(refreshQueues, 2000);
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

document.addEventListener("DOMContentLoaded", () => {
  signIn(); signOut(); inbox(); monitor(); flowCheck(); routingEdit(); flowVersions();
});
