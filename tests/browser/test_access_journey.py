"""The researcher journey in a real browser: profile and credentials, the agreement and the request,
the committee's approval, the download and a scoped API token, revocation, and the audit trail."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from accounts.roles import Role
from audit.models import AuditEvent
from tests.access.world import cut
from tests.browser.conftest import ConsoleLog, _new_page, totp_code
from tests.factories import UserFactory, totp_enrol
from tests.scoring.factories import scoring_world

pytestmark = pytest.mark.browser

PASSWORD = "a-long-browser-test-password-7"


def sign_in(page: Page, base_url: str, email: str, *, secret: str | None = None) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    if secret is not None:
        expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/$"))
        page.get_by_label("Code").fill(totp_code(secret))
        page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{base_url}/")


def test_researcher_journey_from_profile_to_revoked_download(
    page: Page, browser: Browser, console: ConsoleLog, live_server, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    world = scoring_world(close=True)
    release = cut(world.maintainer, world.campaign.pk, "journey", sample=[world.queries[1].pk])
    researcher = UserFactory(role=Role.RESEARCHER, password=PASSWORD)
    committee = UserFactory(role=Role.DATA_COMMITTEE, password=PASSWORD, mfa=False)
    secret = totp_enrol(committee)
    base = live_server.url

    # The researcher completes the profile and applies.
    sign_in(page, base, researcher.email)
    page.get_by_role("link", name="Your data access").click()
    page.locator("#edit-profile").click()
    page.get_by_label("Full name", exact=True).fill("Dr Example Researcher")
    page.get_by_label("Institution", exact=True).fill("Example University")
    page.get_by_label("Position", exact=True).fill("Research fellow")
    page.get_by_label("ORCID iD", exact=True).fill("0000-0002-1825-0098")
    page.get_by_label("Institutional page", exact=True).fill("https://example.org/people/researcher")
    page.get_by_label("Reference name", exact=True).fill("Prof. Reference")
    page.get_by_label("Reference email", exact=True).fill("reference@example.org")
    page.get_by_label("Research area", exact=True).fill("Safety evaluation of medical language models.")
    console.expect_error("status of 400")  # the form with a wrong check digit comes back as a 400
    page.locator("#apply").click()
    expect(page.locator(".field-errors")).to_contain_text("check digit")
    page.get_by_label("ORCID iD", exact=True).fill("0000-0002-1825-0097")
    page.locator("#apply").click()
    expect(page.locator("#credential-status")).to_have_text("Awaiting the data committee")

    # The committee accepts, with a reason.
    committee_page = _new_page(browser, console)
    sign_in(committee_page, base, committee.email, secret=secret)
    committee_page.goto(f"{base}/access/review/")
    committee_page.locator("#application-table a").first.click()
    committee_page.get_by_label("Decision").select_option("accept")
    committee_page.get_by_label("Reason", exact=True).fill("Institutional page and ORCID record checked.")
    committee_page.locator("#decide").click()
    expect(committee_page.locator(".messages")).to_contain_text("Decision recorded")

    # The researcher signs the agreement and requests the release.
    page.goto(f"{base}/releases/{release.pk}/")
    page.locator("#request-access").click()
    expect(page.locator("#agreement-text")).to_contain_text("By signing this agreement")
    page.get_by_label("Purpose", exact=True).fill(
        "Measuring over-refusal of medical models on caution queries for a paper."
    )
    page.get_by_label("I have read the data use agreement above and agree to it.").check()
    page.locator("#submit-request").click()
    expect(page.locator("#request-state")).to_have_text("Pending review")

    # The committee approves for the default twelve months.
    committee_page.goto(f"{base}/access/review/")
    committee_page.locator("#pending-table a").first.click()
    committee_page.get_by_label("Decision").select_option("approve")
    committee_page.locator("#decide").click()
    expect(committee_page.locator(".messages")).to_contain_text("Decision recorded")

    # The researcher downloads the restricted labels and makes a token for the API.
    page.goto(f"{base}/releases/{release.pk}/")
    href = page.locator("#restricted-files a", has_text="restricted/csv/labels.csv").get_attribute("href")
    download = page.request.get(base + href)
    assert download.status == 200
    assert download.body().startswith(b'"label_id","campaign_id",')
    page.goto(f"{base}/access/tokens/")
    page.get_by_label("Name", exact=True).fill("analysis laptop")
    page.get_by_label(str(release)).check()
    page.locator("#issue-token").click()
    token = page.locator("#token-value").inner_text()
    assert token.startswith("mhr_")
    api = page.context.request
    rows = api.get(
        f"{base}/api/v1/releases/{release.pk}/tables/labels/?limit=2",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert rows.status == 200
    assert rows.json()["count"] == 16
    page.goto(f"{base}/access/tokens/")
    expect(page.locator("#token-value")).to_have_count(0)  # shown once
    expect(page.locator("#token-table")).to_contain_text(token[:10])

    # The committee revokes; the next download and API read are refused.
    committee_page.goto(f"{base}/access/review/")
    committee_page.locator("#decided-table a", has_text=researcher.email).click()
    committee_page.get_by_label("Decision").select_option("revoke")
    committee_page.get_by_label("Reason", exact=True).fill("End of the project.")
    committee_page.locator("#decide").click()
    expect(committee_page.locator(".messages")).to_contain_text("Decision recorded")
    console.expect_error("403")
    assert page.request.get(base + href).status == 403
    assert (
        api.get(
            f"{base}/api/v1/releases/{release.pk}/tables/labels/?limit=2",
            headers={"Authorization": f"Bearer {token}"},
        ).status
        == 403
    )
    page.goto(f"{base}/access/")
    expect(page.locator("#request-table .request-state")).to_have_text("Revoked")

    # Every step is in the audit trail, and the chain holds.
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "credential_apply",
        "credential_accept",
        "request_submit",
        "request_approve",
        "file_download",
        "token_issue",
        "api_read",
        "request_revoke",
    } <= actions
    committee_page.goto(f"{base}/access/review/releases/{release.pk}/report/")
    expect(committee_page.locator("#event-table")).to_contain_text("file_download")
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "chain intact" in out.getvalue()
    committee_page.context.close()
