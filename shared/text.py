"""Text from outside (API parameters and bodies, later feed items): refuse what cannot be stored or read.

PostgreSQL refuses NUL in text, a lone surrogate cannot be encoded as UTF-8 at all, and control
characters or non-characters in a filter or a reason are never meant: each would otherwise surface
deep inside the database driver as a 500. Checked at the boundary, they are a 400 naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# C0 controls but TAB, LF and CR; DEL and the C1 controls; surrogates; the non-characters.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def check_text(value: str) -> str:
    """`value` unchanged, or ValueError naming the first refused character and where it is."""
    found = _REFUSED.search(value)
    if found is not None:
        raise ValueError(f"character U+{ord(found.group()):04X} at position {found.start()} is not allowed in text")
    return value


SafeText = Annotated[str, AfterValidator(check_text)]
