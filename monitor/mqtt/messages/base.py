"""The machinery under every message: fields as data, one encoder, one strict reader.

A message is a frozen dataclass whose fields carry a :class:`Spec` (bounds, a
pattern, a description). From the type hints and the specs come, in one place:

* the checks a producer's values pass when the dataclass is built (numpy
  scalars become Python numbers, NaN and infinities become ``None`` where the
  field may be null, floats are rounded to what a measurement can carry);
* :meth:`Entry.to_dict` / :meth:`Message.to_json`, which write every field;
* :meth:`Message.from_json`, which reads bytes off the network and trusts nothing;
* the JSON Schema of :mod:`monitor.mqtt.messages.schema`.

Two views of one field, so that neither producers nor consumers are surprised:

* **On the wire** (the schema, and what ``to_json`` writes) every field is
  present, except ``optional`` ones that are left out when ``None``. A field
  typed ``X | None`` may be ``null`` unless its spec says ``nullable=False``;
  then ``to_json`` refuses to send ``None`` there.
* **On reading**, a field without a default must be present. A field with a
  default may be missing: it then reads as ``None`` where its type allows it
  (the value is not known), else as its default. Keys the reader does not know
  are ignored (version 1 may gain keys, never lose them), except by commands,
  which are ``closed``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, ClassVar, Self

from ...errors import MonitorError

#: The schema version every message carries as ``v``.
VERSION = 1
#: Significant digits kept for measurements: more than any sensor here resolves.
SIGNIFICANT_DIGITS = 6
#: Decimal places kept for timestamps (keys ``ts`` and ``*_ts``): milliseconds.
TS_DECIMALS = 3
#: Upper bound on a message off the network, unless its class says otherwise.
MAX_BYTES = 64 * 1024


class MessageError(MonitorError, ValueError):
    """A message cannot be built, sent or read. The text names the key and what is wrong."""


class CommandError(MessageError):
    """A command could not be accepted. ``request_id`` is echoed when it could be read."""

    def __init__(self, message: str, *, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


class _Invalid(Exception):
    """Raised inside the machinery; the public entry points turn it into the class's error."""


# --------------------------------------------------------------------------- JSON values


def is_ts_key(key: str) -> bool:
    """Timestamps keep milliseconds; every other number keeps significant digits."""
    return key == "ts" or key.endswith("_ts")


def round_number(x: float, key: str) -> float:
    if is_ts_key(key):
        return round(x, TS_DECIMALS)
    # Significant digits, not decimal places: 0.000123 g and 61234.5 g both survive.
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


def clean(value: Any, key: str = "") -> Any:
    """``value`` as JSON-ready Python: finite rounded floats, None for NaN/inf, lists for tuples.

    ``key`` is the dict key the value sits under; it decides how floats round.
    Enums become their values, messages their dicts.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its plain value
    if isinstance(value, Entry):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v, key) for v in value]
    if getattr(value, "shape", None) == () and hasattr(value, "item"):  # numpy scalar
        return clean(value.item(), key)
    if hasattr(value, "tolist"):  # numpy array
        return clean(value.tolist(), key)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        try:
            f = float(value)
        except OverflowError:
            return None
        return round_number(f, key) if math.isfinite(f) else None
    raise MessageError(f"{key or 'value'}: cannot put {type(value).__name__} {value!r:.60} "
                       "in a payload")


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of JSON-ready data; never emits NaN or Infinity."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def json_type(value: Any) -> str:
    """How a value reads in an error message: ``a number``, ``null``, ``an array`` ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value),
                                                                      type(value).__name__)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys; a sender who writes two
    # "action"s meant something we cannot guess.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"key {key!r} appears twice")
        out[key] = value
    return out


def _reject_constant(token: str) -> Any:
    raise _Invalid(f"{token} is not valid JSON")


