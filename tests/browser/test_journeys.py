"""The main journeys in a real browser: sign in, the home page per role, the query bank with htmx
filters and pages, the second-factor step, and the researcher who gets no query text."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.roles import Role
from querybank.models import Category
from tests.browser.conftest import ConsoleLog, Screenshot, totp_code
from tests.factories import QueryFactory, UserFactory, totp_enrol

pytestmark = [pytest.mark.browser, pytest.mark.portable]

PASSWORD = "a-long-browser-test-password-7"
SEARCH_WORD = "leaflet"


@pytest.fixture
def bank() -> dict[str, int]:
    """30 toxicology and 4 pharmacology queries (two pages of toxicology); 3 mention the search word."""
    toxicology = Category.objects.get(slug="toxicology")
    pharmacology = Category.objects.get(slug="pharmacology")
    QueryFactory(
        category=toxicology,
        external_id="case-0001",
        text="Synthetic question asking where to find a patient safety leaflet about household products.",
        source="browser-test",
        source_file="synthetic.jsonl",
        source_row=1,
    )
    QueryFactory(category=toxicology, text=f"Synthetic question asking for a {SEARCH_WORD} for a family.")
    QueryFactory.create_batch(28, category=toxicology)
    QueryFactory(category=pharmacology, text=f"Synthetic question asking for a {SEARCH_WORD} on medicines.")
    QueryFactory.create_batch(3, category=pharmacology)
    return {"toxicology": 30, "pharmacology": 4, "all": 34, "search": 3}


def showing(total: int, first: int, last: int) -> re.Pattern[str]:
    """The result count of a page that shows rows ``first`` to ``last`` (joined by an en dash)."""
    return re.compile(rf"{total} queries · showing {first}\u2013{last}")


def sign_in(page: Page, base_url: str, user: User, *, secret: str | None = None) -> None:
    """Through the real form: e-mail and password, then the authenticator code if one is asked."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    if secret is not None:
        expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/$"))
        page.get_by_label("Code").fill(totp_code(secret))
        page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{base_url}/")


def shown_categories(page: Page) -> list[str]:
    return page.locator("#query-table tbody td.col-category").evaluate_all(
        "cells => cells.map(cell => cell.dataset.category)"
    )


