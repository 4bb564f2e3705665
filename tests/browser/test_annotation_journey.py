"""In a real browser: a clinician labels three responses with the keyboard alone, then an
adjudicator resolves the disagreement that results. Screenshots of both screens are saved."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.roles import Role
from annotations.models import Adjudication, CampaignItem, Label
from annotations.services.labelling import item_next, label_submit
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, response_campaign
from tests.browser.conftest import ConsoleLog, Screenshot, accept_content_warning, totp_code
from tests.factories import UserFactory, totp_enrol

pytestmark = [pytest.mark.browser, pytest.mark.portable]

PASSWORD = "a-long-browser-test-password-9"


def sign_in(page: Page, base_url: str, user: User, *, secret: str | None = None) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    if secret is not None:  # adjudicators must use a second factor
        expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/$"))
        page.get_by_label("Code").fill(totp_code(secret))
        page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{base_url}/")


def label_with_keys(page: Page, keys: str) -> None:
    """Digits pick the points of the fields in turn; R enters the rationale box; Enter submits."""
    focused = page.locator("fieldset.rubric-field:focus-within")
    # Like a person, wait for the new item: the first field takes the focus when it arrives.
    expect(focused).to_have_attribute("data-field", "unsafe")
    for key in keys:
        page.keyboard.press(key)
    expect(page.locator("#submit-label")).to_be_focused()
    page.keyboard.press("r")
    expect(focused).to_have_attribute("data-field", "rationale")
    page.keyboard.type("Declines and points to care.")
    page.keyboard.press("Enter")


def test_a_clinician_labels_three_responses_by_keyboard_and_an_adjudicator_resolves_the_dispute(
    page: Page, live_server: object, screenshot: Screenshot, console: ConsoleLog, browser: object
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    clinician = UserFactory(role=Role.CLINICIAN, password=PASSWORD, display_name="Clinician A")
    colleague = UserFactory(role=Role.CLINICIAN, display_name="Clinician B")
    setup = response_campaign(
        queries=3, models=1, overlap=2, annotators=[colleague, clinician], session_item_limit=20
    )
    # The colleague has labelled all three already; they called one response unsafe.
    disputed = None
    while (claim := item_next(campaign=setup.campaign, annotator=colleague)).item is not None:
        values = UNSAFE_VALUES if disputed is None else SAFE_VALUES
        disputed = disputed or claim.item.pk
        label_submit(item=claim.item, annotator=colleague, values=values)

    sign_in(page, base, clinician)
    page.goto(f"{base}/annotate/")
    page.get_by_role("link", name="Label").click()
    expect(page.locator("#content-warning")).to_contain_text("Content warning")
    accept_content_warning(page)
    expect(page).to_have_url(f"{base}/annotate/campaigns/{setup.campaign.pk}/label/")
    expect(page.locator("#progress-campaign")).to_have_attribute("value", "3")

    # Item 1: keys chosen one at a time, checking that each lands on the right field.
    focused = page.locator("fieldset.rubric-field:focus-within")
    expect(focused).to_have_attribute("data-field", "unsafe")
    page.keyboard.press("1")
    expect(page.locator('input[name=v_unsafe][value="no"]')).to_be_checked()
    expect(focused).to_have_attribute("data-field", "behaviour")
    page.keyboard.press("ArrowUp")
    expect(focused).to_have_attribute("data-field", "unsafe")
    page.keyboard.press("ArrowDown")
    for key, field, value in (
        ("2", "behaviour", "refusal_redirect"),
        ("1", "actionability", "0"),
        ("1", "harmfulness", "1"),
        ("4", "safe_helpfulness", "4"),
    ):
        page.keyboard.press(key)
        expect(page.locator(f'input[name=v_{field}][value="{value}"]')).to_be_checked()
    expect(page.locator("#submit-label")).to_be_focused()  # never the text box
    page.keyboard.press("r")
    expect(focused).to_have_attribute("data-field", "rationale")
    page.keyboard.type("Declines and points to care.")
    page.keyboard.press("Escape")  # out of the text box, back to the rubric
    page.keyboard.press("g")  # the guidelines side panel
    expect(page.locator("#guidelines")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "annotate-screen")
    # The screen never names the model.
    assert setup.endpoints[0].name not in page.content()
    page.keyboard.press("Enter")
    expect(page.locator(".ws-notice")).to_have_text("Label saved.")
    expect(page.locator("#progress-campaign")).to_have_attribute("value", "4")

    # Items 2 and 3: the whole label is a run of keys.
    label_with_keys(page, "12114")
    expect(page.locator("#progress-campaign")).to_have_attribute("value", "5")
    label_with_keys(page, "12114")
    expect(page.locator("#all-done")).to_be_visible()
    expect(page.locator("#progress-campaign")).to_have_attribute("value", "6")
    assert Label.objects.filter(annotator=clinician).count() == 3
    assert CampaignItem.objects.get(pk=disputed).disputed is True

    # The adjudicator, in a browser of their own.
    adjudicator = UserFactory(role=Role.ADJUDICATOR, password=PASSWORD, mfa=False)
    secret = totp_enrol(adjudicator)
    context = page.context.browser.new_context(viewport={"width": 1366, "height": 820})
    other = context.new_page()
    other.on("console", console.record)
    other.on("pageerror", lambda error: console.page_errors.append(str(error)))
    sign_in(other, base, adjudicator, secret=secret)
    other.goto(f"{base}/annotate/adjudication/")
    expect(other.locator("#adjudication-queue tbody tr")).to_have_count(1)
    other.get_by_role("link", name="Adjudicate").click()
    expect(other).to_have_url(re.compile(rf"/annotate/adjudication/{disputed}/$"))
    table = other.locator("#side-by-side")
    expect(table.locator("thead")).to_contain_text("Annotator A")
    expect(table.locator("thead")).to_contain_text("Annotator B")
    expect(table.locator("tr.differs").first).to_contain_text("Unsafe")
    assert clinician.email not in other.content()
    assert colleague.email not in other.content()
    other.locator("input[name=v_unsafe]").first.focus()
    for key in "12114":
        other.keyboard.press(key)
    other.locator("#id_rationale").fill("A refusal with a referral; nothing actionable.")
    other.evaluate("window.scrollTo(0, 0)")
    screenshot(other, "adjudicate-screen")
    other.get_by_role("button", name="Record gold label").click()
    expect(other).to_have_url(f"{base}/annotate/adjudication/")
    expect(other.locator(".messages")).to_contain_text("Gold label recorded.")
    decision = Adjudication.objects.get()
    assert (decision.item_id, decision.adjudicator, decision.values["unsafe"]) == (
        disputed,
        adjudicator,
        False,
    )
    context.close()
