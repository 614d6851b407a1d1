"""The labeling page in a real browser: keyboard-only labeling, no reloads, timings, and a phone-sized screen."""

import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotator.models import Assignment, Judgement
from tests.browser.conftest import login
from tests.factories import PASSWORD, CampaignFactory, ComparisonFactory, LabelerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOOK_MS = 250  # how long the test "reads" each item before answering


@pytest.fixture
def campaign_with_labeler():
    campaign = CampaignFactory(lease_seconds=600)
    ComparisonFactory.create_batch(4, campaign=campaign)
    return campaign, LabelerFactory(campaigns=[campaign])


def open_label_page(page, live_server, campaign, labeler):
    login(page, live_server, labeler.username, PASSWORD)
    page.goto(live_server.url + reverse("labeling:label", args=[campaign.name]))


def current_item_id(page) -> int:
    form = page.locator("form.answer-form")
    expect(form).to_be_visible()
    return int(form.get_attribute("data-item"))


def wait_for_item_after(page, item_id: int) -> int:
    expect(page.locator(f"form.answer-form:not([data-item='{item_id}'])")).to_be_visible()
    return current_item_id(page)


def test_label_three_pairs_with_the_keyboard_only(page, live_server, console_errors, campaign_with_labeler):
    campaign, labeler = campaign_with_labeler
    login(page, live_server, labeler.username, PASSWORD)
    # An item's clock starts once it is on the page, so (request that brought it) .. (its Enter) bounds it.
    requested_at = time.monotonic()
    page.goto(live_server.url + reverse("labeling:label", args=[campaign.name]))
    page.evaluate("window.samePage = true")  # gone if anything reloads the page

    # (keys pressed, expected screen side, expected strength)
    steps = [(["1", "w"], "left", 2), (["2", "e"], "right", 3), (["3"], "tie", 2)]
    answered, upper_bounds_ms = [], []
    item_id = current_item_id(page)
    for number, (keys, _, _) in enumerate(steps):
        page.wait_for_timeout(LOOK_MS)
        for key in keys:
            page.keyboard.press(key)
        if number == 0:
            # r focuses the rationale; typing there triggers no shortcut; Escape leaves it.
            page.keyboard.press("r")
            page.keyboard.type("kinder 2q")
            page.keyboard.press("Escape")
            expect(page.locator("input[name=answer][value=left]")).to_be_checked()
            expect(page.locator("input[name=strength][value='2']")).to_be_checked()
        submit_started_at = time.monotonic()
        page.keyboard.press("Enter")
        upper_bounds_ms.append((time.monotonic() - requested_at) * 1000)
        requested_at = submit_started_at
        answered.append(item_id)
        item_id = wait_for_item_after(page, item_id)

    assert page.evaluate("window.samePage") is True
    expect(page.locator("#progress")).to_contain_text("Done today 3")

    judgements = {j.assignment_id: j for j in Judgement.objects.filter(assignment__labeler=labeler)}
    assert sorted(judgements) == sorted(answered)
    for assignment_id, (_, side, strength), upper_bound in zip(answered, steps, upper_bounds_ms):
        judgement = judgements[assignment_id]
        swapped = Assignment.objects.get(pk=assignment_id).swapped
        expected = {"left": "b" if swapped else "a", "right": "a" if swapped else "b", "tie": "tie"}[side]
        assert (judgement.choice, judgement.strength) == (expected, strength)
        assert LOOK_MS <= judgement.milliseconds <= upper_bound, (judgement.milliseconds, upper_bound)
    assert judgements[answered[0]].rationale == "kinder 2q"
    assert console_errors == []


def test_phone_screen_buttons_are_visible_and_clickable(page, live_server, console_errors, campaign_with_labeler):
    campaign, labeler = campaign_with_labeler
    page.set_viewport_size({"width": 390, "height": 844})
    open_label_page(page, live_server, campaign, labeler)
    item_id = current_item_id(page)

    left, right = page.locator("#side-left").bounding_box(), page.locator("#side-right").bounding_box()
    assert right["y"] >= left["y"] + left["height"]  # stacked, not side by side
    buttons = page.locator("form.answer-form label.choice, form.answer-form button[type=submit]")
    assert buttons.count() == 4 + 3 + 1
    for index in range(buttons.count()):
        box = buttons.nth(index).bounding_box()
        expect(buttons.nth(index)).to_be_visible()
        assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= 390

    page.locator("label.choice", has_text="B is better").click()
    page.locator("label.choice", has_text="Slightly").click()
    page.get_by_role("button", name="Submit").click()
    wait_for_item_after(page, item_id)
    judgement = Judgement.objects.get(assignment_id=item_id)
    swapped = Assignment.objects.get(pk=item_id).swapped
    assert (judgement.choice, judgement.strength) == ("a" if swapped else "b", 1)
    assert judgement.milliseconds > 0
    assert console_errors == []
