"""What the console pages share: the Jinja2 templates, zh/en labels chosen by the browser's
language, and bar charts drawn as SVG on the server (no chart library, no CDN)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from app.auth import Principal
from app.flows.coverage import coverage_warning

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "web" / "console"
NO_STORE = {"Cache-Control": "no-store"}

LABELS: dict[str, tuple[str, str]] = {
    "console": ("Hotline console", "热线管理后台"),
    "reports": ("Reports", "报表"),
    "calls": ("Call search", "通话查询"),
    "monitor": ("Live monitor", "实时监控"),
    "inbox": ("Intent inbox", "意图改进"),
    "intents": ("Intents", "意图"),
    "examples": ("Examples", "例句"),
    "add_example": ("Add an example", "添加例句"),
    "edit": ("Edit", "修改"),
    "delete": ("Remove", "删除"),
    "shipped_hint": ("Examples without buttons come from the shipped intent files: they are "
                     "edited in those files.",
                     "没有按钮的例句来自随附的意图文件，需在文件中修改。"),
    "train": ("Train and test", "训练并测试"),
    "evaluation": ("Evaluation on the held-out files", "留出测试集评估"),
    "precision": ("Precision", "精确率"),
    "recall": ("Recall", "召回率"),
    "f1": ("F1", "F1"),
    "support": ("Support", "样本数"),
    "confusion": ("Confusion matrix (rows: expected, columns: predicted)",
                  "混淆矩阵（行：期望，列：预测）"),
    "top_confusions": ("Most frequent confusions", "最常见的混淆"),
    "model_versions": ("Model versions", "模型版本"),
    "version": ("Version", "版本"),
    "trained_at": ("Trained", "训练时间"),
    "data_hash": ("Data hash", "数据哈希"),
    "training_figures": ("Training figures", "训练指标"),
    "activate": ("Activate", "启用"),
    "rollback": ("Roll back", "回滚"),
    "current": ("current", "当前"),
    "config": ("Configuration", "配置"),
    "prompts": ("Prompts", "提示音"),
    "calendar": ("Business calendar", "营业日历"),
    "calendar_hint": ("Holidays, closed dates, make-up working days (调休) and a day's hours "
                      "entered here take precedence over the chinesecalendar library. A year "
                      "with at least one holiday entered counts as covered.",
                      "此处录入的节假日、停业日、调休工作日和单日营业时间"
                      "优先于 chinesecalendar 库；"
                      "录入了至少一个节假日的年份视为已覆盖。"),
    "covered": ("Holiday data covers", "节假日数据已覆盖"),
    "covered_until": ("data until", "数据截至"),
    "admin_years": ("entered by an admin:", "管理员录入："),
    "entries": ("Calendar entries", "日历条目"),
    "date": ("Date", "日期"),
    "kind": ("Kind", "类型"),
    "hours": ("Hours", "营业时间"),
    "kind_holiday": ("Holiday (closed)", "节假日（休息）"),
    "kind_closed": ("Closed date", "停业日"),
    "kind_makeup": ("Make-up working day (调休)", "调休工作日"),
    "kind_hours": ("Hours for this date", "当日营业时间"),
    "add_entry": ("Add", "添加"),
    "remove_entry": ("Remove", "删除"),
    "what_happens": ("What happens on a date", "某日的营业情况"),
    "status": ("Status", "状态"),
    "why": ("Why", "原因"),
    "flow": ("Flow", "流程"),
    "where": ("Where", "位置"),
    "text": ("Text", "文本"),
    "play": ("Play", "试听"),
    "play_tts": ("Play the voice", "试听合成语音"),
    "upload": ("Upload a recording", "上传录音"),
    "remove": ("Remove the recording", "删除录音"),
    "system_texts": ("Built-in system texts", "系统内置提示语"),
    "unused": ("Recordings no prompt says any more", "已不再使用的录音"),
    "edit_hint": ("A prompt's text is changed by uploading a new flow version on the "
                  "configuration page; a recording is said instead of the voice for exactly "
                  "its text and language.",
                  "提示语文本通过在配置页上传新的流程版本修改；录音仅替换同一语言、同一文本的合成语音。"),
    "slots_hint": ("says caller data: always synthesized", "包含来电数据：始终使用合成语音"),
    "training_progress": ("Training progress", "训练进度"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "name": ("Name", "用户名"),
    "password": ("Password", "密码"),
    "from": ("From", "开始"),
    "to": ("To", "结束"),
    "number": ("Hotline number", "热线号码"),
    "locale": ("Language", "语言"),
    "outcome": ("Outcome", "结果"),
    "intent": ("Intent", "意图"),
    "caller": ("Caller", "主叫"),
    "apply": ("Apply", "查询"),
    "figure": ("Figure", "指标"),
    "value": ("Value", "数值"),
    "formula": ("Formula", "公式"),
    "csv": ("Download CSV", "下载 CSV"),
    "export": ("Export every CDR (CSV)", "导出全部话单 (CSV)"),
    "started": ("Started", "开始时间"),
    "duration": ("Duration", "时长"),
    "handoff": ("Handed to", "转接"),
    "none": ("Nothing found.", "没有记录。"),
    "transcript": ("Transcript", "通话文本"),
    "events": ("Event timeline", "事件时间线"),
    "recording": ("Recording", "录音"),
    "no_recording": ("Not recorded.", "无录音。"),
    "not_allowed": ("Your role may not see this.", "您的角色无权查看。"),
    "active_calls": ("Active calls", "进行中的通话"),
    "listen": ("Listen", "监听"),
    "whisper": ("Whisper", "耳语"),
    "barge": ("Barge", "强插"),
    "leave": ("Leave", "退出"),
    "queues": ("Queues", "排队"),
    "agents": ("Agents", "坐席"),
    "state": ("State", "状态"),
    "set_available": ("Set available", "置为空闲"),
    "set_away": ("Set away", "置为小休"),
    "set_offline": ("Set offline", "置为离线"),
    "state_offline": ("offline", "离线"),
    "state_available": ("available", "空闲"),
    "state_ringing": ("ringing", "振铃"),
    "state_on_call": ("on call", "通话中"),
    "state_wrap_up": ("wrap-up", "话后处理"),
    "state_away": ("away", "小休"),
    "waiting": ("Waiting", "等待人数"),
    "longest_wait": ("Longest wait", "最长等待"),
    "alerts": ("Alerts", "告警"),
    "no_alerts": ("No active alert.", "当前无告警。"),
    "alert_sla": ("Service level below target", "服务水平低于目标"),
    "alert_hold": ("Caller waiting too long", "排队等待过长"),
    "alert_sentiment": ("Caller's sentiment falling", "来电者情绪下降"),
    "threshold": ("threshold", "阈值"),
    "node": ("Node", "节点"),
    "sentiment": ("Sentiment", "情绪"),
    "said": ("What the caller said", "来电者原话"),
    "confidence": ("Confidence", "置信度"),
    "label": ("Label", "标注"),
    "out_of_scope": ("Out of scope", "超出范围"),
    "save": ("Save", "保存"),
    "retrain": ("Retrain and test", "重新训练并测试"),
    "model": ("Model", "模型"),
    "page": ("Page", "页"),
    "next": ("Next", "下一页"),
    "prev": ("Previous", "上一页"),
    "total": ("Total", "合计"),
    "warnings": ("Warnings", "警告"),
}


def language(request: Request) -> str:
    """"zh" when the browser prefers Chinese to English, else "en" (Accept-Language)."""
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def translator(lang: str) -> Any:
    def t(key: str) -> str:
        en, zh = LABELS.get(key, (key, key))
        return zh if lang == "zh" else en

    return t


_env = Environment(loader=FileSystemLoader(CONSOLE_DIR), autoescape=select_autoescape(
    default=True, default_for_string=True), trim_blocks=True, lstrip_blocks=True)
_env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True)


def render(request: Request, template: str, who: Principal | None, status: int = 200,
           **values: Any) -> HTMLResponse:
    lang = language(request)
    warnings = [w for w in (coverage_warning(),) if w] if who is not None else []
    html = _env.get_template(template).render(
        t=translator(lang), lang=lang, who=who, path=request.url.path,
        csrf=who.csrf_token if who else "", warnings=warnings, **values)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def svg_bars(bars: list[tuple[str, float]], unit: str = "", width_px: int = 640,
             max_bars: int = 40) -> Markup:
    """Horizontal bars, one per (label, value), largest value full width; drawn here."""
    shown = bars[:max_bars]
    if not shown:
        return Markup("")
    row_px, label_px, value_px = 22, 170, 70
    bar_room = width_px - label_px - value_px
    top = max((v for _, v in shown), default=0.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'width="{width_px}" height="{row_px * len(shown) + 4}" '
             f'aria-label="{escape(unit)}">']
    for i, (label, value) in enumerate(shown):
        y = i * row_px + 2
        w = max(1.0, bar_room * value / top) if value > 0 else 0.0
        text = label if len(label) <= 24 else label[:23] + "…"
        number = f"{value:g}"
        parts.append(
            f'<g><title>{escape(label)}: {escape(number)} {escape(unit)}</title>'
            f'<text x="{label_px - 6}" y="{y + 15}" text-anchor="end">{escape(text)}</text>'
            f'<rect x="{label_px}" y="{y + 3}" width="{w:.1f}" height="{row_px - 6}" '
            f'rx="2"></rect>'
            f'<text x="{label_px + w + 4:.1f}" y="{y + 15}">{escape(number)}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
