"""The README says what the code does: its request bodies and its order statuses.

Every request body the README shows is one the API takes, checked against its OpenAPI schema.

The README shows bodies two ways: JSON (`curl -d '{...}'`, `{"comment": "..."}`), validated as
it stands, and a short form, `{name, optional?, choice: a|b}`, whose fields must be the body's
(none the API refuses, every required one shown, `?` exactly on those with a default, the
same choices), and an instance built from those fields must validate. A body belongs to the
endpoint written before it: in a table row, the row's endpoints in order (`{a} / {b}`); in a
paragraph or list item, the last endpoint named before it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from api.main import create_app
from domain.statuses import OrderStatus
from settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
WRITES = {"POST", "PUT", "PATCH"}
ENDPOINT = re.compile(
    r"^((?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*\s+)?(/\S*)$"
)
SPAN = re.compile(r"`([^`]+)`")
FIELD = re.compile(r"^([a-z_][a-z0-9_]*)(\?)?(?::\s*(\S+))?$")


@dataclass(frozen=True)
class Shown:
    """A body as the README shows it, and the endpoint it is for."""

    line: int
    method: str
    path: str
    body: str


@dataclass
class _Endpoints:
    """The endpoints named so far in one table cell or paragraph (`/reject` after
    `POST /orders/{order_no}/approve` is its sibling)."""

    paths: list[str]
    named: list[tuple[str, str]]

    def add(self, span: str) -> bool:
        match = ENDPOINT.match(span.strip())
        if match is None:
            return False
        methods, path = match.groups()
        path = path.split("?")[0]
        method = (methods or "").split()[0] if methods else ""
        if not method:
            method = self.named[-1][0] if self.named else "POST"
        if self.named and _template(path, self.paths) is None:
            base = self.named[-1][1].rsplit("/", 1)[0]
            path = base + path
        for each in method.split("/"):
            self.named.append((each, path))
        return True


def _template(path: str, templates: list[str]) -> str | None:
    """The OpenAPI path `path` is (a template like `/returns/{id}/x`, or a concrete path)."""
    found = []
    for template in templates:
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found.append(template)
    # A literal segment beats a parameter: the fewest parameters wins.
    return min(found, key=lambda t: t.count("{")) if found else None


def _spans(text: str) -> list[str]:
    return SPAN.findall(text.replace("\n", " "))


def shown_bodies(readme: str, paths: list[str]) -> list[Shown]:
    """Every request body the README shows with the endpoint it belongs to."""
    shown: list[Shown] = []
    lines = readme.splitlines()
    prose: list[tuple[int, str]] = []
    in_code = False
    code: list[str] = []
    code_start = 0
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if in_code:
                shown += _curl_bodies("\n".join(code), code_start)
                code = []
            in_code, code_start = not in_code, number + 1
            continue
        if in_code:
            code.append(line)
        elif line.startswith("|"):
            shown += _row_bodies(line, number, paths)
        else:
            prose.append((number, line))
    shown += _prose_bodies(prose, paths)
    return shown


def _row_bodies(row: str, number: int, paths: list[str]) -> list[Shown]:
    cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
    if len(cells) < 3:
        return []
    endpoints = _Endpoints(paths, [])
    for span in _spans(cells[0]):
        endpoints.add(span)
    writes = [(m, p) for m, p in endpoints.named if m in WRITES]
    # What follows an arrow is the answer, not the request.
    bodies = [s for s in _spans(cells[2].split("→")[0]) if s.startswith("{")]
    if not writes or not bodies:
        return []
    assert len(bodies) == len(writes), f"README line {number}: which body is whose? {row}"
    return [
        Shown(number, method, path, body.replace("\\|", "|"))
        for (method, path), body in zip(writes, bodies, strict=True)
    ]


def _prose_bodies(prose: list[tuple[int, str]], paths: list[str]) -> list[Shown]:
    """Paragraphs and list items: a body belongs to the last endpoint named before it."""
    shown: list[Shown] = []
    units: list[list[tuple[int, str]]] = []
    for number, line in prose:
        starts = not line.strip() or line.startswith(("- ", "#"))
        if starts or not units:
            units.append([])
        if line.strip():
            units[-1].append((number, line))
    for unit in units:
        endpoints = _Endpoints(paths, [])
        text = " ".join(line for _, line in unit)
        for span in _spans(text):
            if endpoints.add(span):
                continue
            if span.startswith("{") and endpoints.named:
                method, path = endpoints.named[-1]
                at = next((n for n, ln in unit if span.split(",")[0] in ln), unit[0][0])
                shown.append(Shown(at, method, path, span.replace("\\|", "|")))
    return shown


def _curl_bodies(block: str, first_line: int) -> list[Shown]:
    shown: list[Shown] = []
    joined = block.replace("\\\n", " ")
    for match in re.finditer(r"^curl (.*?)(?=^curl |\Z)", joined, re.MULTILINE | re.DOTALL):
        command = match.group(1)
        body = re.search(r"-d '(\{.*?\})'", command, re.DOTALL)
        url = re.search(r"localhost:\d+(/\S*)", command)
        if body is None or url is None:
            continue
        method = re.search(r"-X (\w+)", command)
        line = first_line + block[: match.start()].count("\n")
        shown.append(
            Shown(line, method.group(1) if method else "POST", url.group(1), body.group(1))
        )
    return shown


# --- checking a body against the schema ------------------------------------------------------


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        else:
            return schema


def _sample(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A value `schema` takes (the smallest that fits)."""
    schema = _resolve(schema, spec)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _sample(schema["properties"][name], spec) for name in schema.get("required", [])
        }
    if kind == "array":
        return [_sample(schema.get("items", {}), spec)] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return True
    formats = {"date": "2030-01-02", "date-time": "2030-01-02T03:04:05Z"}
    return formats.get(schema.get("format", ""), "X-1" * max(1, schema.get("minLength", 1)))


