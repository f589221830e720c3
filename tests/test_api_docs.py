"""The API docs (/docs, /redoc) load from the product itself: no CDN, so they work offline."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

# Every address a docs page makes the browser load: tags' src/href, ReDoc's spec-url, the
# OpenAPI url in Swagger UI's script.
REFERENCE = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|\burl:\s*'([^']*)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_only_from_the_api(api: httpx.AsyncClient, page: str) -> None:
    response = await api.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    html = response.text
    # No other host, written as a link or anywhere in the page's scripts.
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), html
    references = [a or b for a, b in REFERENCE.findall(html)]
    scripts = [ref for ref in references if ref.endswith(".js")]
    assert scripts, html  # the page's JavaScript (Swagger UI or ReDoc) is among them
    for reference in references:
        parts = urlsplit(reference)
        assert not parts.scheme and not parts.netloc and reference.startswith("/"), reference
        asset = await api.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference


async def test_every_error_is_documented_as_the_problem_document_it_is(
    api: httpx.AsyncClient,
) -> None:
    """Errors are served as `application/problem+json`: the schema says so for every 4xx and
    5xx of every operation (schemathesis' content-type check holds it to that), and /health's
    own 503 is its JSON status, with Retry-After."""
    spec = (await api.get("/openapi.json")).json()
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert "503" in responses, where
            if "requestBody" in operation:
                assert "413" in responses, where
            for status, response in responses.items():
                if int(status) < 400:
                    continue
                content = response["content"]
                if path == "/health":
                    assert content == {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                    }
                else:
                    assert content == {"application/problem+json": {"schema": problem}}, where
                if status == "503":
                    assert response["headers"]["Retry-After"]["required"], where
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    # And what is served is what is documented.
    response = await api.get("/orders", params={"limit": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
