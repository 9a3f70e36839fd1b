"""Pages under the Content-Security-Policy: the API docs (Swagger UI) and the no-JavaScript pages
render without a CSP violation in the console."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_api_docs_and_plain_pages_render_under_the_csp(open_page, project, alice):
    admin = open_page()
    admin.login("alice")
    response = admin.page.goto(admin.base_url + "/api/docs/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    admin.page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert admin.page.locator(".swagger-ui .opblock").count() > 10
    admin.page.goto(admin.base_url + "/plain/")
    admin.page.wait_for_selector("header")
    # The stylesheet (once an inline <style>) applies: body margin 1.5rem.
    assert admin.page.evaluate("getComputedStyle(document.body).marginTop") == "24px"
    admin.check_clean()
