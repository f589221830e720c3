# One image for both processes of the service:
#   API (default):  python -m api  (uvicorn with our JSON logging; API_HOST/API_PORT)
#   worker:         python -m worker          (docker-compose.yml overrides the command)
# Configuration comes from the environment (see settings.py); nothing is baked in but the
# production defaults below.
#
# No HEALTHCHECK here on purpose: the worker runs from this image too and serves no HTTP, so an
# image-level /health probe would mark every worker unhealthy. docker-compose.yml probes the API.

# --- web: the web app's front-end files (htmx, Pico CSS) from the npm registry, as the
# committed lockfile pins them (web/package-lock.json); nothing is fetched at run time --------
FROM node:20-bookworm-slim AS web

WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

# --- build: a virtualenv with the dependencies, then the project itself -----------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, read from pyproject.toml alone, so this layer stays cached until they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project (non-editable: the runtime stage gets no source tree, only site-packages).
COPY . .
RUN pip install --no-deps .

# --- runtime: the virtualenv on a clean slim base, as an unprivileged user ---------------------
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    ENVIRONMENT=production \
    LOG_FORMAT=json

# A fixed numeric UID/GID, so orchestrators can verify `runAsNonRoot` without resolving names.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && install -d -o app -g app /app

COPY --from=build /opt/venv /opt/venv
# Where web.app serves them from: node_modules beside the installed `web` package.
COPY --from=web /web/node_modules /opt/venv/lib/python3.11/site-packages/web/node_modules

# Writable by the app user: the SQLite fallback (no DATABASE_URL) keeps its file under ./.data.
WORKDIR /app
USER 10001:10001

EXPOSE 8000

CMD ["python", "-m", "api"]
