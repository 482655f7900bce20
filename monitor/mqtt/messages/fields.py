"""Fields as data: what each field holds, what it promises, how it is checked and described.

A field's type hint (``float | None``, ``tuple[SetEntry, ...]``,
``Mapping[Placement, float]``, a StrEnum, a nested entry) picks its *kind*;
its :class:`Spec` adds bounds, a pattern and how it appears on the wire. One
kind knows, for its shape, how to check a producer's value (``build``), how
to read a JSON value (``read``), how to write it (``dump``) and how to
describe it in JSON Schema (``schema``), so the four never disagree.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from .codec import MessageError, _Invalid, clean, is_ts_key, json_type, round_number

# --------------------------------------------------------------------------- field specs


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a field promises beyond its type: bounds, a pattern, how it appears on the wire.

    Bounds and the pattern apply to the values a field holds: the number
    itself, each item of a tuple, each value of a mapping. ``pattern`` is a
    regular expression without anchors, written so that Python and JSON Schema
    read it alike; ``what`` says in words what it allows, for error messages.
    """

    doc: str = ""
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    what: str = ""
    min_length: int | None = None
    nullable: bool | None = None  # on the wire; None: ``X | None`` fields may be null
    optional: bool = False  # left out of the JSON when None (e.g. ``by``)

    def bounds_text(self) -> str:
        parts = []
        if self.exclusive_minimum is not None:
            parts.append(f"more than {self.exclusive_minimum:g}")
        if self.minimum is not None:
            parts.append(f"at least {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum:g}")
        return " and ".join(parts)

    def in_bounds(self, x: float) -> bool:
        return (
            (self.minimum is None or x >= self.minimum)
            and (self.exclusive_minimum is None or x > self.exclusive_minimum)
            and (self.maximum is None or x <= self.maximum)
        )


def spec(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | Any = dataclasses.MISSING,
    **rules: Any,
) -> Any:
    """A dataclass field with a :class:`Spec`: ``rms_mg: float | None = spec(None, minimum=0)``."""
    return dataclasses.field(
        default=default, default_factory=factory, metadata={"spec": Spec(**rules)}
    )


_NO_RULES = Spec()

# --------------------------------------------------------------------------- kinds of value


