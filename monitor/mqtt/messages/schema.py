"""JSON Schemas (draft 2020-12) and the field reference, made from the message classes.

The files in ``monitor/mqtt/schemas/`` and the field reference in
``PAYLOADS.md`` are written by ``python -m monitor.mqtt.schemas`` from what
this module returns; a test keeps the committed files equal to it, so a field
is added in one place (its dataclass) and the documents follow.
"""

from __future__ import annotations

import json
from typing import Any

from .base import Command, Entry, Message
from .fields import _field_schema, _Maybe, _Nested, _Seq, layout

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_URI = "https://gym-tremor-monitor.example/schemas/mqtt/v1/"


def message_schema(cls: type[Message]) -> dict[str, Any]:
    """The schema of one message class, as the dict that becomes its file."""
    defs: dict[str, Any] = {}
    version: dict[str, Any] = {"const": 1}
    if not issubclass(cls, Command):
        version["description"] = "schema version"
    props: dict[str, Any] = {"v": version}
    for f in layout(cls):
        props[f.name] = _field_schema(f, defs)
    out: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": f"{BASE_URI}{cls.schema_name}.json",
        "title": cls.title,
        "type": "object",
        "properties": props,
        "required": ["v"] + [f.name for f in layout(cls) if not f.spec.optional],
        "additionalProperties": not cls.closed,
    }
    if cls.description:
        out["description"] = cls.description
    out |= cls.schema_extra
    if defs:
        out["$defs"] = dict(sorted(defs.items()))
    comment = getattr(cls, "comment", "")
    if comment and not cls.closed:
        out["$comment"] = comment
    return out


def schema_text(cls: type[Message]) -> str:
    """The file's text: two-space indents, a final newline."""
    return json.dumps(message_schema(cls), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- field reference


def _type_text(f: Any) -> str:
    schema = _field_schema(f, {})
    return _describe(schema)


def _describe(s: dict[str, Any]) -> str:
    if "$ref" in s:
        ref = s["$ref"]
        return f"`{ref.removeprefix('#/$defs/').removesuffix('.json')}`"
    if "anyOf" in s:
        return " or ".join(_describe(x) for x in s["anyOf"])
    if "enum" in s:
        return " \\| ".join("null" if v is None else f"`{v}`" for v in s["enum"])
    types = s.get("type")
    names = types if isinstance(types, list) else [types] if types else ["any"]
    parts = []
    for t in names:
        if t == "array":
            parts.append(f"[{_describe(s['items'])}]")
        elif t == "object" and isinstance(s.get("additionalProperties"), dict):
            keys = s.get("propertyNames", {}).get("enum")
            key = " \\| ".join(f"`{k}`" for k in keys) if keys else "name"
            parts.append(f"{{{key}: {_describe(s['additionalProperties'])}}}")
        else:
            parts.append(t)
    return " or ".join(parts)


def _rules_text(f: Any) -> str:
    sp = f.spec
    bits = []
    if sp.bounds_text():
        bits.append(sp.bounds_text())
    if sp.what:
        bits.append(sp.what)
    elif sp.min_length:
        bits.append("not empty")
    if sp.doc:
        bits.append(sp.doc)
    elif f.name == "ts" or f.name.endswith("_ts"):
        bits.append("Unix seconds")
    return "; ".join(bits)


def _table(cls: type[Entry], title: str) -> list[str]:
    lines = [title, "", "| key | type | rules |", "|---|---|---|"]
    if issubclass(cls, Message):
        lines.append("| `v` | 1 | schema version |")
    nested: list[type[Entry]] = []
    for f in layout(cls):
        name = f"`{f.name}`" + (" (optional)" if f.spec.optional else "")
        lines.append(f"| {name} | {_type_text(f)} | {_rules_text(f)} |")
        kind = f.kind.inner if isinstance(f.kind, _Maybe) else f.kind
        kind = kind.inner if isinstance(kind, _Seq) else kind
        if isinstance(kind, _Nested) and not issubclass(kind.cls, Message):
            nested.append(kind.cls)
    lines.append("")
    for sub in nested:
        lines += _table(sub, f"`{sub.schema_name}` in `{cls.schema_name}`: {sub.title}")
    return lines


def field_reference(classes: list[type[Message]]) -> str:
    """Markdown tables of every message's fields, for PAYLOADS.md."""
    lines: list[str] = []
    for cls in classes:
        lines += _table(cls, f"#### `{cls.schema_name}`")
    return "\n".join(lines).rstrip("\n") + "\n"
