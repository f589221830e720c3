"""The web app's labels in two languages, from gettext catalogues (`web/locale/<lang>/
LC_MESSAGES/*.po`), read by Babel when first needed: no compile step, and a label
is added by adding its entry to both files (tests/test_web_i18n.py checks they agree and
that every label a template or page uses is in them).

The language: the `lang` cookie (the switch on every page), else the browser's
Accept-Language, else Chinese."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LANG_COOKIE = "lang"

Translate = Callable[[str], str]


@cache
def catalogue(lang: str) -> dict[str, str]:
    """msgid → translation of one language (an empty translation is left out), from every
    catalogue of the language: `messages.po`, and one per topic beside it (`notifications.po`:
    the words of people's notifications, which the worker's e-mails use too)."""
    found: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            parsed = read_po(handle, locale=lang)
        found.update(
            (str(message.id), str(message.string))
            for message in parsed
            if message.id and isinstance(message.id, str) and message.string
        )
    return found


def translator(lang: str) -> Translate:
    """The label for a msgid in `lang`; a msgid missing there shows as itself."""
    found = catalogue(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)

    def translate(msgid: str) -> str:
        return found.get(msgid, msgid)

    return translate


def from_accept_language(header: str | None) -> str:
    """The supported language the browser prefers most (`zh-CN,zh;q=0.9,en;q=0.8` → zh)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGUAGES and quality > 0:
            ranked.append((quality, -position, lang))
    return max(ranked)[2] if ranked else DEFAULT_LANGUAGE


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    return from_accept_language(accept_language)
