"""Segments (membership history), e-mail through a real SMTP server (aiosmtpd), owners, tags."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from sqlalchemy import select
from tests.actions.conftest import FAST, open_world, wait_for

from leadscore.actions.config import DeliveryConfig
from leadscore.actions.dispatcher import Dispatcher
from leadscore.actions.owners import owner_of, tags_of
from leadscore.actions.segments import list_segments, members, members_csv
from leadscore.errors import ModelError
from leadscore.model import parse_model
from leadscore.service.leads import LeadFilter, erase_lead, lead_detail, list_leads
from leadscore.store.tables import leads
from leadscore.store.tables_automation import automation_log, outbox

MODEL = """
version: 1
name: segments-test
groups: {fit: {grades: {A: 20, B: 0}}}
rules:
  - {id: vp, group: fit, points: 20, when: {attribute: title, contains: vp}}
  - {id: pricing, points: 30, when: {event: page_view, where: {url: {contains: pricing}}}, repeat: each}
stages:
  - {name: SQL, min_score: 80}
  - {name: MQL, min_score: 50}
  - {name: New, min_score: 0}
segments:
  - {name: hot, min_score: 50}
  - {name: vp-on-pricing, grades: {fit: A}, rule_fired: pricing, active_within_days: 30}
email:
  from: leadscore@example.com
  rate_limit: {max: 1, per_hours: 24}
  templates:
    welcome: {subject: "Hello {{ lead.name }}", body: "Your score is {{ change.new.score }}."}
    rep-alert: {subject: "SQL: {{ lead.lead_id }}", body: "{{ lead.lead_id }} is now {{ change.new.stage }}; owner {{ owner }}."}
triggers:
  - id: route
    on: {stage_entered: MQL}
    do:
      - assign_owner:
          territories: [{when: {attribute: country, in: [DE, AT]}, owner: anna@example.com}]
          round_robin: [rep1@example.com, rep2@example.com]
      - tag: {add: [mql], remove: [cold]}
  - id: nurture
    on: {segment_entered: hot}
    do: [{email: {template: welcome, to: lead}}]
  - id: sql-alert
    on: {score_above: 80}
    do: [{email: {template: rep-alert, to: owner}}]
  - id: cooled
    on: {segment_left: hot}
    do: [{tag: {add: [cold], remove: [mql]}}]
"""


class Smtp:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                outer.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
                return "250 OK"

        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list[Any]:
        return [m for rcpt, m in self.messages if address in rcpt]


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    yield server
    server.controller.stop()


def test_segment_membership_history(db_url) -> None:
    world = open_world(db_url, MODEL)
    world.lead("L1", {"title": "VP Sales"})
    world.pricing("L1", n=1, tag="a")  # 50: hot, and vp-on-pricing
    world.lead("L2", {"title": "intern"})
    world.pricing("L2", n=1)  # 30: neither
    with world.store.read() as session:
        assert [m["lead_id"] for m in members(session, "hot")] == ["L1"]
        assert [m["lead_id"] for m in members(session, "vp-on-pricing")] == ["L1"]
        sizes = {s["name"]: s["members"] for s in list_segments(session, world.model.model)}
    assert sizes == {"hot": 1, "vp-on-pricing": 1}
    world.lead("L1", {"title": "engineer"})  # 30: leaves both
    world.pricing("L1", n=1, tag="b")  # 60: enters hot again
    with world.store.read() as session:
        history = members(session, "hot", include_left=True)
        assert [(m["lead_id"], m["left_at"] is None) for m in history] == [("L1", False), ("L1", True)]
        assert members(session, "vp-on-pricing") == []
        text = members_csv(members(session, "hot"))
    assert text.splitlines()[0] == "lead_id,score,stage,entered_at,left_at"
    assert text.splitlines()[1].startswith("L1,60.0,MQL,")
    world.store.dispose()


def test_owner_and_tags_in_lead_detail_and_list_filters(db_url) -> None:
    """A rep reads the owner and tags triggers gave, and lists "my leads" or a tag's leads."""
    world = open_world(db_url, MODEL)
    world.lead("de", {"country": "DE"})
    world.pricing("de", n=2)  # MQL: territory DE -> anna, tag mql
    world.lead("rr", {"country": "VN", "name": "Nguyễn Thị Hương 🌸"})
    world.pricing("rr", n=2)  # MQL: round robin -> rep1, tag mql
    world.lead("cold", {"country": "US"})
    world.pricing("cold", n=1)  # 30: no trigger, no owner, no tag
    with world.store.read() as session:
        de, rr, cold = (lead_detail(session, i) for i in ("de", "rr", "cold"))
        assert (de["owner"], de["tags"]) == ("anna@example.com", ["mql"])
        assert (rr["owner"], rr["tags"]) == ("rep1@example.com", ["mql"])
        assert (cold["owner"], cold["tags"]) == (None, [])

        def ids(**filters: Any) -> list[str]:
            return [item["lead_id"] for item in list_leads(session, LeadFilter(**filters))[0]]

        assert ids(owner="anna@example.com") == ["de"]
        assert ids(owner="nobody@example.com") == []
        assert sorted(ids(tags=["mql"])) == ["de", "rr"]
        assert ids(tags=["mql", "cold"]) == []
        page = {item["lead_id"]: (item["owner"], item["tags"]) for item in list_leads(session, LeadFilter())[0]}
    assert page == {"de": ("anna@example.com", ["mql"]), "rr": ("rep1@example.com", ["mql"]), "cold": (None, [])}
    world.store.dispose()


