"""Imports run one way: API → (Temporal) → workflows → domain; activities → store → domain;
inside the API, routes → services → deps, auth, errors, schemas. No cycles anywhere.

Read from the source with `ast` (every import, also one inside a function or under
`TYPE_CHECKING`): an import hidden in a function is still an edge a reader must follow."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The modules `path` imports, each as the longest name that is a module of the tree."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from api.routes import orders` imports the module api.routes.orders
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


PACKAGES = ("workflows", "activities", "api", "store", "domain", "web")
TOP_LEVEL = ("worker", "settings", "logs", "devrun", "temporal_client", "payload_codec")
# What each part may import of ours (ARCHITECTURE.md): nothing imports upward.
ALLOWED = {
    "domain": {"domain"},
    "workflows": {"workflows", "domain"},
    "store": {"store", "domain", "settings"},
    "activities": {"activities", "store", "domain", "settings", "logs"},
    "api": {
        "api",
        "store",
        "domain",
        "settings",
        "logs",
        "payload_codec",
        "temporal_client",
        "web",
    },
    # The web app uses the API's services (auth, commands, reads), never its routes.
    "web": {"web", "api", "store", "domain", "settings"},
}


def _graph(paths: list[Path]) -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in paths}
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def project_graph() -> dict[str, set[str]]:
    """Each module of the product (not tests, not bench) and the product modules it imports."""
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    return _graph(paths + [ROOT / f"{name}.py" for name in TOP_LEVEL])


def api_graph() -> dict[str, set[str]]:
    """Each api module and the api modules it imports."""
    return _graph(list((ROOT / "api").rglob("*.py")))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the path that closes it; None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [node, target]
            if target not in state:
                found = visit(target, [*path, target])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def _is_route(module: str) -> bool:
    return module.startswith("api.routes.")


def test_no_route_module_imports_another_route_module() -> None:
    edges = [
        f"{source} imports {target}"
        for source, targets in api_graph().items()
        if _is_route(source)
        for target in targets
        if _is_route(target)
    ]
    assert edges == []


def test_only_the_application_imports_route_modules() -> None:
    """Services (commands, reads, schemas) serve routes; they never reach back into one."""
    edges = [
        f"{source} imports {target}"
        for source, targets in api_graph().items()
        if not _is_route(source) and source not in ("api.main", "api.routes")
        for target in targets
        if _is_route(target)
    ]
    assert edges == []


def test_no_import_cycle_among_api_modules() -> None:
    assert _cycle(api_graph()) is None


def test_the_api_does_not_import_workflow_code() -> None:
    """The API talks to workflows by the names in `domain.contract`, not through their classes
    (importing them would load workflow code, and its imports, into the API process)."""
    edges = [
        f"{source} imports {target}"
        for source, path in ((_module_name(p), p) for p in (ROOT / "api").rglob("*.py"))
        for target in _imports(path)
        if target == "workflows" or target.startswith("workflows.")
    ]
    assert edges == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_each_part_imports_only_what_it_may() -> None:
    edges = [
        f"{source} imports {target}"
        for source, targets in project_graph().items()
        if (part := source.split(".")[0]) in ALLOWED
        for target in targets
        if target.split(".")[0] not in ALLOWED[part]
    ]
    assert edges == []


def test_no_activity_module_imports_another() -> None:
    """Activities share queries through `store/`, never through another business area."""
    edges = [
        f"{source} imports {target}"
        for source, targets in project_graph().items()
        if source.startswith("activities.")
        for target in targets
        if target.startswith("activities.")
    ]
    assert edges == []


def test_no_import_cycle_in_the_product() -> None:
    assert _cycle(project_graph()) is None


def test_the_web_app_uses_the_apis_services_not_its_routes() -> None:
    """Pages reach orders through the API's services (auth, commands, reads); only the
    application (`api.main`) mounts the web app."""
    graph = project_graph()
    through_routes = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        if source.startswith("web")
        for target in targets
        if target.startswith("api.routes") or target == "api.main"
    ]
    mounting = sorted(
        source
        for source, targets in graph.items()
        if source.startswith("api") and any(t.startswith("web") for t in targets)
    )
    assert through_routes == []
    assert mounting == ["api.main"]
