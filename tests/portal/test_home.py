"""The home page: one section per role the user holds, each showing only what exists today."""

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertInHTML, assertNotContains, assertRedirects

from accounts.roles import Role
from querybank.models import Category
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db

HOME = reverse("home")
QUERY_LIST = reverse("querybank:query_list")
RESEARCHER_NOTICE = "Query text is not available to your account."
SECRET_TEXT = "Synthetic home page query about where to find safety advice"


@pytest.fixture
def bank() -> None:
    """Three toxicology queries and one pharmacology query, from two sources."""
    toxicology = Category.objects.get(slug="toxicology")
    pharmacology = Category.objects.get(slug="pharmacology")
    QueryFactory(category=toxicology, source="test", text=SECRET_TEXT)
    QueryFactory.create_batch(2, category=toxicology, source="test")
    QueryFactory(category=pharmacology, source="medsafetybench")


def home_page(user: object) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


def category_row(slug: str, name: str, count: int) -> str:
    return f'<tr><td><a href="{QUERY_LIST}?category={slug}">{name}</a></td><td class="num">{count}</td></tr>'


def test_anonymous_visitor_is_sent_to_login() -> None:
    response = Client().get(HOME)
    assertRedirects(response, f"{reverse('account_login')}?next={HOME}", fetch_redirect_response=False)


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.ADJUDICATOR])
def test_clinical_roles_see_the_query_bank_with_counts_per_category(bank: None, role: Role) -> None:
    html = home_page(UserFactory(role=role))
    section_id = "section-clinician" if role == Role.CLINICIAN else "section-adjudicator"
    assert f'id="{section_id}"' in html
    assert 'id="section-query-bank"' in html
    assertInHTML(category_row("toxicology", "Toxicology", 3), html)
    assertInHTML(category_row("pharmacology", "Pharmacology", 1), html)
    assertInHTML(category_row("fetal-harm", "Fetal harm", 0), html)
    assertInHTML('<span class="stat-inline">4</span>', html)
    assert f'href="{QUERY_LIST}"' in html
    # Nothing from the other roles, and the query text itself is on the query pages, not here.
    for other in ("section-maintainer", "section-data-committee", "section-researcher"):
        assert f'id="{other}"' not in html
    assert SECRET_TEXT not in html
    work = "/annotate/" if role == Role.CLINICIAN else "/annotate/adjudication/"
    assert f'href="{work}"' in html  # the role's own work queue


def test_maintainer_sees_counts_by_source_and_taxonomy_and_every_tool(bank: None) -> None:
    maintainer = UserFactory(role=Role.MAINTAINER, is_staff=True)
    html = home_page(maintainer)
    assert 'id="section-maintainer"' in html
    assertInHTML(
        '<table class="table table-compact" id="queries-by-source">'
        '<thead><tr><th scope="col">Source</th><th scope="col" class="num">Queries</th></tr></thead>'
        '<tbody><tr><td>medsafetybench</td><td class="num">1</td></tr>'
        '<tr><td>test</td><td class="num">3</td></tr></tbody></table>',
        html,
    )
    assertInHTML(
        '<table class="table table-compact" id="queries-by-taxonomy">'
        '<thead><tr><th scope="col">Taxonomy</th><th scope="col" class="num">Queries</th></tr></thead>'
        '<tbody><tr><td>MedHarm</td><td class="num">4</td></tr></tbody></table>',
        html,
    )
    for url, label in [
        (reverse("querybank:query_import"), "Import queries"),
        (reverse("querybank:query_export", args=["jsonl"]), "Export JSONL"),
        (reverse("querybank:query_export", args=["csv"]), "Export CSV"),
        (reverse("invite"), "Invite a colleague"),
        (reverse("admin:index"), "Django admin"),
    ]:
        assertInHTML(
            f'<a class="btn {"btn-primary" if label == "Import queries" else "btn-secondary"}" '
            f'href="{url}">{label}</a>',
            html,
        )


def test_maintainer_without_staff_flag_gets_no_admin_link_and_an_empty_bank_says_so() -> None:
    html = home_page(UserFactory(role=Role.MAINTAINER))
    assert 'id="section-maintainer"' in html
    assert f'href="{reverse("admin:index")}"' not in html
    assert "The query bank is empty." in html
    assert 'id="queries-by-source"' not in html


def test_data_committee_sees_its_review_queue_counts(bank: None) -> None:
    html = home_page(UserFactory(role=Role.DATA_COMMITTEE))
    assert 'id="section-data-committee"' in html
    assert "0 access requests and 0 credential applications waiting." in html
    assert 'href="/access/review/"' in html
    # The committee does not read query text through its role, so it gets no counts or link either.
    assert 'id="section-query-bank"' not in html
    assert f'href="{QUERY_LIST}"' not in html
    assert SECRET_TEXT not in html


def test_researcher_sees_the_explanation_and_categories_without_text_or_counts(bank: None) -> None:
    html = home_page(UserFactory(role=Role.RESEARCHER))
    assert 'id="section-researcher"' in html
    assert RESEARCHER_NOTICE in html
    assert "only through an access request approved by the data committee" in html
    toxicology = Category.objects.get(slug="toxicology")
    assertInHTML(f"<li><h4>{toxicology.name}</h4><p>{toxicology.description}</p></li>", html)
    # All 19 seeded categories are listed by name, across both taxonomies.
    assert html.count("<h4>") == Category.objects.count() == 19
    assert SECRET_TEXT not in html
    assert 'id="section-query-bank"' not in html
    assert 'class="num"' not in html
    assert f'href="{QUERY_LIST}' not in html


def test_a_user_with_several_roles_sees_each_section(bank: None) -> None:
    user = UserFactory(role=Role.CLINICIAN)
    user.groups.add(*UserFactory(role=Role.RESEARCHER).groups.all())
    html = home_page(user)
    assert 'id="section-clinician"' in html
    assert 'id="section-researcher"' in html
    assert 'id="section-query-bank"' in html
    assertInHTML('<span class="tag tag-role">Clinician annotator</span>', html)
    assertInHTML('<span class="tag tag-role">Researcher</span>', html)
    assertInHTML(category_row("toxicology", "Toxicology", 3), html)


def test_a_user_without_a_role_is_told_who_assigns_one(bank: None) -> None:
    html = home_page(UserFactory())
    assert "Your account has no role on the platform" in html
    for section in ("clinician", "adjudicator", "maintainer", "data-committee", "researcher", "query-bank"):
        assert f'id="section-{section}"' not in html


def test_researcher_is_refused_the_query_bank_with_the_same_explanation(bank: None) -> None:
    client = Client()
    client.force_login(UserFactory(role=Role.RESEARCHER))
    response = client.get(QUERY_LIST)
    assert response.status_code == 403
    assertNotContains(response, SECRET_TEXT, status_code=403)
    assert RESEARCHER_NOTICE in response.content.decode()


def test_categories_are_listed_in_their_taxonomy_order(bank: None) -> None:
    # Move the first-created category to the end: the page must follow ``position``, not storage order.
    Category.objects.filter(slug="toxicology").update(position=99)
    html = home_page(UserFactory(role=Role.CLINICIAN))
    medharm = list(Category.objects.filter(taxonomy__slug="medharm").order_by("position"))
    assert medharm[0].slug == "pharmacology"
    assert medharm[-1].slug == "toxicology"
    positions = [html.index(f">{category.name}</a>") for category in medharm]
    assert positions == sorted(positions)


def test_the_page_title_is_plain_text(bank: None) -> None:
    html = home_page(UserFactory(role=Role.CLINICIAN))
    title = html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title.strip() == "Home · MedHarm"