class _Kind:
    """One JSON shape: checks a producer's value, reads a JSON value, writes and describes it."""

    want = "a value"
    schema_type: str | None = None

    def build(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        raise NotImplementedError

    def read(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        """A JSON value: the type must be exactly right; then the producer's checks."""
        return self.build(v, path, key, sp)

    def dump(self, v: Any) -> Any:
        return v

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": self.schema_type}

    def bad(self, v: Any, path: str) -> _Invalid:
        return _Invalid(f"{path} must be {self.want}, not {json_type(v)}")


class _Str(_Kind):
    want = "a string"
    schema_type = "string"

    def build(self, v: Any, path: str, key: str, sp: Spec) -> str:
        if not isinstance(v, str):
            raise self.bad(v, path)
        if sp.min_length is not None and len(v) < sp.min_length:
            raise _Invalid(f"{path} must be {sp.what or 'a non-empty string'}")
        if sp.pattern is not None and not _compiled(sp.pattern).fullmatch(v):
            raise _Invalid(f"{path} must be {sp.what or 'like ' + sp.pattern}")
        return str(v)

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if sp.min_length is not None:
            out["minLength"] = sp.min_length
        if sp.pattern is not None:
            out["pattern"] = f"^{sp.pattern}$"
        return out


class _Number(_Kind):
    want = "a number"
    schema_type = "number"

    def read(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        # Taken as sent: a reader keeps the sender's figures (ours are rounded already).
        if type(v) is not float and type(v) is not int:
            raise self.bad(v, path)
        try:
            x = float(v)
        except OverflowError:
            x = math.inf
        if not (math.isfinite(x) and sp.in_bounds(x)):
            raise _Invalid(f"{path} must be {sp.bounds_text() or 'a finite number'}, not {v!r:.40}")
        return x

    def build(self, v: Any, path: str, key: str, sp: Spec) -> float:
        if getattr(v, "shape", None) == () and hasattr(v, "item"):  # numpy scalar
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise self.bad(v, path)
        try:
            x = float(v)
        except OverflowError:  # an integer too big for a float: 1 followed by 400 zeros
            x = math.inf
        if math.isfinite(x):
            x = round_number(x, key)
        if not (math.isfinite(x) and sp.in_bounds(x)):
            raise _Invalid(f"{path} must be {sp.bounds_text() or 'a finite number'}, not {v!r:.40}")
        return x

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.schema_type}
        for name, value in (
            ("minimum", sp.minimum),
            ("exclusiveMinimum", sp.exclusive_minimum),
            ("maximum", sp.maximum),
        ):
            if value is not None:
                out[name] = int(value) if float(value).is_integer() else value
        return out


class _Int(_Number):
    want = "a whole number"
    schema_type = "integer"

    def build(self, v: Any, path: str, key: str, sp: Spec) -> int:
        if getattr(v, "shape", None) == () and hasattr(v, "item"):
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise self.bad(v, path)
        if not sp.in_bounds(int(v)):
            raise _Invalid(f"{path} must be a whole number {sp.bounds_text()}, not {v!r:.40}")
        return int(v)

    def read(self, v: Any, path: str, key: str, sp: Spec) -> int:
        # JSON Schema counts 3.0 as an integer; so does this reader.
        if type(v) is float and v.is_integer():
            v = int(v)
        return self.build(v, path, key, sp)


class _Bool(_Kind):
    want = "true or false"
    schema_type = "boolean"

    def build(self, v: Any, path: str, key: str, sp: Spec) -> bool:
        if getattr(v, "shape", None) == () and hasattr(v, "item"):  # numpy's bool
            v = v.item()
        if not isinstance(v, bool):
            raise self.bad(v, path)
        return v


class _Enum(_Kind):
    def __init__(self, cls: type[StrEnum]):
        self.cls = cls
        self.want = "one of " + ", ".join(repr(m.value) for m in cls)

    def build(self, v: Any, path: str, key: str, sp: Spec) -> StrEnum:
        if isinstance(v, str):
            try:
                return self.cls(v)
            except ValueError:
                pass
        raise _Invalid(f"{path} must be {self.want}, not {v!r:.40}")

    def dump(self, v: Any) -> str:
        return str(v.value)

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        return {"enum": [m.value for m in self.cls]}


class _Nested(_Kind):
    want = "an object"

    def __init__(self, cls: Any):  # an Entry subclass
        self.cls = cls

    def build(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        if isinstance(v, self.cls):
            return v
        if isinstance(v, Mapping):
            return self.cls._read(v, path)
        raise self.bad(v, path)

    def read(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        if not isinstance(v, dict):
            raise self.bad(v, path)
        return self.cls._read(v, path)

    def dump(self, v: Any) -> dict[str, Any]:
        out: dict[str, Any] = v.to_dict()
        return out

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        if self.cls.has_schema_file:
            return {"$ref": f"{self.cls.schema_name}.json"}
        if self.cls.schema_name not in defs:
            defs[self.cls.schema_name] = {}  # claimed first: a def may refer to itself
            defs[self.cls.schema_name] = self.cls._object_schema(defs)
        return {"$ref": f"#/$defs/{self.cls.schema_name}"}


class _Maybe(_Kind):
    """``X | None``."""

    def __init__(self, inner: _Kind):
        self.inner = inner
        self.want = inner.want + " or null"

    def build(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        if v is None:
            return None
        if isinstance(self.inner, _Number) and not isinstance(self.inner, _Int):
            if getattr(v, "shape", None) == () and hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                if sp.nullable is False:  # a figure the wire promises (ts): refuse, say why
                    raise _Invalid(f"{path} must be a finite number, not {v!r}")
                return None  # NaN and infinities are "no figure", which JSON spells null
        return self.inner.build(v, path, key, sp)

    def read(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        return None if v is None else self.inner.read(v, path, key, sp)

    def dump(self, v: Any) -> Any:
        return None if v is None else self.inner.dump(v)

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        return _nullable(self.inner.schema(sp, defs))


class _Seq(_Kind):
    """``tuple[X, ...]``: a JSON array."""

    want = "an array"
    schema_type = "array"

    def __init__(self, inner: _Kind):
        self.inner = inner

    def build(self, v: Any, path: str, key: str, sp: Spec) -> tuple[Any, ...]:
        if isinstance(v, (str, bytes, Mapping)) or not isinstance(v, (list, tuple)):
            raise self.bad(v, path)
        return tuple(self.inner.build(x, f"{path}[{i}]", key, sp) for i, x in enumerate(v))

    def read(self, v: Any, path: str, key: str, sp: Spec) -> tuple[Any, ...]:
        if not isinstance(v, list):
            raise self.bad(v, path)
        return tuple(self.inner.read(x, f"{path}[{i}]", key, sp) for i, x in enumerate(v))

    def dump(self, v: Any) -> list[Any]:
        return [self.inner.dump(x) for x in v]

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "array", "items": self.inner.schema(sp, defs)}


class _Map(_Kind):
    """``Mapping[str | SomeEnum, X]``: a JSON object used as a dictionary."""

    want = "an object"
    schema_type = "object"

    def __init__(self, keys: _Kind, values: _Kind):
        self.keys = keys
        self.values = values

    def _each(self, v: Any, path: str, read: bool) -> dict[Any, Any]:
        if not isinstance(v, dict if read else Mapping):
            raise self.bad(v, path)
        out = {}
        for k, x in v.items():
            name = k if isinstance(k, str) else str(k)
            where = f"{path}[{name!r}]"
            key = self.keys.build(name, f"key {name!r} of {path}", name, _NO_RULES)
            value = (self.values.read if read else self.values.build)(x, where, name, _NO_RULES)
            out[key] = value
        return out

    def build(self, v: Any, path: str, key: str, sp: Spec) -> dict[Any, Any]:
        return self._checked(self._each(v, path, read=False), path, sp)

    def read(self, v: Any, path: str, key: str, sp: Spec) -> dict[Any, Any]:
        return self._checked(self._each(v, path, read=True), path, sp)

    def _checked(self, out: dict[Any, Any], path: str, sp: Spec) -> dict[Any, Any]:
        # The field's bounds are on its values (band_rms_mg >= 0, baselines_mg > 0).
        if isinstance(self.values, (_Number, _Maybe)):
            for k, x in out.items():
                if isinstance(x, (int, float)) and not sp.in_bounds(x):
                    raise _Invalid(f"{path}[{str(k)!r}] must be {sp.bounds_text()}, not {x!r}")
        return out

    def dump(self, v: Any) -> dict[str, Any]:
        return {str(k): self.values.dump(x) for k, x in v.items()}

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if isinstance(self.keys, _Enum):
            out["propertyNames"] = self.keys.schema(_NO_RULES, defs)
        out["additionalProperties"] = self.values.schema(sp, defs)
        return out


class _Json(_Kind):
    """Any JSON value (alert evidence): cleaned like every payload value, otherwise free."""

    def build(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        try:
            return clean(v, key)
        except MessageError as err:
            raise _Invalid(f"{path}: {err}") from None

    def read(self, v: Any, path: str, key: str, sp: Spec) -> Any:
        return clean(v, key)

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        return {}


class _JsonObject(_Map):
    """``Mapping[str, Any]``: an object of anything (alert evidence)."""

    def __init__(self) -> None:
        super().__init__(_Str(), _Json())

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    elif isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    else:
        out = {"anyOf": [schema, {"type": "null"}]}
    return out


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _PATTERNS:
        _PATTERNS[pattern] = re.compile(pattern)
    return _PATTERNS[pattern]


def _kind_of(hint: Any) -> _Kind:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise TypeError(f"only X | None unions are supported, not {hint!r}")
        return _Maybe(_kind_of(rest[0]))
    simple = {str: _Str, int: _Int, float: _Number, bool: _Bool}
    if hint in simple:
        return simple[hint]()
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return _Enum(hint)
    if isinstance(hint, type) and hasattr(hint, "has_schema_file"):  # an Entry
        return _Nested(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _Seq(_kind_of(args[0]))
    if origin in (Mapping, dict):
        if args[1] is Any:
            return _JsonObject()
        return _Map(_kind_of(args[0]), _kind_of(args[1]))
    raise TypeError(f"no JSON shape for {hint!r}")


# --------------------------------------------------------------------------- fields


@dataclasses.dataclass(frozen=True)
class _Field:
    """One field of a message class, worked out from its type hint and spec."""

    name: str
    kind: _Kind
    spec: Spec
    field: dataclasses.Field[Any]
    typed_nullable: bool = dataclasses.field(init=False)
    wire_nullable: bool = dataclasses.field(init=False)
    has_default: bool = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        typed = isinstance(self.kind, _Maybe)
        set_ = object.__setattr__
        set_(self, "typed_nullable", typed)
        set_(self, "wire_nullable", typed if self.spec.nullable is None else self.spec.nullable)
        set_(
            self,
            "has_default",
            self.field.default is not dataclasses.MISSING
            or self.field.default_factory is not dataclasses.MISSING,
        )

    def read_default(self) -> Any:
        """What a key left out reads as: unknown (None) if it may be, else the default."""
        if self.typed_nullable:
            return None
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return self.field.default


_LAYOUTS: dict[type, tuple[_Field, ...]] = {}


def layout(cls: type) -> tuple[_Field, ...]:
    """The fields of a message class, in wire order (worked out once per class)."""
    found = _LAYOUTS.get(cls)
    if found is None:
        # A field named like the machinery's class attributes (``error_type``, ``title``)
        # would hide them: refuse at once rather than misbehave later.
        reserved = {
            name
            for base in cls.__mro__[1:-1]
            if not dataclasses.is_dataclass(base)
            for name in vars(base)
        }
        clash = reserved & {f.name for f in dataclasses.fields(cls)}
        if clash:
            raise TypeError(f"{cls.__name__}: field {', '.join(sorted(clash))} is reserved")
        hints = typing.get_type_hints(cls)
        found = tuple(
            _Field(f.name, _kind_of(hints[f.name]), f.metadata.get("spec", Spec()), f)
            for f in dataclasses.fields(cls)
        )
        _LAYOUTS[cls] = found
    return found


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _field_schema(f: _Field, defs: dict[str, Any]) -> dict[str, Any]:
    kind = f.kind
    if isinstance(kind, _Maybe) and not f.wire_nullable:
        kind = kind.inner
    out = kind.schema(f.spec, defs)
    doc = f.spec.doc or (
        "Unix seconds"
        if is_ts_key(f.name)
        and isinstance(kind.inner if isinstance(kind, _Maybe) else kind, _Number)
        else ""
    )
    if doc:
        out["description"] = doc
    return out
