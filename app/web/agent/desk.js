// Hotline agent desk: sign in (/v1/auth/login), state, offers with the handoff packet over the
// desk WebSocket (/v1/desk/ws), answer with the microphone (WebRTC), live transcript, wrap-up.
// No build step.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = window.deskI18n.t;
  const desk = { csrf: null, me: null, ws: null, offer: null, callId: null, pc: null,
                 mic: null, held: false, muted: false, dispositions: {}, messages: [] };
  window.hotlineDesk = desk; // for tests and the curious

  function say(text) { $("message").textContent = text || ""; }

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (desk.csrf && method !== "GET") headers["X-CSRF-Token"] = desk.csrf;
    const res = await fetch(path, { method, headers, credentials: "same-origin",
                                    body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      throw new Error(`${res.status}: ${detail}`);
    }
    return data;
  }

  // -- sign in -----------------------------------------------------------------------------
  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const me = await api("POST", "/v1/auth/login",
                           { name: $("user").value.trim(), password: $("password").value });
      desk.csrf = me.csrf_token;
      await start();
    } catch (err) { $("login-error").textContent = t("badLogin") + " (" + err.message + ")"; }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/v1/desk/status", { status: "offline" }); } catch (err) { /* */ }
    try { await api("POST", "/v1/auth/logout"); } catch (err) { /* */ }
    if (desk.ws) desk.ws.close();
    location.reload();
  });

  async function start() {
    let me;
    try { me = await api("GET", "/v1/desk/me"); } catch (err) {
      if (err.message.startsWith("403")) $("login-error").textContent = t("notAgent");
      return false;
    }
    desk.me = me;
    desk.csrf = desk.csrf || me.csrf_token;
    desk.dispositions = (me.hotlines[0] || {}).dispositions || {};
    $("who").textContent = `${me.name} (${me.agent_id})`;
    document.body.dataset.view = "desk";
    showState(me.presence.state);
    connect();
    loadToday();
    return true;
  }

  function showState(state) {
    document.body.dataset.agentState = state;
    $("state").textContent = t("state_" + state);
  }

  for (const b of document.querySelectorAll("[data-status]")) {
    b.addEventListener("click", async () => {
      const status = b.dataset.status;
      try {
        const p = await api("POST", "/v1/desk/status",
                            status === "away" ? { status, reason: "break" } : { status });
        showState(p.state);
      } catch (err) { say(err.message); }
    });
  }

  // -- the desk's live feed ------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/v1/desk/ws`);
    desk.ws = ws;
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = () => { if (document.body.dataset.view === "desk") setTimeout(connect, 2000); };
    setInterval(() => { if (ws.readyState === 1) ws.send("ping"); }, 20000);
  }

  function handle(m) {
    desk.messages.push(m);
    if (m.type === "hello") { for (const o of m.offers || []) handle(o); return; }
    if (m.type === "agent_state") {
      showState(m.state);
      if (m.forced_by) say(t("forcedBy") + m.forced_by);
    }
    else if (m.type === "offer") ring(m);
    else if (m.type === "offer_ended") {
      if (desk.offer && desk.offer.offer_id === m.offer_id && m.state !== "accepted") {
        desk.offer = null; $("card").hidden = true; stopCountdown();
      }
    } else if (m.type === "connected") onCall(m);
    else if (m.type === "talk_ended" && m.call_id === desk.callId) callOver();
    else if (m.type === "call_event" && m.event.call_id === desk.callId) live(m.event);
  }

  let countdown = null;
  function stopCountdown() { clearInterval(countdown); $("countdown").textContent = ""; }

  function ring(m) {
    desk.offer = m;
    desk.callId = m.call_id;
    showPacket(m.packet);
    desk.chat = m.packet.channel === "chat";  // answered by typing: no microphone
    $("card-title").textContent = t(desk.chat ? "incomingChat" : "incoming");
    $("ring-actions").hidden = false;
    $("call-actions").hidden = true;
    $("live").textContent = "";
    $("card").hidden = false;
    const until = Date.now() + m.ring_timeout_s * 1000;
    stopCountdown();
    countdown = setInterval(() => {
      $("countdown").textContent = Math.max(0, Math.round((until - Date.now()) / 1000)) + " s";
    }, 250);
  }

  function showPacket(p) {
    const facts = $("facts");
    facts.textContent = "";
    const conf = p.confidence == null ? "" : ` (${Math.round(p.confidence * 100)}%)`;
    const senti = p.sentiment == null ? "—" : `${p.sentiment_label} ${p.sentiment.toFixed(2)}, ${p.sentiment_trend}`;
    const prev = (p.previous_calls || []).map((c) => `${c.started_at.slice(0, 10)} ${c.outcome || ""} ${c.disposition || ""}`).join("; ");
    const rows = [["caller", p.caller_number], ["region", p.caller_region || "—"],
                  ["hotline", p.hotline_number], ["queue", p.queue], ["reason", p.reason],
                  ["intentConf", (p.intent || "—") + conf], ["sentiment", senti],
                  ["slots", Object.entries(p.slots || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"],
                  ["path", (p.flow_path || []).join(" → ")], ["previous", prev || "—"]];
    for (const [key, value] of rows) {
      const dt = document.createElement("dt"); dt.textContent = t(key);
      const dd = document.createElement("dd"); dd.textContent = value; dd.dataset.fact = key;
      facts.append(dt, dd);
    }
    const list = $("bot-transcript");
    list.textContent = "";
    for (const turn of p.transcript || []) addTurn(list, turn.speaker, turn.text);
  }

  function addTurn(list, speaker, text, extra) {
    const li = document.createElement("li");
    li.className = speaker;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = t(speaker);
    li.append(who, document.createTextNode(text));
    if (extra) { const s = document.createElement("span"); s.className = extra.cls; s.textContent = " " + extra.text; li.append(s); }
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    return li;
  }

  function live(e) {
    if (e.type === "transcript" && e.is_final) addTurn($("live"), e.speaker || "caller", e.text);
    else if (e.type === "sentiment") {
      const last = $("live").lastElementChild;
      if (last) { const s = document.createElement("span"); s.className = e.score < 0 ? "neg" : "pos"; s.textContent = ` [${e.label} ${e.score.toFixed(2)}]`; last.append(s); }
    } else if (e.type === "call_ended" || (e.type === "agent_disconnected" && e.agent_id === desk.me.agent_id)) {
      callOver();
    }
  }

  // -- answering with the microphone -------------------------------------------------------------
  function gatheringComplete(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, timeoutMs);
    });
  }

  $("answer").addEventListener("click", async () => {
    const offer = desk.offer;
    if (!offer) return;
    if (desk.chat) {
      try { await api("POST", `/v1/desk/offers/${offer.offer_id}/answer`, {}); } catch (err) { say(err.message); }
      return;
    }
    try {
      desk.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) { say(t("noMic") + err.message); return; }
    const cfg = await fetch("/v1/webrtc/config").then((r) => r.json()).catch(() => ({}));
    const pc = new RTCPeerConnection({ iceServers: cfg.ice_servers || [] });
    desk.pc = pc;
    for (const track of desk.mic.getTracks()) pc.addTrack(track, desk.mic);
    pc.ontrack = (ev) => { $("remote").srcObject = ev.streams[0] || new MediaStream([ev.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, 3000);
    try {
      const res = await api("POST", `/v1/desk/offers/${offer.offer_id}/answer`,
                            { sdp: pc.localDescription.sdp });
      await pc.setRemoteDescription({ type: "answer", sdp: res.sdp });
    } catch (err) { say(err.message); hangupMedia(); }
  });

  $("decline").addEventListener("click", async () => {
    if (!desk.offer) return;
    try { await api("POST", `/v1/desk/offers/${desk.offer.offer_id}/decline`); } catch (err) { say(err.message); }
    $("card").hidden = true;
    desk.offer = null;
  });

  function onCall(m) {
    desk.callId = m.call_id;
    desk.held = desk.muted = false;
    stopCountdown();
    desk.chat = m.channel === "chat";
    $("card-title").textContent = t(desk.chat ? "onchat" : "oncall");
    $("ring-actions").hidden = true;
    $("call-actions").hidden = false;
    $("hold").hidden = $("mute").hidden = desk.chat;
    $("chat-form").hidden = !desk.chat;
    if (desk.chat) $("chat-text").focus();
  }

  $("chat-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("chat-text").value.trim();
    if (!text || !desk.callId) return;
    try {
      await api("POST", `/v1/desk/calls/${desk.callId}/actions/message`, { text });
      $("chat-text").value = "";
    } catch (err) { say(err.message); }
  });

  async function act(action) {
    try { return await api("POST", `/v1/desk/calls/${desk.callId}/actions/${action}`, {}); } catch (err) { say(err.message); return null; }
  }
  $("hold").addEventListener("click", async () => {
    if (await act(desk.held ? "unhold" : "hold")) { desk.held = !desk.held; $("hold").textContent = t(desk.held ? "unhold" : "hold"); }
  });
  $("mute").addEventListener("click", async () => {
    if (await act(desk.muted ? "unmute" : "mute")) { desk.muted = !desk.muted; $("mute").textContent = t(desk.muted ? "unmute" : "mute"); }
  });
  $("hangup").addEventListener("click", () => act("hangup"));

  function hangupMedia() {
    if (desk.pc) { desk.pc.close(); desk.pc = null; }
    if (desk.mic) { for (const tr of desk.mic.getTracks()) tr.stop(); desk.mic = null; }
  }

  // -- wrap-up -------------------------------------------------------------------------------------
  async function callOver() {
    if (!desk.offer) return;
    desk.offer = null;
    hangupMedia();
    $("call-actions").hidden = true;
    $("chat-form").hidden = true;
    const select = $("disposition");
    select.textContent = "";
    for (const [code, label] of Object.entries(desk.dispositions)) {
      const o = document.createElement("option"); o.value = code; o.textContent = label; select.appendChild(o);
    }
    $("wrapup").hidden = false;
    try {
      const draft = await api("GET", `/v1/desk/calls/${desk.callId}/draft`);
      desk.draft = draft;
      if (draft.disposition in desk.dispositions) select.value = draft.disposition;
      $("summary").textContent = draft.summary;
      $("bot-should").checked = draft.bot_should_handle;
      $("intent").value = draft.intent || "";
    } catch (err) { desk.draft = {}; }
  }

  $("wrapup").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", `/v1/desk/calls/${desk.callId}/wrapup`, {
        disposition: $("disposition").value, notes: $("notes").value,
        bot_should_handle: $("bot-should").checked, intent: $("intent").value || null,
        draft: desk.draft || {} });
      say(t("saved"));
      $("wrapup").hidden = true;
      $("card").hidden = true;
      $("notes").value = "";
      loadToday();
    } catch (err) { say(err.message); }
  });

  async function loadToday() {
    try {
      const calls = await api("GET", "/v1/desk/today");
      const body = $("today").tBodies[0];
      body.textContent = "";
      for (const c of calls) {
        const tr = body.insertRow();
        for (const v of [c.started_at.slice(11, 19), c.caller_number, c.disposition || "", c.talk_s == null ? "" : Math.round(c.talk_s) + " s"]) tr.insertCell().textContent = v;
      }
    } catch (err) { /* the list is a convenience */ }
  }

  start(); // already signed in (session cookie)?
})();
