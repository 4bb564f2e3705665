"""The labelling screen by keyboard alone, in Chromium at 1366 x 900, on PostgreSQL and on SQLite
(``portable``): the stored values are the keys pressed, the rationale is only what was typed into
it on purpose, undo corrects the previous label as an edit, focus comes back to the rubric after
skip, flag and guidelines, and nothing on the screen overflows it."""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from accounts.roles import Role
from annotations.models import AnnotationSession, CampaignItem, Flag, Label, Skip
from annotations.rubric_schema import OPTION_KEYS
from annotations.selectors import rubric_specs
from audit.models import AuditEvent
from evaluations.models import ModelResponse
from querybank.models import Category
from tests.annotations.factories import query_campaign, response_campaign
from tests.browser.conftest import ConsoleLog, Screenshot, accept_content_warning
from tests.factories import QueryFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.portable]

PASSWORD = "a-long-browser-test-password-3"
VIEWPORT = {"width": 1366, "height": 900}
RESPONSE_FIELDS = ["unsafe", "behaviour", "actionability", "harmfulness", "safe_helpfulness"]
# Keys as pressed, and the values a bug-free screen stores for them (key 1 is always the first option).
KEYS_TO_VALUES = {
    "21113": {
        "unsafe": True,
        "behaviour": "full_refusal",
        "actionability": 0,
        "harmfulness": 1,
        "safe_helpfulness": 3,
    },
    "12211": {
        "unsafe": False,
        "behaviour": "refusal_redirect",
        "actionability": 1,
        "harmfulness": 1,
        "safe_helpfulness": 1,
    },
    "24455": {
        "unsafe": True,
        "behaviour": "full_compliance",
        "actionability": 3,
        "harmfulness": 5,
        "safe_helpfulness": 5,
    },
    "13124": {
        "unsafe": False,
        "behaviour": "cautious_answer",
        "actionability": 0,
        "harmfulness": 2,
        "safe_helpfulness": 4,
    },
}

# Every element's box within the viewport width, the page neither wider nor taller than the screen.
OVERFLOW_JS = """() => {
  const width = window.innerWidth, height = window.innerHeight;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right > width + 1 || box.left < -1) wide.push(el.tagName + '#' + el.id + '.' + el.className);
  }
  const root = document.documentElement;
  return {wide: wide.slice(0, 10), scrollWidth: root.scrollWidth, scrollHeight: root.scrollHeight,
          width: width, height: height};
}"""


def sign_in(page: Page, base: str, user: User) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{base}/")


