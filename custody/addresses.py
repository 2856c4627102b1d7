"""E-mail addresses as Custos accepts them: plain ``local@domain``, where alerts may go."""

from __future__ import annotations

import re

# An address as RFC 5321 carries it, without display names, comments or quoting.
_ADDRESS = re.compile(r"^[^\s@<>(),;:\"\[\]\\]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MAX_ADDRESS = 254


def is_email_address(value: str | None) -> bool:
    """True for a plain ``local@domain`` address of at most 254 characters."""
    return value is not None and len(value) <= MAX_ADDRESS and bool(_ADDRESS.fullmatch(value))
