"""What text a request may carry: ids of visible characters, and free text without control
characters (but tab and line breaks). A NUL cannot be stored in PostgreSQL's text, so one let
in reaches a write that fails: a 503 for the API's own write, a step retried forever for a
worker's. Checked where requests arrive (`api.bodies`, the catalog's bodies in
`store.tables`), never on the workflows' models: histories decode as they always did."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import StringConstraints

# An id people type (customer, SKU, any id in a path): visible characters only. No space, no
# control character (C0, DEL, C1) and none of the invisible formatting ones (soft hyphen,
# zero-width and direction marks, separators, BOM); letters of any script are fine (客户-01).
# Written with \uXXXX escapes, which Python, Rust (pydantic) and ECMAScript (clients reading
# the OpenAPI schema) all read alike.
ID_PATTERN = (
    r"^[^\u0000-\u0020\u007f-\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f"
    r"\u205f-\u206f\u3000\ufeff\ufff9-\ufffb]+$"
)

# An id in a request (surrounding spaces are dropped, as from `ShortText`, before the pattern).
Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=ID_PATTERN),
]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def without_control_characters(value: Any) -> Any:
    """`value` (a string, or a list or dict of them) unless some text in it holds a control
    character other than tab, line feed and carriage return: a pydantic field validator."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters (but tab and line breaks)")
    elif isinstance(value, list | tuple):
        for item in value:
            without_control_characters(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            without_control_characters(key)
            without_control_characters(item)
    return value
