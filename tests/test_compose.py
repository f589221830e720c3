"""The container stack, checked structurally: docker-compose.yml, the Dockerfile, .dockerignore.

No Docker engine is needed: these tests read the files and check that the pieces fit together
(service names, ports, URLs, image tags, search attributes) and fit the application's own
configuration (`settings.Settings`, `workflows.search_attributes`).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml

from settings import Settings
from workflows.search_attributes import CLI_TYPES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

REQUIRED_SERVICES = {
    "postgres",
    "temporal",
    "temporal-setup",
    "temporal-ui",
    "migrate",
    "api",
    "worker",
}
APP_SERVICES = ("api", "worker")
SEARCH_ATTRIBUTES = {
    "OrderStatus": "Keyword",
    "CustomerId": "Keyword",
    "OrderTotal": "Double",
    "Overdue": "Bool",
    "EscalationLevel": "Int",
}
API_COMMAND = ["python", "-m", "api"]
WORKER_COMMAND = ["python", "-m", "worker"]
MIGRATE_COMMAND = ["python", "-m", "store.migrate"]
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

# What compose substitutes: `$$` (a literal `$`) and `${NAME}`, `${NAME:-default}`, `${NAME-default}`,
# and `${NAME:?error}` (required: compose refuses to start without it).
SUBSTITUTION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?::?-(?P<default>[^}]*)|(?P<required>:?\?[^}]*))?\}"
)
# What an operator sets for a required variable (secrets: long and random).
OPERATOR_VALUES = {
    "PAYLOAD_KEYS": json.dumps({"k1": "mCzBVfOxBBKGOJk3x8JZwOaQ0E0YWnsBj1HnMqszn6g="}),
    "PAYLOAD_KEY_ID": "k1",
    "AUDIT_KEYS": json.dumps({"a1": "audit-key-set-by-the-operator-0123456789"}),
    "AUDIT_KEY_ID": "a1",
}
OPERATOR_VALUE = "operator-secret-4b1f9e07c3a25d86e1f0b7a9c4d2"
# `register NAME TYPE` lines of the temporal-setup script.
REGISTER_LINE = re.compile(r"^\s*register\s+(?P<name>\S+)\s+(?P<type>\S+)\s*$", re.MULTILINE)


# --- reading the files --------------------------------------------------------------------------


def as_dict(value: object) -> dict[str, Any]:
    assert isinstance(value, dict), f"expected a mapping, got {value!r}"
    return cast(dict[str, Any], value)


def interpolate(value: object) -> str:
    """A value as compose would pass it with only the required variables set (defaults apply)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("required") is not None:
            return OPERATOR_VALUES.get(match.group("name"), OPERATOR_VALUE)
        return match.group("default") or ""

    return SUBSTITUTION.sub(substitute, str(value))


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment (mapping or `KEY=value` list), interpolated."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(str(item).split("=", 1) for item in raw)
    return {str(key): interpolate(value) for key, value in as_dict(raw).items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency name -> condition (the short list form means `service_started`)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {str(name): "service_started" for name in raw}
    return {
        str(name): str(as_dict(spec or {}).get("condition", "service_started"))
        for name, spec in as_dict(raw).items()
    }


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port, from the short ("[ip:]host:container") or long syntax."""
    ports: dict[int, int] = {}
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            target, published = entry["target"], entry.get("published")
        else:
            parts = str(entry).split("/")[0].rsplit(":", 2)
            target = parts[-1]
            published = parts[-2] if len(parts) > 1 else None
        if published is not None:
            ports[int(target)] = int(published)
    return ports


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    return "\n".join(command) if isinstance(command, list) else str(command)


def image_tag(image: str) -> str | None:
    """The tag of `[registry/]name[:tag][@digest]`, or None when there is none."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else None


def strings(node: object) -> Iterator[str]:
    """Every string value anywhere in a loaded YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def last_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


def env_assignments(arguments: str) -> dict[str, str]:
    """`ENV A=1 B=2` (or the legacy `ENV A 1`) as a mapping."""
    tokens = shlex.split(arguments)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def shell_commands(arguments: str) -> list[list[str]]:
    """A shell-form RUN split into its simple commands (on `&&`, `||`, `;`)."""
    commands: list[list[str]] = [[]]
    for token in shlex.split(arguments):
        if token in {"&&", "||", ";"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    return as_dict(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(name): as_dict(spec) for name, spec in as_dict(compose["services"]).items()}


@pytest.fixture(scope="module")
def app_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return environment(services["api"])


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


# --- docker-compose.yml --------------------------------------------------------------------------


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = REQUIRED_SERVICES - services.keys()
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


def test_app_services_build_this_repositorys_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in (*APP_SERVICES, "migrate"):
        build = services[name].get("build")
        assert build is not None, f"{name} must be built from this repository"
        spec = {"context": build} if isinstance(build, str) else as_dict(build)
        context = (COMPOSE_FILE.parent / str(spec.get("context", "."))).resolve()
        assert context == ROOT, f"{name} builds from {context}, not the repository root"
        dockerfile = context / str(spec.get("dockerfile", "Dockerfile"))
        assert dockerfile.resolve() == DOCKERFILE.resolve(), f"{name} builds {dockerfile}"


def test_api_and_worker_share_one_environment_block(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    api_env, worker_env = services["api"]["environment"], services["worker"]["environment"]
    # The same object after loading: both reference the `x-app-env` anchor, not two copies.
    assert api_env is worker_env, "api and worker must both use `environment: *app-env`"
    assert api_env == compose["x-app-env"]


def test_app_environment_is_valid_settings(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = sorted(name for name in app_env if name.lower() not in Settings.model_fields)
    assert not unknown, f"not fields of settings.Settings (typo or dead config?): {unknown}"
    for name in ("ENVIRONMENT", "LOG_FORMAT", "DATABASE_URL", "TEMPORAL_ADDRESS", "TASK_QUEUE"):
        assert name in app_env, f"the app services must set {name}"
    # The values themselves pass Settings' validation, read from the environment as in the
    # container (literals, ints, JSON objects, the limits and secrets validators).
    for name, value in app_env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.environment == "production"
    assert settings.log_format == "json"
    assert settings.task_queue == "sales-orders"
    assert settings.api_port == 8000


def test_database_url_points_at_the_postgres_service(
    services: dict[str, dict[str, Any]], app_env: dict[str, str]
) -> None:
    url = urlsplit(app_env["DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == "postgres"
    assert url.hostname in services
    assert url.port == 5432
    postgres_env = environment(services["postgres"])
    assert url.path == f"/{postgres_env['POSTGRES_DB']}", "the app must use the database it creates"
    assert url.username == postgres_env["POSTGRES_USER"]
    assert url.password == postgres_env["POSTGRES_PASSWORD"]


def test_temporal_address_points_at_the_temporal_frontend(
    services: dict[str, dict[str, Any]], app_env: dict[str, str]
) -> None:
    host, _, port = app_env["TEMPORAL_ADDRESS"].rpartition(":")
    assert host == "temporal"
    assert host in services
    assert port == "7233"
    assert 7233 in published_ports(services["temporal"])
    for name in ("temporal-setup", "temporal-ui"):
        assert environment(services[name])["TEMPORAL_ADDRESS"] == app_env["TEMPORAL_ADDRESS"]
    # One namespace everywhere: the one auto-setup creates, the one setup registers attributes in.
    namespace = app_env["TEMPORAL_NAMESPACE"]
    assert environment(services["temporal"])["DEFAULT_NAMESPACE"] == namespace
    assert environment(services["temporal-setup"])["TEMPORAL_NAMESPACE"] == namespace


def test_temporal_keeps_its_own_databases_on_the_same_postgres(
    services: dict[str, dict[str, Any]], app_env: dict[str, str]
) -> None:
    temporal = environment(services["temporal"])
    postgres = environment(services["postgres"])
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert temporal["DB"] == "postgres12"
    assert temporal["DB_PORT"] == "5432"
    assert temporal["POSTGRES_SEEDS"] == "postgres"
    assert temporal["POSTGRES_USER"] == postgres["POSTGRES_USER"]
    assert temporal["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    app_database = urlsplit(app_env["DATABASE_URL"]).path.lstrip("/")
    temporal_databases = {temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]}
    assert len(temporal_databases) == 2
    assert app_database not in temporal_databases, "Temporal must not share the app's database"


def test_depends_on_names_existing_services_with_usable_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert dependency != name
            assert condition in DEPENDS_ON_CONDITIONS, f"{name}: bad condition {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[dependency].get("restart", "no") == "no", f"{dependency} reruns"


def test_app_services_wait_for_database_and_search_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in APP_SERVICES:
        dependencies = depends_on(services[name])
        assert dependencies.get("postgres") == "service_healthy", name
        assert "temporal" in dependencies, name
        assert dependencies.get("temporal-setup") == "service_completed_successfully", name


def test_the_schema_is_migrated_once_before_the_app_services_start(
    services: dict[str, dict[str, Any]],
) -> None:
    """A one-shot service runs the migrations (`alembic upgrade head`) on the app's database;
    the api and the workers wait for it to succeed and never change the schema themselves."""
    migrate = services["migrate"]
    assert migrate["command"] == MIGRATE_COMMAND
    assert migrate["environment"] is services["api"]["environment"], "the same DATABASE_URL"
    assert migrate.get("restart", "no") == "no"
    assert depends_on(migrate).get("postgres") == "service_healthy"
    for name in APP_SERVICES:
        assert depends_on(services[name]).get("migrate") == "service_completed_successfully", name


def test_every_image_is_pinned(
    services: dict[str, dict[str, Any]], dockerfile: list[tuple[str, str]]
) -> None:
    for name, service in services.items():
        if "image" not in service:
            assert "build" in service, f"{name} has neither an image nor a build"
            continue
        image = interpolate(service["image"])
        tag = image_tag(image)
        assert tag, f"{name}: image {image} has no tag"
        assert tag != "latest", f"{name}: image {image} is not pinned"
    for keyword, arguments in dockerfile:
        if keyword == "FROM":
            base = arguments.split()[0]
            assert image_tag(base) not in {None, "latest"}, f"Dockerfile: FROM {base} not pinned"


def test_setup_registers_exactly_the_search_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    setup = services["temporal-setup"]
    assert setup["image"].startswith("temporalio/admin-tools:")
    assert setup.get("restart") == "no", "a one-shot service must not be restarted"
    assert "temporal" in depends_on(setup)
    script = command_text(setup)
    assert "temporal operator search-attribute create" in script
    assert "--name" in script
    assert "--type" in script
    registered = [(match["name"], match["type"]) for match in REGISTER_LINE.finditer(script)]
    assert len(registered) == len(dict(registered)), f"registered twice: {registered}"
    assert dict(registered) == SEARCH_ATTRIBUTES
    assert dict(registered) == CLI_TYPES, "out of step with workflows/search_attributes.py"


def test_ui_and_api_are_published_on_their_ports(services: dict[str, dict[str, Any]]) -> None:
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert published_ports(services["temporal-ui"]) == {8080: 8233}
    assert published_ports(services["api"]) == {8000: 8000}


def test_api_and_worker_commands(services: dict[str, dict[str, Any]]) -> None:
    assert services["api"]["command"] == API_COMMAND
    assert services["worker"]["command"] == WORKER_COMMAND
    healthcheck = " ".join(map(str, as_dict(services["api"]["healthcheck"])["test"]))
    assert "127.0.0.1:8000/health" in healthcheck


def test_workers_can_scale_out(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert int(as_dict(worker.get("deploy") or {}).get("replicas", 1)) >= 2
    # Either would make a second replica fail to start.
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_postgres_keeps_its_data_and_reports_readiness(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(map(str, as_dict(postgres["healthcheck"])["test"]))
    mounts = {
        str(volume).split(":")[1]: str(volume).split(":")[0] for volume in postgres["volumes"]
    }
    volume = mounts.get("/var/lib/postgresql/data")
    assert volume, "PostgreSQL's data directory must be on a volume"
    assert volume in as_dict(compose.get("volumes")), f"named volume {volume} is not declared"


def test_dollar_signs_are_escaped_or_interpolations(compose: dict[str, Any]) -> None:
    # A bare `$1` or `$VAR` in a shell script would be substituted (to nothing) by compose.
    for value in strings(compose):
        leftover = SUBSTITUTION.sub("", value)
        assert "$" not in leftover, f"unescaped `$` (write `$$` for the shell) in: {value!r}"


# --- Dockerfile and .dockerignore ---------------------------------------------------------------


def test_dockerfile_installs_the_project_with_pip(dockerfile: list[tuple[str, str]]) -> None:
    installs = [
        command
        for keyword, arguments in dockerfile
        if keyword == "RUN"
        for command in shell_commands(arguments)
        if "pip" in command and "install" in command
    ]
    project_installs = [command for command in installs if "." in command]
    assert project_installs, f"no `pip install .` among {installs}"
    for command in project_installs:
        assert "-e" not in command
        assert "--editable" not in command


def test_dockerfile_runs_the_api_as_non_root_in_production(
    dockerfile: list[tuple[str, str]],
) -> None:
    stage = last_stage(dockerfile)
    assert stage[0][1].startswith("python:3.11"), f"final stage is FROM {stage[0][1]}"
    users = [arguments for keyword, arguments in stage if keyword == "USER"]
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"runs as {users[-1]}"
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            env.update(env_assignments(arguments))
    assert env.get("ENVIRONMENT") == "production"
    assert env.get("LOG_FORMAT") == "json"
    exposed = {
        port for keyword, arguments in stage if keyword == "EXPOSE" for port in arguments.split()
    }
    assert "8000" in exposed
    commands = [arguments for keyword, arguments in stage if keyword == "CMD"]
    assert commands, "the image needs a default CMD"
    assert json.loads(commands[-1]) == API_COMMAND


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    assert DOCKERIGNORE.is_file(), f"{DOCKERIGNORE} is missing"
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", ".data", ".env", "tests"):
        assert required in patterns, f".dockerignore must exclude {required}"
    # The build needs these: excluding them would break `pip install .`.
    for needed in ("pyproject.toml", "*.py", "api", "workflows", "activities", "domain", "store"):
        assert needed not in patterns, f".dockerignore excludes {needed}, which the build needs"


def test_the_image_carries_the_web_apps_front_end_files(
    dockerfile: list[tuple[str, str]],
) -> None:
    """A node stage runs `npm ci` on web/'s lockfile, and the final stage copies its
    node_modules beside the installed `web` package, where web.app serves them from."""
    stages: dict[str, list[tuple[str, str]]] = {}
    name = ""
    for keyword, arguments in dockerfile:
        if keyword == "FROM":
            name = arguments.split(" AS ")[-1].strip() if " AS " in arguments else arguments
            stages[name] = []
        stages[name].append((keyword, arguments))
    (node,) = [stage for stage in stages.values() if stage[0][1].startswith("node:")]
    copied = " ".join(arguments for keyword, arguments in node if keyword == "COPY")
    assert "web/package.json" in copied and "web/package-lock.json" in copied
    commands = [
        command
        for keyword, arguments in node
        if keyword == "RUN"
        for command in shell_commands(arguments)
    ]
    assert any(command[:2] == ["npm", "ci"] for command in commands), commands
    node_name = node[0][1].split(" AS ")[-1].strip()
    final = last_stage(dockerfile)
    python = final[0][1].split(":")[1].split("-")[0]  # python:3.11-slim-... -> 3.11
    target = f"/opt/venv/lib/python{python}/site-packages/web/node_modules"
    assert any(
        keyword == "COPY"
        and arguments.split() == [f"--from={node_name}", "/web/node_modules", target]
        for keyword, arguments in final
    ), "the final stage does not copy node_modules beside the web package"
    # and web.app looks for them there: beside its own module
    import web.app

    assert Path(web.app.__file__).parent / "node_modules" == web.app.NODE_MODULES
