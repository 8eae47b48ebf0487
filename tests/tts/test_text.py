"""Text checks, sentence cutting and the Hanzi -> pinyin step for espeak-ng's pinyin voice."""

from __future__ import annotations

import pytest

from app.tts.errors import TtsError
from app.tts.text import check_text, check_voice_can_read, prepare, split_segments, to_pinyin


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty_text"),
        ("   \n\t", "empty_text"),
        ("\x01\x02\x7f", "empty_text"),
        ("😀😀", "unspeakable"),
        ("，。！", "unspeakable"),
        ("x" * 5000, "too_long"),
    ],
)
def test_text_that_cannot_be_spoken_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(TtsError) as err:
        check_text(text)
    assert err.value.reason == reason


def test_refusal_messages_say_what_is_wrong() -> None:
    with pytest.raises(TtsError, match="no letters or digits"):
        check_text("🙂")
    with pytest.raises(TtsError, match="empty"):
        check_text("\x00")


def test_control_characters_and_runs_of_space_are_cleaned() -> None:
    assert check_text("  hello\x00\n world ") == "hello world"


def test_sentences_are_cut_after_their_punctuation() -> None:
    assert split_segments("Hello there. Your balance is 3.5 dollars! Bye") == [
        "Hello there.", "Your balance is 3.5 dollars!", "Bye",
    ]
    assert split_segments("您好，欢迎致电。请问有什么可以帮您？谢谢！！") == [
        "您好，欢迎致电。", "请问有什么可以帮您？", "谢谢！！",
    ]


def test_polyphones_are_read_by_phrase_not_by_character() -> None:
    # espeak-ng's own dictionary reads these "yin2 xing2", "zhong4 qing4", "xing2 chang2".
    assert to_pinyin("银行") == "yin2 hang2"
    assert to_pinyin("重庆") == "chong2 qing4"
    assert to_pinyin("行长") == "hang2 zhang3"


def test_pinyin_keeps_digits_and_neutral_tones() -> None:
    assert to_pinyin("您的订单号是12345") == "nin2 de5 ding4 dan1 hao4 shi4 12345"


def test_emoji_are_dropped_not_read_by_name() -> None:
    # espeak-ng's English voice would say "grinning face".
    assert check_text("Thanks 😀 a lot") == "Thanks a lot"


@pytest.mark.parametrize(
    ("text", "voice", "named"),
    [
        ("안녕하세요", "en-us", "HANGUL SYLLABLE AN"),
        ("普通话请按2", "en-us", "CJK UNIFIED IDEOGRAPH-666E"),
        ("ሰላም", "cmn-latn-pinyin", "ETHIOPIC SYLLABLE SA"),
    ],
)
def test_letters_the_voice_cannot_read_are_refused(text: str, voice: str, named: str) -> None:
    with pytest.raises(TtsError, match=f"voice '{voice}' cannot read .* \\({named}\\)") as err:
        check_voice_can_read(text, voice)
    assert err.value.reason == "unspeakable"


def test_voices_read_their_own_scripts() -> None:
    check_voice_can_read("café, naïve résumé", "en-us")
    check_voice_can_read("您好 VIP 会员 ＶＩＰ 123", "cmn-latn-pinyin")


def test_only_the_pinyin_voice_gets_pinyin() -> None:
    assert prepare("您好", "cmn-latn-pinyin") == "nin2 hao3"
    assert prepare("您好", "en-us") == "您好"
    assert prepare("hello", "cmn-latn-pinyin") == "hello"
