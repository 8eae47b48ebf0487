// Hotline softphone: WebRTC call to POST /v1/webrtc/offer, keys over the "dtmf" data channel,
// the conversation from the live events WebSocket /v1/calls/{id}/events. No build step.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    hotline: $("hotline"), manual: $("hotline-manual"), locale: $("locale"),
    call: $("call"), hangup: $("hangup"), status: $("status"), timer: $("timer"),
    log: $("log"), partial: $("partial"), remote: $("remote"), keys: $("keys"),
  };
  const phone = { state: "idle", callId: null, pc: null, dc: null, ws: null, mic: null,
                  startedAt: 0, timerId: null, events: [], retries: 0 };
  window.hotlinePhone = phone; // for tests and the curious

  function setState(state, text) {
    phone.state = state;
    document.body.dataset.state = state;
    ui.status.textContent = text;
    const busy = state === "calling" || state === "connected";
    ui.call.disabled = busy;
    ui.hangup.disabled = !busy;
    ui.hotline.disabled = busy;
    ui.locale.disabled = busy;
  }

  function addLine(kind, who, text, tag) {
    const li = document.createElement("li");
    li.className = kind;
    if (who) {
      const w = document.createElement("span");
      w.className = "who";
      w.textContent = who;
      li.appendChild(w);
    }
    li.appendChild(document.createTextNode(text));
    if (tag) {
      const t = document.createElement("span");
      t.className = "tag";
      t.textContent = tag;
      li.appendChild(t);
    }
    ui.log.appendChild(li);
    ui.log.scrollTop = ui.log.scrollHeight;
    return li;
  }

  async function loadHotlines() {
    try {
      const res = await fetch("/v1/hotlines");
      if (!res.ok) throw new Error("HTTP " + res.status);
      const hotlines = await res.json();
      if (!Array.isArray(hotlines) || hotlines.length === 0) throw new Error("no hotlines");
      for (const h of hotlines) {
        const opt = document.createElement("option");
        opt.value = h.number;
        opt.textContent = h.flow_id ? `${h.number} — ${h.flow_id}` : h.number;
        opt.dataset.locales = (h.locales || []).join(",");
        ui.hotline.appendChild(opt);
      }
      ui.hotline.addEventListener("change", syncLocales);
      ui.locale.addEventListener("change", showSpeechSupport);
      syncLocales();
    } catch (err) {
      // No hotline list: let the user type the number.
      ui.hotline.hidden = true;
      ui.manual.hidden = false;
    }
  }

  const LOCALE_NAMES = { zh: "中文 (zh)", en: "English (en)", ko: "한국어 (ko)",
                         ja: "日本語 (ja)", yue: "粵語 (yue)" };

  // The language list follows the chosen hotline's locales (zh and en when unknown).
  function syncLocales() {
    const opt = ui.hotline.selectedOptions[0];
    const locales = opt && opt.dataset.locales ? opt.dataset.locales.split(",") : ["zh", "en"];
    const current = ui.locale.value;
    ui.locale.textContent = "";
    for (const code of locales) {
      const o = document.createElement("option");
      o.value = code;
      o.textContent = LOCALE_NAMES[code] || code;
      ui.locale.appendChild(o);
    }
    ui.locale.value = locales.includes(current) ? current : locales[0];
    showSpeechSupport();
  }

  // Say up front when the server cannot hear speech in the chosen language (no Vosk model):
  // the call still works with the keypad.
  let asrLocales = null;
  async function showSpeechSupport() {
    if (asrLocales === null) {
      try {
        const res = await fetch("/readyz");
        asrLocales = (await res.json()).asr_locales || [];
      } catch (err) { asrLocales = []; }
    }
    if (phone.state !== "idle") return;
    const ok = asrLocales.includes(ui.locale.value);
    ui.status.textContent = ok ? "Ready" : "Ready (keypad only: no speech model for " +
      ui.locale.value + ")";
  }

  function hotlineNumber() {
    return (ui.hotline.hidden ? ui.manual.value : ui.hotline.value).trim();
  }

  async function iceServers() {
    try {
      const res = await fetch("/v1/webrtc/config");
      if (res.ok) return (await res.json()).ice_servers || [];
    } catch (err) { /* host candidates only */ }
    return [];
  }

  function gatheringComplete(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(done, timeoutMs);
    });
  }

  // A node that is full or draining answers 503 + Retry-After. Behind a load balancer (which
  // health-checks /readyz) the next try reaches a node with room: try again after Retry-After
  // (at most OFFER_RETRY_MAX_S), OFFER_ATTEMPTS times in all.
  const OFFER_ATTEMPTS = 4, OFFER_RETRY_MAX_S = 10;

  async function postOffer(pc, offer) {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch("/v1/webrtc/offer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(offer),
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok) return body;
      const detail = body.detail ? String(body.detail) : "HTTP " + res.status;
      if (res.status !== 503 || attempt >= OFFER_ATTEMPTS) throw new Error(detail);
      const after = Number(res.headers.get("Retry-After"));
      const waitS = Math.min(OFFER_RETRY_MAX_S, after > 0 ? after : 5);
      phone.retries = attempt;
      setState("calling", `All lines busy; trying again in ${waitS} s…`);
      await new Promise((resolve) => setTimeout(resolve, waitS * 1000));
      if (pc !== phone.pc) return {}; // the caller hung up meanwhile
      setState("calling", "Calling again…");
    }
  }

  async function startCall() {
    const number = hotlineNumber();
    if (!number) { setState("error", "Pick or type a hotline number"); return; }
    ui.log.textContent = "";
    ui.partial.textContent = "";
    ui.keys.textContent = "";
    phone.events = [];
    phone.retries = 0;
    setState("calling", "Calling " + number + "…");
    try {
      phone.mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      const pc = new RTCPeerConnection({ iceServers: await iceServers() });
      phone.pc = pc;
      for (const track of phone.mic.getAudioTracks()) pc.addTrack(track, phone.mic);
      phone.dc = pc.createDataChannel("dtmf", { ordered: true });
      pc.ontrack = (ev) => { ui.remote.srcObject = ev.streams[0] || new MediaStream([ev.track]); };
      pc.onconnectionstatechange = () => onConnectionState(pc);
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringComplete(pc, 3000);
      const body = await postOffer(pc, { sdp: pc.localDescription.sdp, type: "offer",
                                         hotline_number: number, locale: ui.locale.value });
      if (pc !== phone.pc) return; // hung up while waiting for a free line
      phone.callId = body.call_id;
      openEvents(body.call_id, body.caller_token);
      await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    } catch (err) {
      cleanup();
      setState("error", "Call failed: " + (err && err.message ? err.message : err));
    }
  }

  function onConnectionState(pc) {
    if (pc !== phone.pc) return;
    const s = pc.connectionState;
    if (s === "connected") {
      setState("connected", "Connected");
      phone.startedAt = Date.now();
      phone.timerId = setInterval(tick, 500);
    } else if (s === "failed" || s === "closed") {
      endCall("Call ended (" + s + ")");
    }
  }

  function tick() {
    const s = Math.floor((Date.now() - phone.startedAt) / 1000);
    ui.timer.textContent = String(Math.floor(s / 60)).padStart(2, "0") + ":" +
      String(s % 60).padStart(2, "0");
  }

  function openEvents(callId, callerToken) {
    // the caller's pass (from the answer) lets this page follow its own call, nothing else
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const pass = encodeURIComponent(callerToken || "");
    const ws = new WebSocket(
      `${proto}//${location.host}/v1/calls/${callId}/events?caller_token=${pass}`);
    phone.ws = ws;
    ws.onmessage = (msg) => {
      let ev;
      try { ev = JSON.parse(msg.data); } catch (err) { return; }
      phone.events.push(ev);
      showEvent(ev);
    };
    ws.onerror = () => addLine("system", "", "Live events unavailable");
  }

  function showEvent(ev) {
    switch (ev.type) {
      case "call_started": addLine("system", "", "Call started"); break;
      case "prompt_played": addLine("bot", "Bot", ev.text || "(audio)"); break;
      case "transcript":
        if (ev.is_final) {
          ui.partial.textContent = "";
          if (ev.text) addLine("caller", "Bot heard", ev.text);
        } else {
          ui.partial.textContent = ev.text ? "hearing: " + ev.text : "";
        }
        break;
      case "intent":
        addLine("system", "", "Intent: " + (ev.intent || "not understood"),
                typeof ev.confidence === "number" ? ev.confidence.toFixed(2) : "");
        break;
      case "dtmf": addLine("caller", "Key", ev.digit); break;
      case "node_entered": addLine("system", "", "→ " + ev.node); break;
      case "transfer":
        addLine("system", "", "Transfer to " + ev.queue + (ev.reason ? " (" + ev.reason + ")" : ""));
        break;
      case "call_ended":
        addLine("system", "", "Call ended: " + (ev.outcome || ""));
        endCall("Call ended" + (ev.outcome ? ": " + ev.outcome : ""));
        break;
      default: break;
    }
  }

  function sendDigit(digit) {
    const btn = document.querySelector(`.keypad button[data-digit="${CSS.escape(digit)}"]`);
    if (btn) { btn.classList.add("pressed"); setTimeout(() => btn.classList.remove("pressed"), 150); }
    if (!phone.dc || phone.dc.readyState !== "open") return;
    phone.dc.send(JSON.stringify({ digit: digit }));
    ui.keys.textContent = (ui.keys.textContent + digit).slice(-16);
  }

  function cleanup() {
    if (phone.timerId) clearInterval(phone.timerId);
    phone.timerId = null;
    if (phone.pc) phone.pc.close();
    phone.pc = null;
    phone.dc = null;
    if (phone.mic) phone.mic.getTracks().forEach((t) => t.stop());
    phone.mic = null;
    ui.remote.srcObject = null;
  }

  function endCall(text) {
    if (phone.state !== "calling" && phone.state !== "connected") return;
    cleanup();
    const ws = phone.ws;
    phone.ws = null;
    if (ws) setTimeout(() => ws.close(), 2000); // let the last events (call_ended) arrive
    setState("idle", text);
  }

  ui.call.addEventListener("click", startCall);
  ui.hangup.addEventListener("click", () => endCall("You hung up"));
  for (const btn of document.querySelectorAll(".keypad button")) {
    btn.addEventListener("click", () => sendDigit(btn.dataset.digit));
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
    if (/^[0-9*#]$/.test(ev.key)) sendDigit(ev.key);
  });
  loadHotlines();
})();