def decode(payload: bytes, limit: int) -> dict[str, Any]:
    """Bytes off the network as a JSON object; anything odd raises ``_Invalid``."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _Invalid("payload must be bytes")
    if len(payload) > limit:
        raise _Invalid(f"payload is {len(payload)} bytes; the limit is {limit}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("payload is not UTF-8") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _Invalid:
        raise
    except RecursionError:
        raise _Invalid("payload is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, or an integer with too many digits
        raise _Invalid(f"payload is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise _Invalid(f"payload must be a JSON object, not {type(data).__name__}")
    return data


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
    nullable: bool | None = None   # on the wire; None: ``X | None`` fields may be null
    optional: bool = False         # left out of the JSON when None (e.g. ``by``)

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
        return ((self.minimum is None or x >= self.minimum)
                and (self.exclusive_minimum is None or x > self.exclusive_minimum)
                and (self.maximum is None or x <= self.maximum))


def spec(default: Any = dataclasses.MISSING, *,
         factory: Callable[[], Any] | Any = dataclasses.MISSING, **rules: Any) -> Any:
    """A dataclass field with a :class:`Spec`: ``rms_mg: float | None = spec(None, minimum=0)``."""
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={"spec": Spec(**rules)})


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
        for name, value in (("minimum", sp.minimum), ("exclusiveMinimum", sp.exclusive_minimum),
                            ("maximum", sp.maximum)):
            if value is not None:
                out[name] = int(value) if float(value).is_integer() else value
        return out


class _Int(_Number):
    want = "a whole number"
    schema_type = "integer"

    def build(self, v: Any, path: str, key: str, sp: Spec) -> int:  # type: ignore[override]
        if getattr(v, "shape", None) == () and hasattr(v, "item"):
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise self.bad(v, path)
        if not sp.in_bounds(v):
            raise _Invalid(f"{path} must be a whole number {sp.bounds_text()}, not {v!r:.40}")
        return int(v)

    def read(self, v: Any, path: str, key: str, sp: Spec) -> int:
        # JSON Schema counts 3.0 as an integer; so does this reader.
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return self.build(v, path, key, sp)


class _Bool(_Kind):
    want = "true or false"
    schema_type = "boolean"

    def build(self, v: Any, path: str, key: str, sp: Spec) -> bool:
        if type(v).__name__ == "bool_":  # numpy's
            v = bool(v)
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
        return v.value

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        return {"enum": [m.value for m in self.cls]}


class _Nested(_Kind):
    want = "an object"

    def __init__(self, cls: type[Entry]):
        self.cls = cls

    def build(self, v: Any, path: str, key: str, sp: Spec) -> Entry:
        if isinstance(v, self.cls):
            return v
        if isinstance(v, Mapping):
            return self.cls._read(v, path)
        raise self.bad(v, path)

    def read(self, v: Any, path: str, key: str, sp: Spec) -> Entry:
        if not isinstance(v, dict):
            raise self.bad(v, path)
        return self.cls._read(v, path)

    def dump(self, v: Any) -> dict[str, Any]:
        return v.to_dict()

    def schema(self, sp: Spec, defs: dict[str, Any]) -> dict[str, Any]:
        if issubclass(self.cls, Message):
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
            key = self.keys.build(name, f"key {name!r} of {path}", name, Spec())
            value = (self.values.read if read else self.values.build)(x, where, name, Spec())
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
            out["propertyNames"] = self.keys.schema(Spec(), defs)
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
    if isinstance(hint, type) and issubclass(hint, Entry):
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
    name: str
    kind: _Kind
    spec: Spec
    field: dataclasses.Field[Any]

    @property
    def typed_nullable(self) -> bool:
        return isinstance(self.kind, _Maybe)

    @property
    def wire_nullable(self) -> bool:
        return self.typed_nullable if self.spec.nullable is None else self.spec.nullable

    @property
    def has_default(self) -> bool:
        return (self.field.default is not dataclasses.MISSING
                or self.field.default_factory is not dataclasses.MISSING)

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
        hints = typing.get_type_hints(cls)
        found = tuple(_Field(f.name, _kind_of(hints[f.name]), f.metadata.get("spec", Spec()), f)
                      for f in dataclasses.fields(cls))
        _LAYOUTS[cls] = found
    return found


# --------------------------------------------------------------------------- the bases


class Entry:
    """A JSON object inside a message (a set of a session record, the grade thresholds).

    Subclasses are frozen dataclasses. Values are checked and normalised when
    the dataclass is built, so an instance always holds what goes on the wire.
    """

    #: The name of its definition in a schema (``#/$defs/<schema_name>``) or its schema file.
    schema_name: ClassVar[str] = ""
    #: One line for the schema's ``title``.
    title: ClassVar[str] = ""
    #: The error this class raises (commands raise CommandError).
    error: ClassVar[type[MessageError]] = MessageError

    def __post_init__(self) -> None:
        try:
            for f in layout(type(self)):
                value = getattr(self, f.name)
                object.__setattr__(self, f.name, f.kind.build(value, f.name, f.name, f.spec))
            self._check()
        except _Invalid as err:
            raise self._error(err) from None

    def _check(self) -> None:
        """Rules across fields; raise ``_Invalid``."""

    @classmethod
    def _error(cls, err: _Invalid | str, request_id: str | None = None) -> MessageError:
        text = str(err)
        if issubclass(cls.error, CommandError):
            return cls.error(text, request_id=request_id)
        return cls.error(f"{cls.schema_name}: {text}")

    # -- writing ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict: every field, ``optional`` ones only when set."""
        try:
            return self._dump("")
        except _Invalid as err:
            raise self._error(err) from None

    def _dump(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in layout(type(self)):
            value = getattr(self, f.name)
            if value is None:
                if f.spec.optional:
                    continue
                if not f.wire_nullable:
                    raise _Invalid(f"{_join(path, f.name)} is missing: it may not be null")
                out[f.name] = None
            elif isinstance(f.kind, _Nested) or (isinstance(f.kind, _Maybe)
                                                 and isinstance(f.kind.inner, _Nested)):
                out[f.name] = value._dump(_join(path, f.name))
            elif isinstance(f.kind, _Seq) and isinstance(f.kind.inner, _Nested):
                out[f.name] = [x._dump(f"{_join(path, f.name)}[{i}]") for i, x in enumerate(value)]
            else:
                out[f.name] = f.kind.dump(value)
        return out

    # -- reading ---------------------------------------------------------------

    @classmethod
    def from_dict(cls, obj: Any) -> Self:
        """Read an already parsed JSON object (e.g. one entry of a list); see ``from_json``."""
        try:
            return cls._read(obj, "")
        except _Invalid as err:
            raise cls._error(err) from None

    @classmethod
    def _read(cls, obj: Any, path: str) -> Self:
        if not isinstance(obj, Mapping):
            raise _Invalid(f"{path or 'payload'} must be a JSON object, not {json_type(obj)}")
        fields = layout(cls)
        missing = [f.name for f in fields if not f.has_default and f.name not in obj]
        if missing:
            raise _Invalid(f"missing {', '.join(map(repr, missing))}"
                           + (f" in {path}" if path else ""))
        values = {f.name: (f.kind.read(obj[f.name], _join(path, f.name), f.name, f.spec)
                           if f.name in obj else f.read_default())
                  for f in fields}
        return cls._assemble(values)

    @classmethod
    def _assemble(cls, values: dict[str, Any]) -> Self:
        """An instance from values already checked (skips the producer's checks)."""
        obj = object.__new__(cls)
        for name, value in values.items():
            object.__setattr__(obj, name, value)
        obj._check()
        return obj

    # -- describing ------------------------------------------------------------

    @classmethod
    def _object_schema(cls, defs: dict[str, Any]) -> dict[str, Any]:
        fields = layout(cls)
        props: dict[str, Any] = {}
        for f in fields:
            props[f.name] = _field_schema(f, defs)
        out: dict[str, Any] = {}
        if cls.title:
            out["title"] = cls.title
        out |= {"type": "object", "properties": props,
                "required": [f.name for f in fields if not f.spec.optional],
                "additionalProperties": True}
        return out


class Message(Entry):
    """A whole MQTT payload: ``v`` first, then the fields; a schema file of its own.

    ``to_json()`` gives the bytes to publish; ``from_json(data)`` reads bytes
    off the network, raising :class:`MessageError` (only) for anything not
    right. Subclasses name their ``schema_name`` (the file
    ``schemas/<schema_name>.json``) and a ``title``.
    """

    #: Free text for the schema's ``description``.
    description: ClassVar[str] = ""
    #: Extra top-level schema keywords (rules across fields).
    schema_extra: ClassVar[dict[str, Any]] = {}
    #: The largest payload ``from_json`` reads.
    max_bytes: ClassVar[int] = MAX_BYTES
    #: Closed messages refuse unknown keys and take only ``v`` = 1 (commands).
    closed: ClassVar[bool] = False

    def _dump(self, path: str) -> dict[str, Any]:
        return {"v": VERSION} | super()._dump(path)

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON: NaN and infinities were made null, floats rounded, when built."""
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        """Parse and check one payload; raise :class:`MessageError` for anything else."""
        try:
            return cls._read_message(decode(data, cls.max_bytes))
        except _Invalid as err:
            raise cls._error(err) from None

    @classmethod
    def from_dict(cls, obj: Any) -> Self:
        try:
            return cls._read_message(obj)
        except _Invalid as err:
            raise cls._error(err) from None

    @classmethod
    def _read(cls, obj: Any, path: str) -> Self:
        # A whole message inside another (an alert inside alerts/active): read it as itself.
        if isinstance(obj, Mapping) and "v" in obj:
            _check_version(obj["v"], _join(path, "v"))
        return super()._read(obj, path)

    @classmethod
    def _read_message(cls, obj: Any) -> Self:
        if not isinstance(obj, Mapping):
            raise _Invalid(f"payload must be a JSON object, not {json_type(obj)}")
        if "v" not in obj:
            raise _Invalid("missing 'v'")
        _check_version(obj["v"], "v")
        return super()._read(obj, "")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """This message's JSON Schema (draft 2020-12); see :mod:`.schema`."""
        from .schema import message_schema
        return message_schema(cls)


def _check_version(v: Any, path: str) -> None:
    # Newer versions only add keys ("extend rather than rename"), so a reader
    # takes any version >= 1 with the keys it knows.
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _Invalid(f"{path} must be a schema version >= 1, not {v!r:.20}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _field_schema(f: _Field, defs: dict[str, Any]) -> dict[str, Any]:
    kind = f.kind
    if isinstance(kind, _Maybe) and not f.wire_nullable:
        kind = kind.inner
    out = kind.schema(f.spec, defs)
    doc = f.spec.doc or ("Unix seconds" if is_ts_key(f.name) and isinstance(
        kind.inner if isinstance(kind, _Maybe) else kind, _Number) else "")
    if doc:
        out["description"] = doc
    return out


class Command(Message):
    """A command in (``cmd/<name>``): a closed, small message read as strictly as can be.

    Anything on the network can publish there (the ACL narrows who), so the
    reader trusts nothing: at most ``max_bytes`` of UTF-8 JSON, an object with
    ``v`` exactly the integer 1, no unknown or duplicate keys, values of
    exactly the right type (``true`` is not a number, ``1.0`` is not a
    version). Errors are :class:`CommandError`, whose text goes straight into
    the reply and which carries ``request_id`` once that could be read.
    """

    #: The command's topic level: ``cmd/<name>``.
    name: ClassVar[str] = ""
    error: ClassVar[type[MessageError]] = CommandError
    closed: ClassVar[bool] = True
    #: Commands are tiny; anything bigger is a mistake or an attack.
    max_bytes: ClassVar[int] = 4096

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        try:
            obj = decode(data, cls.max_bytes)
        except _Invalid as err:
            raise cls._error(err) from None
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: Any) -> Self:
        if not isinstance(obj, Mapping):
            raise cls._error(f"payload must be a JSON object, not {type(obj).__name__}")
        fields = {f.name: f for f in layout(cls)}
        request_id = None
        try:
            # First, so that every later error can be echoed with it.
            if "request_id" in obj and "request_id" in fields:
                f = fields["request_id"]
                request_id = f.kind.read(obj["request_id"], f.name, f.name, f.spec)
        except _Invalid as err:
            raise cls._error(err) from None
        try:
            return cls._read_closed(obj, fields)
        except _Invalid as err:
            raise cls._error(err, request_id) from None

    @classmethod
    def _read_closed(cls, obj: Mapping[str, Any], fields: dict[str, _Field]) -> Self:
        unknown = set(obj) - set(fields) - {"v"}
        if unknown:
            raise _Invalid(f"unknown key{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(sorted(map(repr, unknown)))} for {cls.name}")
        missing = ({"v"} | {n for n, f in fields.items() if not f.has_default}) - set(obj)
        if missing:
            raise _Invalid(f"missing {', '.join(sorted(map(repr, missing)))} for {cls.name}")
        version = obj["v"]
        if type(version) is not int or version != VERSION:
            raise _Invalid(f"v must be {VERSION}, not {version!r}")
        values = {}
        for name, f in fields.items():
            if name not in obj:
                values[name] = f.read_default()
            elif obj[name] is None and not f.wire_nullable:
                # null is not "left out": a command says exactly what it means
                raise f.kind.bad(None, name) if not isinstance(f.kind, _Maybe) \
                    else f.kind.inner.bad(None, name)
            else:
                values[name] = f.kind.read(obj[name], name, name, f.spec)
        return cls._assemble(values)
