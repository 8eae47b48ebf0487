// Hotline chat widget: POST /v1/chat/sessions, then the chat's WebSocket (app/chat/protocol.py).
// Everything a visitor or the bot wrote is shown with textContent: text, never HTML.
// Query: ?hotline=NUMBER (default: the first hotline), &lang=zh|en (default: the browser's),
// &embed=1 (inside the embed.js iframe). No build step, no CDN.
"use strict";

(function () {
  const TEXT = {
    zh: {
      title: "在线客服", send: "发送", end: "结束对话", placeholder: "请输入您的问题…",
      digits: "请输入数字", phone: "请输入电话号码", date: "请输入日期",
      typing: "正在输入…", connecting: "正在连接…", reconnecting: "连接中断，正在重新连接…",
      ended: "对话已结束", failed: "无法开始对话：", restart: "开始新对话",
      tooLong: "消息太长（最多 {n} 个字）", you: "您", bot: "客服",
      joined: "人工客服 {name} 为您服务", left: "人工客服 {name} 已结束对话",
    },
    en: {
      title: "Chat with us", send: "Send", end: "End chat", placeholder: "Type your message…",
      digits: "Type the number", phone: "Type a phone number", date: "Type a date",
      typing: "Typing…", connecting: "Connecting…", reconnecting: "Connection lost, reconnecting…",
      ended: "The chat has ended", failed: "Could not start the chat: ", restart: "New chat",
      tooLong: "Message too long (at most {n} characters)", you: "You", bot: "Assistant",
      joined: "{name} (agent) joined the chat", left: "{name} (agent) left the chat",
    },
  };
  const params = new URLSearchParams(location.search);
  const lang = String(params.get("lang") || navigator.language || "en")
    .toLowerCase().startsWith("zh") ? "zh" : "en";
  const t = TEXT[lang];
  const $ = (id) => document.getElementById(id);
  const ui = {
    title: $("title"), end: $("end"), status: $("status"), log: $("log"), typing: $("typing"),
    form: $("composer"), text: $("text"), send: $("send"), hint: $("hint"),
    restart: $("restart"),
  };
  const chat = {
    state: "idle", lang, sessionId: null, hotline: null, messages: [], errors: [], ask: null,
    outcome: null, maxChars: 1000, ws: null, retries: 0,
  };
  window.hotlineChat = chat; // for tests and the curious

  function label() {
    document.documentElement.lang = lang;
    document.title = t.title;
    ui.title.textContent = t.title;
    ui.end.textContent = t.end;
    ui.send.textContent = t.send;
    ui.text.placeholder = t.placeholder;
    ui.typing.textContent = t.typing;
    ui.restart.textContent = t.restart;
    if (params.get("embed") === "1") document.body.classList.add("embed");
  }

  function setState(state, status) {
    chat.state = state;
    document.body.dataset.state = state;
    ui.status.textContent = status || "";
    const open = state === "open";
    ui.text.disabled = !open;
    ui.send.disabled = !open;
    ui.end.disabled = !open;
    ui.restart.hidden = state !== "ended" && state !== "error";
  }

  function line(kind, text) {
    const li = document.createElement("li");
    li.className = kind;
    li.textContent = text;
    ui.log.appendChild(li);
    ui.log.scrollTop = ui.log.scrollHeight;
    return li;
  }

  function storeKey() { return "hotline-chat:" + chat.hotline; }
  function saved() {
    try { return JSON.parse(sessionStorage.getItem(storeKey()) || "null"); }
    catch (err) { return null; }
  }
  function forget() { try { sessionStorage.removeItem(storeKey()); } catch (err) { /* */ } }

  async function firstHotline() {
    const res = await fetch("/v1/hotlines");
    if (!res.ok) throw new Error("HTTP " + res.status);
    const list = await res.json();
    if (!Array.isArray(list) || !list.length) throw new Error("no hotline");
    return String(list[0].number);
  }

  function problem(body, status) {
    const detail = body && body.detail;
    if (Array.isArray(detail) && detail.length) {
      const d = detail[0];
      return (Array.isArray(d.loc) ? d.loc[d.loc.length - 1] + ": " : "") + (d.msg || "");
    }
    return typeof detail === "string" ? detail : "HTTP " + status;
  }

  async function create(locale) {
    const res = await fetch("/v1/chat/sessions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hotline_number: chat.hotline, locale }),
    });
    const body = await res.json().catch(() => null);
    if (res.status === 422 && locale && /locale/.test(problem(body, 422))) return create(null);
    if (!res.ok) throw new Error(problem(body, res.status));
    return body;
  }

  async function start() {
    label();
    setState("connecting", t.connecting);
    try {
      chat.hotline = params.get("hotline") || await firstHotline();
      const session = saved() || await create(lang);
      try { sessionStorage.setItem(storeKey(), JSON.stringify(session)); } catch (err) { /* */ }
      connect(session);
    } catch (err) {
      setState("error", t.failed + err.message);
    }
  }

  function connect(session) {
    chat.sessionId = session.session_id;
    chat.maxChars = session.message_max_chars || chat.maxChars;
    ui.text.maxLength = chat.maxChars;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + session.websocket, session.protocols);
    chat.ws = ws;
    ws.onopen = () => {
      chat.retries = 0;
      ui.log.textContent = ""; // the server sends the whole chat again, from seq 1
      chat.messages = [];
      setState("open", "");
    };
    ws.onmessage = (ev) => {
      let msg = null;
      try { msg = JSON.parse(ev.data); } catch (err) { return; }
      handle(msg);
    };
    ws.onclose = (ev) => {
      if (chat.ws !== ws) return;
      chat.ws = null;
      if (chat.state === "ended") return;
      if (ev.code === 4404 || ev.code === 4401 || ev.code === 4403) {
        forget();
        setState("ended", t.ended);
        return;
      }
      if (chat.retries < 6) {
        chat.retries += 1;
        setState("connecting", t.reconnecting);
        setTimeout(() => connect(session), Math.min(8000, 500 * 2 ** chat.retries));
      } else {
        setState("error", t.reconnecting);
      }
    };
  }

  function handle(msg) {
    if (msg.type === "message") {
      const who = msg.from === "user" ? "user" : msg.from === "agent" ? "agent" : "bot";
      chat.messages.push({ from: who, text: String(msg.text), button: msg.button || null });
      line(who, String(msg.text));
    } else if (msg.type === "ask") {
      showAsk(msg);
    } else if (msg.type === "typing") {
      ui.typing.hidden = !msg.on;
    } else if (msg.type === "agent") {  // an agent joined or left (their name as text)
      const said = (msg.event === "joined" ? t.joined : t.left).replace("{name}", String(msg.name || ""));
      chat.messages.push({ from: "agent", text: said, button: null });
      line("notice", said);
    } else if (msg.type === "queue") {
      chat.messages.push({ from: "queue", text: String(msg.text || ""), button: null });
      if (msg.text) line("notice", String(msg.text));
    } else if (msg.type === "end") {
      chat.outcome = msg.outcome;
      ui.typing.hidden = true;
      closeChoices();
      forget();
      line("notice", t.ended);
      setState("ended", t.ended);
      if (chat.ws) chat.ws.close(1000);
    } else if (msg.type === "error") {
      chat.errors.push(msg);
      line("error", "⚠ " + String(msg.field) + ": " + String(msg.reason));
    }
  }

  function closeChoices() {
    for (const b of ui.log.querySelectorAll(".choices button")) b.disabled = true;
  }

  function showAsk(msg) {
    closeChoices();
    chat.ask = msg;
    ui.typing.hidden = true;
    const input = msg.input || { kind: "text" };
    ui.text.inputMode = input.kind === "digits" ? "numeric" : input.kind === "phone" ? "tel" : "text";
    ui.text.placeholder = t[input.kind] || t.placeholder;
    ui.text.rows = input.multiline ? 3 : 1;
    const buttons = Array.isArray(msg.buttons) ? msg.buttons : [];
    if (!buttons.length) return;
    const li = line("choices", "");
    for (const b of buttons) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = String(b.label);
      button.dataset.value = String(b.value);
      button.addEventListener("click", () => {
        closeChoices();
        send({ type: "button", value: String(b.value), ask: msg.seq });
      });
      li.appendChild(button);
    }
  }

  function send(message) {
    if (chat.ws && chat.ws.readyState === WebSocket.OPEN) chat.ws.send(JSON.stringify(message));
  }

  ui.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = ui.text.value.trim();
    if (!text) return;
    if (text.length > chat.maxChars) {
      ui.hint.textContent = t.tooLong.replace("{n}", String(chat.maxChars));
      return;
    }
    ui.hint.textContent = "";
    send({ type: "text", text });
    ui.text.value = "";
  });
  ui.text.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      ui.form.requestSubmit();
    }
  });
  ui.end.addEventListener("click", () => send({ type: "end" }));
  ui.restart.addEventListener("click", () => {
    forget();
    ui.log.textContent = "";
    chat.messages = [];
    chat.outcome = null;
    start();
  });

  start();
})();
