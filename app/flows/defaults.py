"""Built-in prompt texts for the global handlers, per locale; a flow may override each.

A flow in a locale missing here must give its own prompt for every handler (the loader says
which).
"""

from __future__ import annotations

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "no_input": {
        "zh": "抱歉，我没有听到您的声音。",
        "en": "Sorry, I didn't hear anything.",
        "ko": "죄송합니다, 잘 듣지 못했습니다.",
    },
    "no_match": {
        "zh": "抱歉，我没有听懂。",
        "en": "Sorry, I didn't understand.",
        "ko": "죄송합니다, 이해하지 못했습니다.",
    },
    "agent_confirm": {
        "zh": "您需要转接人工客服吗？是请按1，否请按2。",
        "en": "Would you like to speak to an agent? Press 1 for yes, 2 for no.",
        "ko": "상담원을 연결해 드릴까요? 네 또는 아니요로 말씀해 주세요.",
    },
    "agent_transfer": {
        "zh": "正在为您转接人工客服，请稍候。",
        "en": "Connecting you to an agent, please hold.",
        "ko": "상담원에게 연결해 드리겠습니다.",
    },
    "escalate": {
        "zh": "我们将为您转接人工客服。",
        "en": "Let me get you to an agent.",
        "ko": "상담원에게 연결해 드리겠습니다.",
    },
    "no_agent": {
        "zh": "抱歉，目前没有空闲的客服，请稍后再拨。再见。",
        "en": "Sorry, all our agents are busy. Please call again later. Goodbye.",
        "ko": "죄송합니다, 지금은 상담원이 모두 통화 중입니다. 나중에 다시 걸어 주세요.",
    },
    "goodbye": {
        "zh": "感谢您的来电，再见。",
        "en": "Thank you for calling. Goodbye.",
        "ko": "전화해 주셔서 감사합니다. 안녕히 계세요.",
    },
    "confirm": {
        "zh": "您说的是{value_spoken}，对吗？正确请按1，重新输入请按2。",
        "en": "I heard {value_spoken}, is that right? Press 1 for yes, 2 for no.",
        "ko": "{value_spoken} 맞습니까? 네 또는 아니요로 말씀해 주세요.",
    },
    "invalid": {
        "zh": "输入有误，请再试一次。",
        "en": "That doesn't look right, please try again.",
        "ko": "올바르지 않습니다. 다시 시도해 주세요.",
    },
    "error": {
        "zh": "抱歉，系统出现问题，正在为您转接人工客服。",
        "en": "Sorry, something went wrong. Let me get you to an agent.",
        "ko": "죄송합니다, 문제가 발생했습니다. 상담원에게 연결해 드리겠습니다.",
    },
    # said by the call itself (not by a flow node): failures and the queue
    "apology": {
        "zh": "抱歉，系统出现问题，请稍后再拨。",
        "en": "Sorry, something went wrong on our side. Please call again later.",
        "ko": "죄송합니다, 시스템에 문제가 발생했습니다. 나중에 다시 걸어 주세요.",
    },
    "queue_position": {
        "zh": "您前面还有{ahead}位客户，您是第{n}位，请稍候。",
        "en": "You are number {n} in the queue. Please hold.",
        "ko": "대기 순서는 {n}번째입니다. 잠시만 기다려 주세요.",
    },
    "queue_wait": {
        "zh": "预计等待时间约{minutes}分钟。",
        "en": "The estimated wait is about {minutes} minutes.",
        "ko": "예상 대기 시간은 약 {minutes}분입니다.",
    },
    "callback_offer": {
        "zh": "如需保留您的排队位置并由客服回电，请按1；继续等待请不要挂机。",
        "en": "To keep your place and have an agent call you back, press 1. "
              "Or stay on the line.",
        "ko": "순서를 유지하고 상담원의 전화를 받으시려면 1번을 누르세요.",
    },
    "callback_kept": {
        "zh": "好的，我们会保留您的排队位置，客服将致电{number}。再见。",
        "en": "Thank you. We'll keep your place and an agent will call {number}. Goodbye.",
        "ko": "감사합니다. 순서를 유지하고 {number}로 전화드리겠습니다.",
    },
    "agent_lost": {
        "zh": "抱歉，与客服的通话中断了，正在为您优先转接。",
        "en": "Sorry, we lost the agent's line. Connecting you again, you're first in line.",
        "ko": "죄송합니다, 상담원 연결이 끊어졌습니다. 다시 연결해 드리겠습니다.",
    },
    "transfer_wait": {
        "zh": "正在为您转接，请稍候。",
        "en": "Transferring your call, please hold.",
        "ko": "연결해 드리겠습니다. 잠시만 기다려 주세요.",
    },
    "speech_unavailable": {
        "zh": "抱歉，语音识别暂时不可用，请使用电话按键。",
        "en": "Sorry, speech recognition is not available right now. Please use your keypad.",
        "ko": "죄송합니다, 지금은 음성 인식을 사용할 수 없습니다. 버튼을 눌러 주세요.",
    },
    "recording_paused": {
        "zh": "为保护您的信息，录音已暂停。",
        "en": "To protect your details, recording is paused.",
        "ko": "고객님의 정보를 보호하기 위해 녹음을 일시 중지합니다.",
    },
}


def default_text(key: str, locale: str) -> str | None:
    return DEFAULT_TEXTS.get(key, {}).get(locale)


def locales_with_defaults() -> set[str]:
    sets = [set(texts) for texts in DEFAULT_TEXTS.values()]
    return set.intersection(*sets)
