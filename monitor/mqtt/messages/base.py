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

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from .codec import (
    MAX_BYTES,
    VERSION,
    CommandError,
    MessageError,
    _Invalid,
    decode,
    dumps,
    json_type,
)
from .fields import _Field, _field_schema, _join, _Maybe, _Nested, _Seq, layout

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
    #: Whether it has a schema file of its own (a whole message) or lives in its parent's.
    has_schema_file: ClassVar[bool] = False
    #: The error this class raises (commands raise CommandError).
    error_type: ClassVar[type[MessageError]] = MessageError

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
        if issubclass(cls.error_type, CommandError):
            return cls.error_type(text, request_id=request_id)
        return cls.error_type(f"{cls.schema_name}: {text}")

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
            elif isinstance(f.kind, _Nested) or (
                isinstance(f.kind, _Maybe) and isinstance(f.kind.inner, _Nested)
            ):
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
        missing = [f.name for f in fields if f.name not in obj and not f.has_default]
        if missing:
            raise _Invalid(
                f"missing {', '.join(map(repr, missing))}" + (f" in {path}" if path else "")
            )
        values = {
            f.name: (
                f.kind.read(obj[f.name], f"{path}.{f.name}" if path else f.name, f.name, f.spec)
                if f.name in obj
                else f.read_default()
            )
            for f in fields
        }
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
        out |= {
            "type": "object",
            "properties": props,
            "required": [f.name for f in fields if not f.spec.optional],
            "additionalProperties": True,
        }
        return out


class Message(Entry):
    """A whole MQTT payload: ``v`` first, then the fields; a schema file of its own.

    ``to_json()`` gives the bytes to publish; ``from_json(data)`` reads bytes
    off the network, raising :class:`MessageError` (only) for anything not
    right. Subclasses name their ``schema_name`` (the file
    ``schemas/<schema_name>.json``) and a ``title``.
    """

    has_schema_file: ClassVar[bool] = True
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
    error_type: ClassVar[type[MessageError]] = CommandError
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
                request_id = _read_exactly(fields["request_id"], obj["request_id"])
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
            raise _Invalid(
                f"unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(sorted(map(repr, unknown)))} for {cls.name}"
            )
        missing = ({"v"} | {n for n, f in fields.items() if not f.has_default}) - set(obj)
        if missing:
            raise _Invalid(f"missing {', '.join(sorted(map(repr, missing)))} for {cls.name}")
        version = obj["v"]
        if type(version) is not int or version != VERSION:
            raise _Invalid(f"v must be {VERSION}, not {version!r}")
        values = {
            name: _read_exactly(f, obj[name]) if name in obj else f.read_default()
            for name, f in fields.items()
        }
        return cls._assemble(values)


def _read_exactly(f: _Field, value: Any) -> Any:
    """A command's value: null is not "left out", a command says exactly what it means."""
    if value is None and not f.wire_nullable:
        kind = f.kind.inner if isinstance(f.kind, _Maybe) else f.kind
        raise kind.bad(None, f.name)
    return f.kind.read(value, f.name, f.name, f.spec)
