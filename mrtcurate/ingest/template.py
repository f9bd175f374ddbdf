"""--prompt-template: a prompt built from several fields, `{instruction}\\n\\n{input}`.

The convention of the Alpaca-style templates: a part that is null or blank is left out together with
the text that leads into it, so an empty `input` gives the instruction alone, not the instruction and a
dangling separator. The text before the first part and after the last always stays. Not str.format:
placeholders are field paths (`{meta.title}`), and an empty part must take its separator with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mrtcurate.ingest import paths
from mrtcurate.ingest.fields import Invalid, encodable
from mrtcurate.schemas import RejectReason

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Typed on a command line, `\n` arrives as a backslash and an n.
_ESCAPES = {"\\n": "\n", "\\t": "\t"}


@dataclass(frozen=True)
class Template:
    text: str
    literals: tuple[str, ...]  # one more than fields: before the first field, between them, after the last
    fields: tuple[paths.FieldPath, ...]

    def render(self, record: dict) -> str:
        pieces, first = [self.literals[0]], True
        for index, path in enumerate(self.fields):
            value = path.get(record)
            if value is paths.MISSING:
                raise Invalid(
                    RejectReason.MISSING_TEMPLATE_FIELD, f"--prompt-template needs {path.missing_detail(record)}"
                )
            if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
                raise Invalid(
                    RejectReason.PROMPT_NOT_STRING, f"'{path.text}' is a {type(value).__name__}, not a string"
                )
            part = "" if value is None else encodable(str(value), path.text).strip()
            if not part:
                continue
            if not first:
                pieces.append(self.literals[index])
            pieces.append(part)
            first = False
        pieces.append(self.literals[-1])
        return "".join(pieces)


@lru_cache(maxsize=32)
def parse(text: str) -> Template:
    for escape, character in _ESCAPES.items():
        text = text.replace(escape, character)
    names = _PLACEHOLDER.findall(text)
    if not names:
        raise ValueError(
            f"--prompt-template '{text}' names no field: write fields in braces, e.g. '{{instruction}}\\n\\n{{input}}'"
        )
    return Template(text, tuple(_PLACEHOLDER.split(text)[::2]), tuple(paths.parse(name.strip()) for name in names))