def _problems(shown: Shown, spec: dict[str, Any]) -> list[str]:
    template = _template(shown.path, list(spec["paths"]))
    if template is None:
        return [f"no endpoint {shown.path}"]
    operation = spec["paths"][template].get(shown.method.lower())
    if operation is None:
        return [f"no {shown.method} {template}"]
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return [f"{shown.method} {template} takes no JSON body"]
    schema = content["application/json"]["schema"]
    validator = Draft202012Validator(schema | {"components": spec["components"]})
    try:
        instance = json.loads(shown.body)
    except json.JSONDecodeError:
        instance = None
    if instance is not None:
        return [error.message for error in validator.iter_errors(instance)]
    return _short_form_problems(shown.body, _resolve(schema, spec), spec, validator)


def _short_form_problems(
    body: str, schema: dict[str, Any], spec: dict[str, Any], validator: Draft202012Validator
) -> list[str]:
    inner = body.strip()[1:-1].strip()
    fields = [FIELD.match(item.strip()) for item in inner.split(",")] if inner else []
    if not all(fields):
        return [f"cannot read {body} (write `{{name, optional?, choice: a|b}}`)"]
    properties, required = schema.get("properties", {}), set(schema.get("required", []))
    problems, instance = [], {}
    for field in fields:
        assert field is not None
        name, optional, choices = field.groups()
        if name not in properties:
            problems.append(f"{name}: the API takes no such field")
            continue
        if bool(optional) == (name in required):
            said, has = ("optional", "requires it") if optional else ("required", "has a default")
            problems.append(f"{name}: the README marks it {said}, the API {has}")
        enum = _resolve(properties[name], spec).get("enum")
        if choices and set(choices.split("|")) != set(enum or []):
            problems.append(f"{name}: the API's choices are {enum}, README says {choices}")
        instance[name] = _sample(properties[name], spec)
    missing = required - {field.group(1) for field in fields if field}
    problems += [f"{name}: required by the API, not shown" for name in sorted(missing)]
    return problems + [error.message for error in validator.iter_errors(instance)]


@pytest.fixture(scope="module")
def spec(settings: Settings) -> dict[str, Any]:
    return create_app(settings).openapi()


def test_the_readme_shows_the_bodies_it_should(spec: dict[str, Any]) -> None:
    """The reader above finds the README's bodies: a change in how the README writes them
    must not make this test check nothing."""
    shown = shown_bodies(README.read_text(), list(spec["paths"]))
    found = {(s.method, _template(s.path, list(spec["paths"]))) for s in shown}
    for expected in [
        ("POST", "/orders"),
        ("PATCH", "/orders/{order_no}"),
        ("POST", "/orders/{order_no}/hold"),
        ("POST", "/orders/{order_no}/release"),
        ("POST", "/orders/{order_no}/approve"),
        ("POST", "/orders/{order_no}/payments"),
        ("POST", "/orders/{order_no}/returns"),
        ("POST", "/returns/{return_no}/inspect"),
        ("POST", "/shipments/{shipment_id}/dispatch"),
    ]:
        assert expected in found, (expected, sorted(found, key=str))
    assert len(shown) >= 20


def test_every_body_the_readme_shows_validates_against_the_api(spec: dict[str, Any]) -> None:
    wrong = {
        f"README line {s.line}: {s.method} {s.path} {s.body}": problems
        for s in shown_bodies(README.read_text(), list(spec["paths"]))
        if (problems := _problems(s, spec))
    }
    assert not wrong, json.dumps(wrong, indent=1, ensure_ascii=False)


@pytest.mark.parametrize(
    ("body", "wrong"),
    [
        ('{"reason": "x", "by": "li"}', True),  # who acts comes from the token
        ('{"reason": "x"}', False),
        ("{reason, by, kind?}", True),
        ("{reason, kind?: manual|credit}", False),
        ("{reason, kind?: manual|later}", True),
        ("{reason?, kind?}", True),  # reason is required
        ("{kind?}", True),
    ],
)
def test_the_check_refuses_what_the_api_refuses(
    spec: dict[str, Any], body: str, wrong: bool
) -> None:
    shown = Shown(1, "POST", "/orders/{id}/hold", body)
    assert bool(_problems(shown, spec)) is wrong, _problems(shown, spec)


def test_the_readme_lists_every_status_with_the_codes_label() -> None:
    """`RECEIVED` too: it is the timeline's first entry. `INVALID` is a refused entry, which
    is not an order (the README says so where it describes entry)."""
    text = README.read_text().split("Statuses:", 1)[1].split("\n\n", 1)[0]
    listed = dict(re.findall(r"`([A-Z_]+)` ([^,.\s]+)", text))
    assert listed == {
        status.value: status.label_zh for status in OrderStatus if status is not OrderStatus.INVALID
    }
