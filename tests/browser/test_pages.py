"""The rating mode in a real browser, and every other page of the site loading without a script error."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotator.models import Rating, TaskKind
from tests.browser.conftest import login
from tests.browser.test_labeling import current_item_id, wait_for_item_after
from tests.factories import (
    PASSWORD,
    CampaignFactory,
    ComparisonFactory,
    LabelerFactory,
    RatingItemFactory,
    StaffFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rate_two_items_with_the_keyboard_then_all_done_without_a_reload(page, live_server, console_errors):
    campaign = CampaignFactory(task_kind=TaskKind.RATING, lease_seconds=600)
    RatingItemFactory.create_batch(2, campaign=campaign)
    labeler = LabelerFactory(campaigns=[campaign])
    login(page, live_server, labeler.username, PASSWORD)
    page.goto(live_server.url + reverse("labeling:label", args=[campaign.name]))
    page.evaluate("window.samePage = true")  # gone if anything reloads the page
    expect(page.locator("input[name=strength]")).to_have_count(0)  # ratings have no strength

    first = current_item_id(page)
    page.keyboard.press("1")
    expect(page.locator("input[name=answer][value=positive]")).to_be_checked()
    page.keyboard.press("Enter")
    second = wait_for_item_after(page, first)
    # At once, before htmx has settled the swap: an Enter there used to post the form natively and reload.
    page.keyboard.press("3")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="All done")).to_be_visible()
    assert page.evaluate("window.samePage") is True
    expect(page.locator("#progress")).to_contain_text("Done today 2")
    ratings = dict(Rating.objects.filter(assignment__labeler=labeler).values_list("assignment_id", "value"))
    assert ratings == {first: "positive", second: "negative"}
    assert console_errors == []


def test_every_page_loads_without_a_script_error(page, live_server, console_errors):
    campaign = CampaignFactory(money_budget=10)
    ComparisonFactory.create_batch(2, campaign=campaign)
    pages_by_user = [
        (LabelerFactory(campaigns=[campaign]), [
            reverse("labeling:campaign_list"),
            reverse("labeling:instructions", args=[campaign.name]),
            reverse("labeling:label", args=[campaign.name]),
            "/api/docs/",
        ]),
        (StaffFactory(), [
            reverse("budget:overview"),
            reverse("budget:campaign", args=[campaign.name]),
            reverse("budget:ledger", args=[campaign.name]),
            reverse("budget:entry_new", args=[campaign.name]),
            reverse("rounds:campaigns"),
            reverse("rounds:campaign", args=[campaign.name]),
            "/admin/",
            "/admin/annotator/campaign/",
        ]),
    ]
    for user, paths in pages_by_user:
        page.context.clear_cookies()
        login(page, live_server, user.username, PASSWORD)
        for path in paths:
            response = page.goto(live_server.url + path)
            assert response.status == 200, path
            page.wait_for_load_state("networkidle")
            assert console_errors == [], path