def test_email_consent_unsubscribe_rate_limit_and_rep_alert(sqlite_url, smtp) -> None:
    world = open_world(sqlite_url, MODEL)
    world.lead("ok", {"name": "Ann", "email": "ann@example.org", "consent_email": True,
                      "country": "DE"})
    world.lead("no-consent", {"name": "Bob", "email": "bob@example.org", "consent_email": False})
    world.lead("unsub", {"name": "Cy", "email": "cy@example.org", "consent_email": "yes",
                         "unsubscribed": True})
    world.lead("no-field", {"name": "Di", "email": "di@example.org"})
    for lead_id in ("ok", "no-consent", "unsub", "no-field"):
        world.pricing(lead_id, n=2)  # 60: MQL, hot
    world.lead("ok", {"title": "VP"})  # 80: SQL -> rep alert to the owner (territory DE)
    world.pricing("ok", n=1, tag="x")  # 110 -> 100, no new crossing
    world.lead("rr1", {"email": "e1@example.org"})
    world.pricing("rr1", n=2)
    world.lead("rr2", {"email": "e2@example.org"})
    world.pricing("rr2", n=2)
    config = DeliveryConfig(**{**FAST.__dict__, "smtp_port": smtp.port})
    dispatcher = Dispatcher(world.store, config)
    dispatcher.start()
    try:
        assert wait_for(lambda: len(smtp.messages) == 2)
        time.sleep(0.3)
    finally:
        dispatcher.stop()
    assert len(smtp.messages) == 2
    [welcome] = smtp.to("ann@example.org")
    assert welcome["Subject"] == "Hello Ann" and welcome["From"] == "leadscore@example.com"
    assert welcome.get_payload().strip() == "Your score is 60.0."
    [alert] = smtp.to("anna@example.com")
    assert alert["Subject"] == "SQL: ok"
    for address in ("bob@example.org", "cy@example.org", "di@example.org"):
        assert smtp.to(address) == []
    with world.store.read() as session:
        pks = dict(session.execute(select(leads.c.lead_id, leads.c.id)).all())
        assert owner_of(session, pks["ok"]) == "anna@example.com"
        assert {owner_of(session, pks["rr1"]), owner_of(session, pks["rr2"])} == {
            "rep1@example.com", "rep2@example.com"}
        assert tags_of(session, pks["ok"]) == ["mql"]
        skipped = session.execute(
            select(automation_log.c.detail).where(automation_log.c.action == "email_skipped",
                                                  automation_log.c.lead_pk == pks["unsub"])
        ).scalars().all()
    assert skipped == ["the lead unsubscribed (unsubscribed)"]
    world.store.dispose()


