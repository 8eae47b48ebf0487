"""The alert rules: raised once, cleared when the condition ends, hysteresis on the service
level, the sentiment conditions; and the settings that configure them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.alerts.rules import Alert, AlertBook, sentiment_falling, sla_breached
from app.settings import Settings

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def _hold(value: float) -> Alert:
    return Alert("hold", "hold:c1", "sales", "c1", value, 60.0, "s", NOW)


def test_an_alert_is_raised_once_and_cleared_once() -> None:
    book = AlertBook(recent_max=3)
    assert book.raise_(_hold(61.0)) is not None
    assert book.raise_(_hold(90.0)) is None  # still on: no second alert
    assert book.active["hold:c1"].value == 90.0  # the figure follows
    cleared = book.clear("hold:c1", NOW)
    assert cleared is not None and cleared.state == "cleared"
    assert book.clear("hold:c1", NOW) is None
    assert [e["state"] for e in book.view()["recent"]] == ["cleared", "raised"]
    for _ in range(3):  # the recent list is bounded
        book.raise_(_hold(61.0))
        book.clear("hold:c1", NOW)
    assert len(book.view()["recent"]) == 3 and book.view()["active"] == []


def test_the_service_level_alert_has_hysteresis_and_a_minimum_of_calls() -> None:
    rule = {"target_pct": 80.0, "clear_pct": 85.0, "min_calls": 10}
    assert sla_breached(7, 10, active=False, **rule) == (True, 70.0)
    assert sla_breached(5, 9, active=False, **rule) == (False, 55.6)  # too few calls
    assert sla_breached(5, 9, active=True, **rule) == (True, 55.6)  # stays until enough
    assert sla_breached(82, 100, active=True, **rule) == (True, 82.0)  # above target
    assert sla_breached(82, 100, active=False, **rule) == (False, 82.0)
    assert sla_breached(85, 100, active=True, **rule) == (False, 85.0)
    assert sla_breached(0, 0, active=True, **rule) == (True, None)


def test_sentiment_falls_below_a_score_or_by_a_drop() -> None:
    assert sentiment_falling([0.2, -0.6], below=-0.5, drop=0.8) is not None
    assert sentiment_falling([0.6, -0.3], below=-0.5, drop=0.8) == (
        "fell 0.90 from 0.60 (>= 0.8)")
    assert sentiment_falling([0.6, 0.0], below=-0.5, drop=0.8) is None
    assert sentiment_falling([], below=-0.5, drop=0.8) is None


def test_alert_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="would flap"):
        Settings(alert_sla_target_pct=90, alert_sla_clear_pct=85)
    with pytest.raises(ValidationError, match="absolute http"):
        Settings(alert_webhook_url="ftp://example.com/hook")
    with pytest.raises(ValidationError, match="alert_hold_max_s"):
        Settings(alert_hold_max_s=0)
    assert Settings(alert_webhook_url="").alert_webhook_url is None
