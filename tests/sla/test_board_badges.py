"""The board's SLA side: a badge per clock on each card (time left or over, at risk and
breached in words), breached then at risk first in each open column, "Due soonest" as an
order kept in the URL and in saved views, and the clocks of a page loaded in one query."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event

from app.auth.models import Role
from app.extensions import db
from app.reports.models import Status
from app.sla import sweep
from app.triage import service as triage
from app.triage.schemas import BoardFilters
from tests.sla.conftest import at
from tests.web import post_form, sign_in


@pytest.fixture
def three(ticket, clock_at) -> dict[str, Any]:
    """At Monday 13:30 UTC: a P1 whose first response breached at 11:00, a P2 whose first
    response is at risk (due 14:00), and a P0 received at 13:25 (due 13:40), all New."""
    clock_at(at(5, 10))
    breached, at_risk = ticket(priority="P1"), ticket(priority="P2")
    clock_at(at(5, 13, 25))
    running = ticket(priority="P0")
    clock_at(at(5, 13, 30))
    sweep.run()
    return {"breached": breached.public_id, "at_risk": at_risk.public_id,
            "running": running.public_id}


@pytest.fixture
def responder(client, make_user):
    user = make_user(Role.RESPONDER)
    sign_in(client, user)
    return user


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def card(page: str, public_id: str) -> str:
    match = re.search(rf'<article class="card[^>]*data-id="{public_id}".*?</article>', page,
                      re.S)
    assert match, f"no card {public_id}"
    return match.group(0)


def badges(page: str, public_id: str) -> list[str]:
    """The badges of a card as a reader sees them (tags stripped, spaces collapsed)."""
    found = re.findall(r'<li class="sla-badge[^"]*"[^>]*>(.*?)</li>', card(page, public_id),
                       re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", b).split()).replace(" :", ":") for b in found]


def order_in(page: str, status: str) -> list[str]:
    column = re.search(rf'<section class="column column-{status}".*?</section>', page, re.S)
    assert column
    return re.findall(r'<article class="card[^>]*data-id="([^"]+)"', column.group(0))


def test_each_card_shows_its_clocks_with_time_left_or_over(client, responder, three):
    page = html(client.get("/board"))
    assert badges(page, three["breached"]) == ["Breached: First response · 2h 30m over",
                                               "Resolution · 20h left"]
    assert badges(page, three["at_risk"]) == ["At risk: First response · 30m left",
                                              "Resolution · 2d 20h left"]
    assert badges(page, three["running"]) == ["First response · 10m left",
                                              "Resolution · 3h 55m left"]


def test_badges_carry_their_state_in_a_class_and_the_due_time_in_the_viewers_zone(
        client, make_user, three):
    user = make_user(Role.RESPONDER)
    user.timezone = "Europe/Berlin"
    db.session.commit()
    sign_in(client, user)
    markup = card(html(client.get("/board")), three["at_risk"])
    assert 'class="sla-badge sla-at_risk"' in markup
    # Due 14:00 UTC is 15:00 in Berlin (CET) in January.
    assert 'title="First response due 2026-01-05 15:00 CET"' in markup


def test_breached_then_at_risk_come_first_in_a_column_whatever_their_priority(
        client, responder, three):
    page = html(client.get("/board"))
    assert order_in(page, "new") == [three["breached"], three["at_risk"], three["running"]]


def test_due_soonest_orders_by_the_next_due_instant(client, responder, three):
    page = html(client.get("/board?sort=due"))
    # The P0's first response is due 13:40, the P2's 14:00; the P1's first response has
    # breached already, and its resolution is due on Tuesday.
    assert order_in(page, "new") == [three["running"], three["at_risk"], three["breached"]]
    assert re.search(r'<option value="due"\s+selected>Due soonest</option>', page)


def test_tickets_without_clocks_come_last_when_due_soonest(client, responder, three, ticket):
    unrouted = ticket(priority="P0", route=False)
    page = html(client.get("/board?sort=due"))
    assert order_in(page, "new")[-1] == unrouted.public_id
    assert badges(page, unrouted.public_id) == []


def test_a_late_first_response_keeps_the_card_first_and_says_why(client, responder, three,
                                                                  clock_at):
    clock_at(at(5, 13, 40))
    triage.assign(actor=responder, ids=[three["breached"]], assignee_id=responder.id)
    page = html(client.get("/board"))
    assert order_in(page, "new")[0] == three["breached"]
    assert badges(page, three["breached"])[0] == "Breached: First response · missed by 2h 40m"


def test_closed_columns_keep_their_order_and_show_no_running_clocks(
        client, responder, three, make_user):
    triage.move(actor=responder, ids=[three["at_risk"]], status=Status.RESOLVED)
    page = html(client.get("/board?sort=due"))
    assert order_in(page, "resolved") == [three["at_risk"]]
    assert badges(page, three["at_risk"]) == []


def test_the_order_is_kept_in_the_url_and_in_saved_views(client, responder, three):
    filters = BoardFilters(sort="due", priorities=("P0",))
    assert filters.query_pairs() == [("priority", "P0"), ("sort", "due")]
    response = post_form(client, "/board/views", {"name": "Soonest", "query": "sort=due"})
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/board?sort=due")
    assert ("Soonest", "sort=due") in triage.saved_views(actor=responder)


def test_an_unknown_order_is_refused_with_the_filters_kept(client, responder, three):
    response = client.get("/board?sort=random&priority=P1")
    assert response.status_code == 422
    page = html(response)
    assert "Pick an order." in page
    assert re.search(r'value="P1"\s+checked', page)


def test_the_clocks_of_a_page_are_read_in_one_query(app, make_user, ticket, clock_at):
    viewer = make_user(Role.VIEWER)

    def clock_queries(count: int) -> int:
        for _ in range(count):
            ticket(priority="P2")
        seen: list[str] = []

        def listen(conn, cursor, statement, *args):  # noqa: ANN001, ANN002
            if "FROM sla_clocks" in statement:
                seen.append(statement)

        engine = db.engines[None]
        event.listen(engine, "before_cursor_execute", listen)
        try:
            board = triage.board(actor=viewer, filters=BoardFilters())
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        assert all(card.clocks for column in board.columns for card in column.cards)
        return len(seen)

    assert clock_queries(2) == 1
    assert clock_queries(20) == 1