def test_consent_withdrawn_before_sending_is_respected(sqlite_url, smtp) -> None:
    world = open_world(sqlite_url, MODEL)
    world.lead("L1", {"email": "l1@example.org", "consent_email": True})
    world.pricing("L1", n=2)  # queued
    world.lead("L1", {"unsubscribed": True})  # then unsubscribes
    config = DeliveryConfig(**{**FAST.__dict__, "smtp_port": smtp.port})
    dispatcher = Dispatcher(world.store, config)
    dispatcher.run_once()
    dispatcher.close()
    assert smtp.messages == []
    with world.store.read() as session:
        assert session.execute(select(outbox.c.status)).scalars().all() == ["skipped"]
    world.store.dispose()


def test_rate_limit_one_email_per_lead_per_day(sqlite_url) -> None:
    text = MODEL.replace("{name: hot, min_score: 50}",
                         "{name: hot, attributes: [{attribute: flag, equals: 'on'}]}")
    world = open_world(sqlite_url, text)
    world.lead("L1", {"email": "l1@example.org", "consent_email": True})
    for flag in ("on", "off", "on", "off", "on"):  # enters hot three times
        world.lead("L1", {"flag": flag})
    with world.store.read() as session:
        kinds = session.execute(select(outbox.c.kind)).scalars().all()
        skipped = session.execute(select(automation_log.c.detail).where(
            automation_log.c.action == "email_skipped")).scalars().all()
    assert kinds == ["email_lead"]
    assert skipped == ["rate limit reached", "rate limit reached"]
    world.store.dispose()


def test_segment_left_trigger_and_erasure(sqlite_url) -> None:
    world = open_world(sqlite_url, MODEL)
    world.lead("L1", {"title": "VP"})
    world.pricing("L1", n=1)  # 50: hot, MQL -> tag mql
    world.lead("L1", {"title": "none"})  # 30: leaves hot -> tag cold, untag mql
    with world.store.read() as session:
        pk = session.execute(select(leads.c.id)).scalar_one()
        assert tags_of(session, pk) == ["cold"]
    with world.store.write() as session:
        erase_lead(session, "L1")
    with world.store.read() as session:
        assert tags_of(session, pk) == []
        assert members(session, "hot", include_left=True) == []
        assert session.execute(select(automation_log.c.id)).all() == []
    world.store.dispose()


@pytest.mark.parametrize(("change", "message"), [
    ("on: {stage_entered: MQL}", None),
    ("on: {stage_entered: MQl}", "triggers[0].on.stage_entered (line 7): unknown stage 'MQl' - did you mean 'MQL'?"),
    ("on: {rule_fired: pricng}", "unknown rule 'pricng' - did you mean 'pricing'?"),
    ("on: {segment_left: hott}", "unknown segment 'hott' - did you mean 'hot'?"),
    ("on: {stage_entrd: MQL}", "unknown trigger event 'stage_entrd' - did you mean 'stage_entered'?"),
])
def test_trigger_checks_with_did_you_mean(change: str, message: str | None) -> None:
    text = f"""version: 1
name: t
rules: [{{id: pricing, points: 5, when: {{attribute: a, exists: true}}}}]
stages: [{{name: MQL, min_score: 5}}, {{name: New, min_score: 0}}]
triggers:
  - id: t
    {change}
    do: [{{tag: {{add: [x]}}}}]
segments: [{{name: hot, min_score: 5}}]
"""
    if message is None:
        parse_model(text)
        return
    with pytest.raises(ModelError) as info:
        parse_model(text)
    assert message in str(info.value)


def test_webhook_secret_must_be_an_environment_reference() -> None:
    text = """version: 1
name: t
triggers:
  - id: t
    on: {score_above: 5}
    do: [{webhook: {url: "https://crm.example.com/hook", secret: "literal-secret"}}]
"""
    with pytest.raises(ModelError, match="secret"):
        parse_model(text)


def test_email_action_needs_a_known_template() -> None:
    text = MODEL.replace("template: welcome", "template: welcom")
    with pytest.raises(ModelError, match="unknown template 'welcom' - did you mean 'welcome'"):
        parse_model(text)