def test_clinician_signs_in_and_filters_searches_and_pages_the_query_bank(
    page: Page, live_server: object, bank: dict[str, int], screenshot: Screenshot
) -> None:
    base = live_server.url
    clinician = UserFactory(role=Role.CLINICIAN, password=PASSWORD)

    page.goto(f"{base}/accounts/login/")
    screenshot(page, "login")
    sign_in(page, base, clinician)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {clinician.email}")
    expect(page.locator("#section-clinician")).to_be_visible()
    expect(page.locator("#section-query-bank tr", has_text="Toxicology")).to_contain_text("30")
    screenshot(page, "home-clinician")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Query bank").click()
    expect(page).to_have_url(f"{base}/queries/")
    expect(page.locator("#result-count")).to_have_text(showing(34, 1, 25))
    expect(page.locator("#query-table tbody tr")).to_have_count(25)
    screenshot(page, "query-list")

    # A full page load would drop this marker: its survival proves a swap was htmx's.
    page.evaluate("window.medharmMarker = 'still here'")

    # (1) Category filter: choosing an option swaps the table and pushes the URL.
    page.get_by_label("Category").select_option("pharmacology")
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*4 queries\s*$"))
    assert shown_categories(page) == ["pharmacology"] * 4
    expect(page).to_have_url(re.compile(r"/queries/\?.*category=pharmacology"))
    assert page.evaluate("window.medharmMarker") == "still here"
    # Back and Forward reload the page from the server: table and filter controls match the URL.
    page.go_back()
    expect(page.locator("#result-count")).to_have_text(showing(34, 1, 25))
    expect(page.get_by_label("Category")).to_have_value("")
    page.go_forward()
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*4 queries\s*$"))
    expect(page.get_by_label("Category")).to_have_value("pharmacology")
    # htmx keeps no snapshot of the sensitive page in the browser's storage.
    stored = page.evaluate("JSON.stringify(sessionStorage) + JSON.stringify(localStorage)")
    assert "Synthetic" not in stored

    page.evaluate("window.medharmMarker = 'still here'")

    # (2) Search, across all categories, then narrowed by category again.
    page.get_by_label("Category").select_option("")
    page.get_by_label("Search").fill(SEARCH_WORD)
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*3 queries\s*$"))
    texts = page.locator("#query-table tbody td.col-text").all_inner_texts()
    assert len(texts) == 3
    assert all(SEARCH_WORD in text for text in texts)
    page.get_by_label("Category").select_option("toxicology")
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*2 queries\s*$"))
    assert shown_categories(page) == ["toxicology", "toxicology"]
    expect(page).to_have_url(
        re.compile(rf"q={SEARCH_WORD}.*category=toxicology|category=toxicology.*q={SEARCH_WORD}")
    )

    # (3) Pages keep the filters: 30 toxicology queries make two pages.
    page.get_by_label("Search").fill("")
    expect(page.locator("#result-count")).to_have_text(showing(30, 1, 25))
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next →").click()
    expect(page.locator("#result-count")).to_have_text(showing(30, 26, 30))
    assert shown_categories(page) == ["toxicology"] * 5
    expect(page).to_have_url(re.compile(r"category=toxicology.*page=2"))
    expect(page.locator(".pager .current")).to_have_text("2")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="← Previous").click()
    expect(page.locator("#result-count")).to_have_text(showing(30, 1, 25))
    assert page.evaluate("window.medharmMarker") == "still here"

    # (4) The detail page: text, facts, source with file and row, and the edit history.
    page.get_by_role("link", name="case-0001").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Query case-0001")
    expect(page.locator(".query-text")).to_contain_text("patient safety leaflet")
    source = page.get_by_role("region", name="Source")
    expect(source).to_contain_text("browser-test")
    expect(source).to_contain_text("synthetic.jsonl")
    expect(source.locator("dd").nth(3)).to_have_text("1")
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("Created")
    screenshot(page, "query-detail")


def test_query_bank_filters_work_without_javascript(
    page_without_javascript: Page, live_server: object, bank: dict[str, int], console: ConsoleLog
) -> None:
    page = page_without_javascript
    base = live_server.url
    clinician = UserFactory(role=Role.CLINICIAN, password=PASSWORD)
    sign_in(page, base, clinician)
    page.goto(f"{base}/queries/")
    page.get_by_label("Category").select_option("toxicology")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/queries/\?q=&category=toxicology$"))
    expect(page.locator("#result-count")).to_have_text(showing(30, 1, 25))
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"category=toxicology&page=2$"))
    assert shown_categories(page) == ["toxicology"] * 5
    assert console.csp_violations == []


def test_maintainer_signs_in_with_password_then_authenticator_code(
    page: Page, live_server: object, bank: dict[str, int], screenshot: Screenshot
) -> None:
    base = live_server.url
    maintainer = UserFactory(role=Role.MAINTAINER, password=PASSWORD, mfa=False)
    secret = totp_enrol(maintainer)

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(maintainer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-Factor Authentication")
    screenshot(page, "mfa-step")

    # A wrong code is refused and the user stays on the second step.
    page.get_by_label("Code").fill("000000" if totp_code(secret) != "000000" else "111111")
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator(".field-errors, .alert-error")).to_contain_text("Incorrect code")
    expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/$"))

    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("#section-maintainer")).to_be_visible()
    expect(page.locator("#queries-by-source tbody tr")).to_have_count(2)
    expect(page.locator("#queries-by-source tr", has_text="browser-test")).to_contain_text("1")
    expect(page.locator("#queries-by-source tr", has_text="test")).to_have_count(2)
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute("href", "/queries/export.csv")
    screenshot(page, "home-maintainer")


