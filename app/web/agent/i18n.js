// Desk labels in Chinese and English; the browser's language picks (zh* -> Chinese).
"use strict";
window.deskI18n = (function () {
  const en = {
    title: "Agent desk", signin: "Sign in", user: "User", password: "Password",
    available: "Available", away: "Away", offline: "Offline", logout: "Sign out",
    incoming: "Incoming call", oncall: "On call", botTalk: "Conversation with the bot",
    answer: "Answer", decline: "Decline", hold: "Hold", unhold: "Resume", mute: "Mute",
    unmute: "Unmute", hangup: "Hang up", live: "Live transcript", wrapup: "Wrap-up",
    disposition: "Disposition", notes: "Notes", botShould: "The bot should have handled this",
    intent: "Intent", save: "Save", today: "Today's calls", caller: "Caller",
    region: "Region", hotline: "Hotline", queue: "Queue", reason: "Reason",
    intentConf: "Intent", slots: "Details", sentiment: "Sentiment", path: "Flow path",
    previous: "Earlier calls", bot: "Bot", agent: "Agent", saved: "Wrap-up saved",
    state_offline: "offline", state_available: "available", state_ringing: "ringing",
    state_on_call: "on call", state_wrap_up: "wrap-up", state_away: "away",
    incomingChat: "Incoming chat", onchat: "In a chat", send: "Send", customer: "Customer",
    badLogin: "Sign-in failed", noMic: "No microphone: ", notAgent: "This user is not an agent",
    forcedBy: "State set by supervisor ",
  };
  const zh = {
    title: "坐席工作台", signin: "登录", user: "用户名", password: "密码",
    available: "示闲", away: "小休", offline: "离线", logout: "退出",
    incoming: "来电", oncall: "通话中", botTalk: "机器人对话记录",
    answer: "接听", decline: "拒接", hold: "保持", unhold: "恢复", mute: "静音",
    unmute: "取消静音", hangup: "挂断", live: "实时转写", wrapup: "话后处理",
    disposition: "处理结果", notes: "备注", botShould: "这通电话本应由机器人处理",
    intent: "意图", save: "保存", today: "今日通话", caller: "来电号码",
    region: "归属地", hotline: "热线", queue: "队列", reason: "转人工原因",
    intentConf: "意图", slots: "已收集信息", sentiment: "情绪", path: "流程路径",
    previous: "历史来电", bot: "机器人", agent: "坐席", saved: "已保存",
    state_offline: "离线", state_available: "空闲", state_ringing: "振铃",
    state_on_call: "通话中", state_wrap_up: "话后处理", state_away: "小休",
    incomingChat: "在线咨询", onchat: "对话中", send: "发送", customer: "访客",
    badLogin: "登录失败", noMic: "无法使用麦克风：", notAgent: "该用户不是坐席",
    forcedBy: "状态已由班长设置：",
  };
  const lang = (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  const labels = lang === "zh" ? zh : en;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = labels[el.dataset.i18n] || el.textContent;
  }
  return { lang, t: (key) => labels[key] || key };
})();