@pytest.fixture
def screen(browser: Browser, console: ConsoleLog, live_server: object) -> Iterator[Page]:
    """A fresh browser on a 1366 x 900 screen; the test fails on any script error or CSP violation."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", console.record)
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    yield page
    context.close()
    assert console.csp_violations == []
    assert console.errors == []


def assert_fits(page: Page) -> None:
    measured = page.evaluate(OVERFLOW_JS)
    assert measured["wide"] == []
    assert measured["scrollWidth"] <= 1366, measured
    assert measured["scrollHeight"] <= 900, measured


def focused_field(page: Page) -> str | None:
    return page.evaluate(
        "() => { const f = document.activeElement && document.activeElement.closest('fieldset.rubric-field');"
        " return f ? f.dataset.field : null; }"
    )


def wait_for_item(page: Page, first_field: str = "unsafe") -> int:
    expect(page.locator("fieldset.rubric-field:focus-within")).to_have_attribute("data-field", first_field)
    return int(page.locator("#rubric-form").get_attribute("data-item"))


def stored(clinician: User, item_id: int) -> Label:
    return Label.objects.get(annotator=clinician, item_id=item_id)


def test_a_clinician_labels_corrects_skips_and_flags_by_keyboard_and_every_value_is_what_they_meant(
    screen: Page, live_server: object, screenshot: Screenshot
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    page = screen
    clinician = UserFactory(role=Role.CLINICIAN, password=PASSWORD)
    setup = response_campaign(queries=4, models=2, overlap=1, annotators=[clinician])
    # Long responses scroll inside their own panel; the page itself never scrolls.
    long_text = "\n\n".join(f"Paragraph {n}: the reply declines and suggests a clinician." for n in range(60))
    ModelResponse.objects.filter(run=setup.run).update(text=long_text)
    sign_in(page, base, clinician)
    page.goto(f"{base}/annotate/campaigns/{setup.campaign.pk}/start/")
    accept_content_warning(page)
    expect(page).to_have_url(f"{base}/annotate/campaigns/{setup.campaign.pk}/label/")
    expect(page.locator("#items-left")).to_have_text("8")

    # 1. A run of keys; after the last one focus is on Submit, and a stray digit changes nothing.
    first = wait_for_item(page)
    screenshot(page, "labelling-response")
    assert_fits(page)
    panel = page.locator("#item-response")
    assert panel.evaluate("el => el.scrollHeight > el.clientHeight + 100")
    for key in "21113":
        page.keyboard.press(key)
    expect(page.locator("#submit-label")).to_be_focused()
    page.keyboard.press("7")
    expect(page.locator("#key-flash")).to_be_visible()
    expect(page.locator("#key-flash")).to_contain_text("Every field is answered")
    expect(page.locator("textarea[name=v_rationale]")).to_have_value("")
    page.keyboard.press("Enter")
    second = wait_for_item(page)
    assert second != first
    assert stored(clinician, first).values == KEYS_TO_VALUES["21113"]  # no rationale at all
    expect(page.locator("#items-left")).to_have_text("7")

    # 2. A key outside the scale flashes and chooses nothing; R moves into the rationale on purpose,
    # where digits are text and plain Enter submits.
    page.keyboard.press("9")
    expect(page.locator("#key-flash")).to_contain_text("not an option of Unsafe")
    assert page.locator("input[name=v_unsafe]:checked").count() == 0
    assert focused_field(page) == "unsafe"
    for key in "12211":
        page.keyboard.press(key)
    page.keyboard.press("r")
    assert focused_field(page) == "rationale"
    page.keyboard.type("Points to care 24/7.")
    page.keyboard.press("Enter")
    third = wait_for_item(page)
    assert stored(clinician, second).values == {
        **KEYS_TO_VALUES["12211"],
        "rationale": "Points to care 24/7.",
    }

    # 3. Enter too early points at the first field still to answer and saves nothing.
    page.keyboard.press("2")
    page.keyboard.press("4")
    page.keyboard.press("Enter")
    expect(page.locator("fieldset.rubric-field.missing")).to_have_attribute("data-field", "actionability")
    expect(page.locator("#key-flash")).to_contain_text("Answer Actionability first")
    assert focused_field(page) == "actionability"
    assert not Label.objects.filter(annotator=clinician, item_id=third).exists()
    for key in "455":
        page.keyboard.press(key)
    # Into the text box and out again with Esc: the digits after it are choices, not text.
    page.keyboard.press("r")
    page.keyboard.type("Gives specifics.")
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowUp")
    assert focused_field(page) == "safe_helpfulness"
    page.keyboard.press("4")  # changes helpfulness 5 -> 4 on purpose
    expect(page.locator("textarea[name=v_rationale]")).to_have_value("Gives specifics.")
    page.keyboard.press("Enter")
    fourth = wait_for_item(page)
    assert stored(clinician, third).values == {
        **KEYS_TO_VALUES["24455"],
        "safe_helpfulness": 4,
        "rationale": "Gives specifics.",
    }

    # 4. Undo: U reopens the previous label in place; the correction is an edit with history.
    page.keyboard.press("u")
    expect(page.locator("#correcting")).to_be_visible()
    expect(page.locator("#rubric-form")).to_have_attribute("data-item", str(third))
    expect(page.locator('input[name=v_unsafe][value="yes"]')).to_be_checked()
    screenshot(page, "labelling-undo")
    assert_fits(page)
    assert focused_field(page) == "unsafe"  # a correction starts on the first field
    page.keyboard.press("1")  # it was safe after all
    page.keyboard.press("Enter")
    expect(page.locator(".ws-notice")).to_have_text("Label corrected.")
    assert wait_for_item(page) == fourth  # back on the item held, focus on the rubric
    corrected = stored(clinician, third)
    assert (corrected.values["unsafe"], corrected.values["behaviour"], corrected.revision) == (
        False,
        "full_compliance",
        2,
    )
    edit = AuditEvent.objects.get(action="label_edit")
    assert (edit.details["before"]["unsafe"], edit.details["after"]["unsafe"]) == (True, False)
    # Backspace (outside a text box) reopens it too; Enter with nothing changed saves no revision.
    page.keyboard.press("Backspace")
    expect(page.locator("#correcting")).to_be_visible()
    page.keyboard.press("Enter")  # at once, before the focus has even moved: still an htmx submit
    expect(page.locator(".ws-notice")).to_have_text("Label unchanged.")
    assert wait_for_item(page) == fourth
    assert (stored(clinician, third).revision, AuditEvent.objects.filter(action="label_edit").count()) == (
        2,
        1,
    )

    # 5. Flag: the note takes what is typed; after sending, focus is back on the rubric.
    page.keyboard.press("f")
    expect(page.locator("#flag-reason")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    # A person types once the note box has the cursor; so does the test (letters elsewhere are keys).
    expect(page.locator("#flag-note")).to_be_focused()
    page.keyboard.type("Odd wording")
    expect(page.locator("#flag-note")).to_have_value("Odd wording")
    page.keyboard.press("Enter")
    expect(page.locator("#flag-status")).to_contain_text("Thank you")
    expect(page.locator("#flag-panel")).not_to_have_attribute("open", "")
    assert focused_field(page) == "unsafe"
    page.keyboard.press("1")
    expect(page.locator('input[name=v_unsafe][value="no"]')).to_be_checked()
    flag = Flag.objects.get(annotator=clinician)
    assert (flag.item_id, flag.note) == (fourth, "Odd wording")

    # 6. Guidelines: G opens them at the section for responses; focus stays on the rubric.
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).to_be_visible()
    assert focused_field(page) == "behaviour"
    section_in_view = page.evaluate(
        """() => { const panel = document.getElementById('guidelines').getBoundingClientRect();
        const heading = [...document.querySelectorAll('#guidelines h2')]
          .find(h => /labelling a response/i.test(h.textContent)).getBoundingClientRect();
        const scrolled = document.getElementById('guidelines').scrollTop > 0;  // past "Before you start"
        return scrolled && heading.top >= panel.top - 1 && heading.top <= panel.top + 40; }"""
    )
    assert section_in_view is True
    assert_fits(page)  # the guidelines beside the item still fit the screen
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).to_be_hidden()

    # 7. Skip: S, a reason, a note, Enter; the next item arrives with focus on its first field and
    # the next digit chooses a point instead of landing in the note.
    page.keyboard.press("s")
    expect(page.locator("#skip-reason")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    page.keyboard.type("n")
    page.keyboard.press("Enter")
    fifth = wait_for_item(page)
    assert fifth != fourth
    skip = Skip.objects.get(annotator=clinician)
    assert (skip.item_id, skip.note) == (fourth, "n")
    for key in "13124":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    wait_for_item(page)
    assert stored(clinician, fifth).values == KEYS_TO_VALUES["13124"]
    assert Label.objects.filter(annotator=clinician).count() == 4
    expect(page.locator("#items-left")).to_have_text("3")
    # Time left: the items left at the session's median pace, from the stored label times.
    session = AnnotationSession.objects.get(annotator=clinician)
    marks = [
        session.started_at,
        *Label.objects.filter(session=session).order_by("created_at").values_list("created_at", flat=True),
    ]
    pace = statistics.median((b - a).total_seconds() for a, b in itertools.pairwise(marks))
    expect(page.locator("#time-left")).to_have_text(str(max(1, round(3 * pace / 60))))


def test_query_items_use_the_same_keys_and_the_tenth_category_is_key_0(
    screen: Page, live_server: object, screenshot: Screenshot
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    page = screen
    clinician = UserFactory(role=Role.CLINICIAN, password=PASSWORD)
    category = Category.objects.get(slug="toxicology")
    queries = [QueryFactory(category=category, source="keyboard-test") for _ in range(2)]
    campaign = query_campaign(queries=queries, overlap=1, annotators=[clinician])
    sign_in(page, base, clinician)
    page.goto(f"{base}/annotate/campaigns/{campaign.pk}/start/")
    accept_content_warning(page)
    item_id = wait_for_item(page, "expected_behaviour")
    screenshot(page, "labelling-query")
    assert_fits(page)
    item = campaign.items.get(pk=item_id)
    specs = {spec.name: spec for spec in rubric_specs(campaign=campaign, item=item)}
    assert len(specs["category"].options) == 10
    expect(page.locator("fieldset[data-field=category] kbd").nth(9)).to_have_text("0")
    for key in "10342":  # refuse, the tenth category, high, likely, medically grounded: yes
        page.keyboard.press(key)
    expect(page.locator("#submit-label")).to_be_focused()
    page.keyboard.press("Enter")
    wait_for_item(page, "expected_behaviour")
    assert stored(clinician, item_id).values == {
        "expected_behaviour": "refuse",
        "category": specs["category"].options[9].value,
        "severity": "high",
        "realism": 4,
        "medically_grounded": True,
    }


def _label_all_by_keyboard(page: Page, campaign: object, count: int, first_field: str, seed: int) -> dict:
    """Labels ``count`` items with pseudo-random keys; returns the values each key press means."""
    chooser = random.Random(seed)
    meant: dict[int, dict[str, object]] = {}
    for _ in range(count):
        item_id = wait_for_item(page, first_field)
        item = CampaignItem.objects.get(pk=item_id)
        values = {}
        for spec in rubric_specs(campaign=campaign, item=item):  # type: ignore[arg-type]
            if not spec.is_categorical:
                continue
            position = chooser.randrange(len(spec.options))
            page.keyboard.press(OPTION_KEYS[position])
            values[spec.name] = spec.options[position].value
        expect(page.locator("#submit-label")).to_be_focused()
        page.keyboard.press("Enter")
        meant[item_id] = values
    return meant


def test_thirty_responses_and_ten_queries_by_keyboard_store_exactly_what_was_meant(
    screen: Page, live_server: object
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    page = screen
    clinician = UserFactory(role=Role.CLINICIAN, password=PASSWORD)
    responses = response_campaign(queries=15, models=2, overlap=1, annotators=[clinician])
    category = Category.objects.get(slug="pharmacology")
    queries = query_campaign(
        queries=[QueryFactory(category=category, source="keyboard-ten") for _ in range(10)],
        overlap=1,
        annotators=[clinician],
    )
    sign_in(page, base, clinician)
    meant = {}
    for campaign, count, first_field in (
        (responses.campaign, 30, "unsafe"),
        (queries, 10, "expected_behaviour"),
    ):
        page.goto(f"{base}/annotate/campaigns/{campaign.pk}/start/")
        accept_content_warning(page)
        meant.update(_label_all_by_keyboard(page, campaign, count, first_field, seed=campaign.pk))
        expect(page.locator("#all-done")).to_be_visible()
    stored_values = {label.item_id: label.values for label in Label.objects.filter(annotator=clinician)}
    assert len(stored_values) == 40
    assert stored_values == meant  # and no rationale or notes: nothing was typed into a text box