def test_maintainer_without_a_second_factor_is_made_to_enrol_first(
    page: Page, live_server: object, screenshot: Screenshot
) -> None:
    base = live_server.url
    maintainer = UserFactory(role=Role.MAINTAINER, password=PASSWORD, mfa=False)
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(maintainer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # allauth asks for the password again before a second factor can be added to the account.
    expect(page).to_have_url(
        re.compile(r"/accounts/reauthenticate/\?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F")
    )
    screenshot(page, "reauthenticate")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/totp/activate/$"))
    expect(page.locator("#mfa-required-notice")).to_contain_text("must use two-factor authentication")
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert qr.evaluate("img => img.naturalWidth") > 0  # the data: URL rendered under the CSP
    screenshot(page, "mfa-activate")

    secret = page.get_by_label("Authenticator secret").input_value()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    expect(page.locator(".messages")).to_contain_text("activated")
    page.goto(f"{base}/")
    expect(page.locator("#section-maintainer")).to_be_visible()


def test_researcher_gets_no_query_text(
    page: Page, live_server: object, bank: dict[str, int], console: ConsoleLog, screenshot: Screenshot
) -> None:
    base = live_server.url
    researcher = UserFactory(role=Role.RESEARCHER, password=PASSWORD)
    sign_in(page, base, researcher)
    expect(page.locator("#researcher-access-notice")).to_contain_text(
        "released to a credentialed researcher only through an access request approved by the data committee"
    )
    expect(page.locator("#researcher-credential-status")).to_have_text("no profile yet")
    expect(page.locator("#section-researcher .category-list li")).to_have_count(Category.objects.count())
    main_nav = page.get_by_role("navigation", name="Main")
    expect(main_nav.get_by_role("link", name="Query bank")).to_have_count(0)
    assert "leaflet" not in page.content()
    screenshot(page, "home-researcher")

    console.expect_error("the server responded with a status of 403")
    response = page.goto(f"{base}/queries/")
    assert response is not None
    assert response.status == 403
    expect(page.locator("#researcher-access-notice")).to_be_visible()
    assert "leaflet" not in page.content()
    screenshot(page, "forbidden-researcher")
    detail = page.goto(f"{base}/queries/{Category.objects.get(slug='toxicology').queries.first().pk}/")
    assert detail is not None
    assert detail.status == 403


@pytest.mark.parametrize("role", [Role.ADJUDICATOR, Role.DATA_COMMITTEE])
def test_home_page_of_the_other_roles(
    page: Page, live_server: object, bank: dict[str, int], screenshot: Screenshot, role: Role
) -> None:
    base = live_server.url
    user = UserFactory(role=role, password=PASSWORD, mfa=False)
    secret = totp_enrol(user)  # both roles must use a second factor
    sign_in(page, base, user, secret=secret)
    section = "#section-adjudicator" if role == Role.ADJUDICATOR else "#section-data-committee"
    expect(page.locator(section)).to_be_visible()
    expect(page.locator("#section-query-bank")).to_have_count(1 if role == Role.ADJUDICATOR else 0)
    screenshot(page, f"home-{role.value.replace(' ', '-')}")


def test_account_pages_render_inside_the_layout_without_csp_violations(
    page: Page, live_server: object, console: ConsoleLog, screenshot: Screenshot
) -> None:
    base = live_server.url
    for path, heading, name in [
        ("/accounts/signup/", "Researcher sign-up", "signup"),
        ("/accounts/password/reset/", "Password Reset", "password-reset"),
    ]:
        page.goto(f"{base}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator("link[rel=stylesheet]")).to_have_count(1)
        expect(page.locator("main.entrance")).to_be_visible()
        screenshot(page, name)

    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Email").fill("new.researcher@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page).to_have_url(re.compile(r"/accounts/confirm-email/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify Your Email Address")
    screenshot(page, "verification-sent")

    user = UserFactory(role=Role.CLINICIAN, password=PASSWORD)
    sign_in(page, base, user)
    page.goto(f"{base}/accounts/2fa/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-Factor Authentication")
    screenshot(page, "mfa-index")
    page.goto(f"{base}/accounts/logout/")
    screenshot(page, "logout")
    page.get_by_role("main").get_by_role("button", name="Sign Out").click()
    expect(page).to_have_url(f"{base}/accounts/login/")
    assert console.csp_violations == []
