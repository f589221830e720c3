"""`python -m api`: serve the API with our logging pipeline (uvicorn's own config disabled)."""

from __future__ import annotations

import sys

import uvicorn

from logs import configure_logging
from settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        # libuv's event loop and a C HTTP parser: less CPU per request than asyncio's and h11.
        loop="asyncio" if sys.platform == "win32" else "uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
