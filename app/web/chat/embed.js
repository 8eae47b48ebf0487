// Hotline chat on a company's own site: a launcher button that opens the chat widget (/chat)
// in an iframe served by the Hotline server. Put on the page:
//   <script src="https://HOTLINE-SERVER/static/chat/embed.js" data-hotline="4008001234" async></script>
// Optional: data-lang="zh|en" (default: the browser's), data-label="..." (the button text),
// data-position="left|right". The Hotline server must list the site's origin in
// chat_allowed_origins (it is sent as the widget page's frame-ancestors).
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.hotlineChatEmbed) return;
  var origin = new URL(script.src, location.href).origin;
  var data = script.dataset;
  var lang = String(data.lang || navigator.language || "en").toLowerCase().indexOf("zh") === 0
    ? "zh" : "en";
  var text = data.label || (lang === "zh" ? "在线客服" : "Chat with us");
  var side = data.position === "left" ? "left" : "right";
  var frame = null;
  var button = document.createElement("button");

  function css(el, rules) {
    for (var k in rules) el.style.setProperty(k, rules[k]);
  }

  function open() {
    if (!frame) {
      var query = new URLSearchParams({ lang: lang, embed: "1" });
      if (data.hotline) query.set("hotline", data.hotline);
      frame = document.createElement("iframe");
      frame.id = "hotline-chat-frame";
      frame.title = text;
      frame.src = origin + "/chat?" + query.toString();
      css(frame, {
        position: "fixed", bottom: "76px", width: "min(380px, calc(100vw - 32px))",
        height: "min(560px, calc(100vh - 100px))", border: "1px solid #dfe4ea",
        "border-radius": "12px", background: "#fff", "box-shadow": "0 8px 28px rgba(0,0,0,.18)",
        "z-index": "2147483000",
      });
      frame.style.setProperty(side, "16px");
      document.body.appendChild(frame);
    } else {
      frame.hidden = !frame.hidden;
    }
    button.setAttribute("aria-expanded", String(!frame.hidden));
  }

  function mount() {
    button.type = "button";
    button.id = "hotline-chat-launcher";
    button.textContent = text;
    button.setAttribute("aria-expanded", "false");
    css(button, {
      position: "fixed", bottom: "16px", padding: "12px 18px", border: "0",
      "border-radius": "24px", background: "#2f6fde", color: "#fff", cursor: "pointer",
      font: "600 15px system-ui, sans-serif", "box-shadow": "0 4px 14px rgba(0,0,0,.2)",
      "z-index": "2147483000",
    });
    button.style.setProperty(side, "16px");
    button.addEventListener("click", open);
    document.body.appendChild(button);
  }

  window.hotlineChatEmbed = { open: open, frame: function () { return frame; } };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
