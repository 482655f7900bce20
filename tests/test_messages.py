"""The message format (monitor.mqtt.messages): round trips, the readers against anything,
the generated schemas against jsonschema, the documents against the classes."""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.mqtt import commands as old_commands
from monitor.mqtt import messages, schemas
from monitor.mqtt.messages import (
    COMMANDS,
    DEFAULT_GRADES,
    MESSAGES,
    ActiveAlerts,
    AlertEvent,
    Calibrate,
    Card,
    CheckIn,
    Command,
    CommandError,
    CommandResult,
    Grades,
    Hydration,
    Message,
    MessageError,
    Profile,
    SessionCommand,
    SessionRecord,
    SessionReport,
    Tare,
    Tremor,
    TremorLevel,
    parse_command,
)
from monitor.mqtt.messages.base import Entry
from monitor.mqtt.messages.fields import (
    _Bool,
    _Enum,
    _Int,
    _Json,
    _Map,
    _Maybe,
    _Nested,
    _Number,
    _Seq,
    _Str,
    layout,
)
from monitor.mqtt.payloads import tremor_level
from monitor.mqtt.topics import COMMAND_NAMES

TS = 1732435200.5
ROOT = Path(__file__).resolve().parents[1]
TELEMETRY = [c for c in MESSAGES.values() if not issubclass(c, Command)]


@pytest.fixture(scope="module")
def validator():
    """name -> Draft 2020-12 validator of the committed schema, every schema registered for $ref."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    loaded = {name: schemas.load(name) for name in MESSAGES}
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in loaded.values()
    )
    cache = {}

    def make(name):
        if name not in cache:
            cache[name] = jsonschema.Draft202012Validator(loaded[name], registry=registry)
        return cache[name]

    return make


# --------------------------------------------------------------------------- valid messages, made
# from each class's own fields, so that a class added tomorrow is covered without a line here.


def _values(kind, sp, sendable: bool):
    if isinstance(kind, _Maybe):
        inner = _values(kind.inner, sp, sendable)
        return inner if sendable else st.none() | inner
    if isinstance(kind, _Str):
        if sp.pattern:
            return st.from_regex(sp.pattern, fullmatch=True)
        return st.text(min_size=sp.min_length or 0, max_size=12)
    if isinstance(kind, _Int):
        return st.integers(int(sp.minimum if sp.minimum is not None else -50), 10**6)
    if isinstance(kind, _Number):
        low = sp.minimum if sp.minimum is not None else sp.exclusive_minimum
        return st.floats(
            low if low is not None else -1e6,
            sp.maximum if sp.maximum is not None else 2e9,
            allow_nan=False,
            allow_infinity=False,
            exclude_min=sp.exclusive_minimum is not None,
        )
    if isinstance(kind, _Bool):
        return st.booleans()
    if isinstance(kind, _Enum):
        return st.sampled_from(list(kind.cls))
    if isinstance(kind, _Seq):
        return st.lists(_values(kind.inner, sp, sendable), max_size=3)
    if isinstance(kind, _Map) and isinstance(kind.values, _Json):
        return st.dictionaries(
            st.text(max_size=8),
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False)
            | st.text(max_size=8),
            max_size=3,
        )
    if isinstance(kind, _Map):
        keys = (
            st.sampled_from(list(kind.keys.cls))
            if isinstance(kind.keys, _Enum)
            else st.text(min_size=1, max_size=8)
        )
        return st.dictionaries(keys, _values(kind.values, sp, sendable), max_size=3)
    if isinstance(kind, _Nested):
        return instances(kind.cls)
    raise AssertionError(f"no strategy for {kind}")


@st.composite
def instances(draw, cls):
    """A valid, sendable instance of ``cls``."""
    kwargs = {}
    for f in layout(cls):
        sendable = not f.wire_nullable and not f.spec.optional
        kwargs[f.name] = draw(_values(f.kind, f.spec, sendable))
    try:
        return cls(**kwargs)
    except MessageError:
        assume(False)  # a rule across fields (grades in order, ok vs error)


def field_names(cls) -> set[str]:
    """Every key a class and its nested entries know."""
    out = {"v"} if issubclass(cls, Message) else set()
    for f in layout(cls):
        out.add(f.name)
        kind = f.kind.inner if isinstance(f.kind, _Maybe) else f.kind
        kind = kind.inner if isinstance(kind, _Seq) else kind
        if isinstance(kind, _Nested):
            out |= field_names(kind.cls)
    return out


def map_fields(cls) -> set[str]:
    """The fields of a class (and its entries) that hold a dictionary, not an object."""
    out = set()
    for f in layout(cls):
        kind = f.kind.inner if isinstance(f.kind, _Maybe) else f.kind
        kind = kind.inner if isinstance(kind, _Seq) else kind
        if isinstance(kind, _Map):
            out.add(f.name)
        elif isinstance(kind, _Nested):
            out |= map_fields(kind.cls)
    return out


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("cls", MESSAGES.values(), ids=MESSAGES)
def test_round_trip_and_schema(validator, cls):
    @SETTINGS
    @given(message=instances(cls))
    def check(message):
        data = message.to_json()
        json.loads(data, parse_constant=_no_constant)  # strict JSON: no NaN, no Infinity
        back = cls.from_json(data)
        assert back == message
        assert back.to_json() == data
        errors = list(validator(cls.schema_name).iter_errors(json.loads(data)))
        assert not errors, errors

    check()


@settings(max_examples=400, deadline=None)
@given(cls=st.sampled_from(list(MESSAGES.values())), data=st.binary(max_size=300))
def test_random_bytes_raise_only_message_error(cls, data):
    with contextlib.suppress(MessageError):
        cls.from_json(data)


def _no_constant(token):
    raise AssertionError(f"{token} in a payload")


def json_values(keys):
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=10,
    )


ALL_KEYS = sorted(set().union(*(field_names(c) for c in MESSAGES.values())))


@settings(max_examples=250, deadline=None)
@given(
    cls=st.sampled_from(list(MESSAGES.values())),
    value=st.dictionaries(st.sampled_from(ALL_KEYS), json_values(ALL_KEYS), max_size=8)
    | json_values(ALL_KEYS),
)
def test_random_json_raises_only_message_error(cls, value):
    try:
        back = cls.from_json(json.dumps(value).encode())  # NaN/Infinity included
    except MessageError:
        return
    if _sendable(back):
        assert cls.from_json(back.to_json()) == back


def _sendable(message) -> bool:
    try:
        message.to_json()
    except MessageError:
        return False
    return True


def _mutants(cls):
    """A valid payload with one key replaced by anything, or taken out, as strict JSON."""
    keys = sorted(field_names(cls))
    return st.tuples(
        instances(cls).map(lambda m: json.loads(m.to_json())),
        st.sampled_from(keys),
        st.none() | json_values(keys) | st.just(...),
    )


def _mutate(mutant) -> tuple[dict, bytes]:
    payload, key, value = mutant
    if value is ...:
        payload.pop(key, None)
    else:
        payload[key] = value
    try:
        return payload, json.dumps(payload, allow_nan=False).encode()
    except ValueError:  # NaN or an infinity: not JSON, so no schema says anything of it
        assume(False)
        raise


@pytest.mark.parametrize("cls", TELEMETRY, ids=[c.schema_name for c in TELEMETRY])
def test_readers_take_everything_the_schema_allows(validator, cls):
    """A consumer must read whatever a producer may send (the schema is the producer's word)."""

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutant=_mutants(cls))
    def check(mutant):
        payload, data = _mutate(mutant)
        if validator(cls.schema_name).is_valid(payload):
            cls.from_json(data)

    check()


@pytest.mark.parametrize("cls", COMMANDS.values(), ids=COMMANDS)
def test_commands_accept_nothing_the_schema_rejects(validator, cls):
    """The published schema is a promise: whatever the station accepts, it documents."""

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutant=_mutants(cls))
    def check(mutant):
        payload, data = _mutate(mutant)
        try:
            cls.from_json(data)
        except CommandError:
            return
        assert validator(cls.schema_name).is_valid(payload), payload

    check()


# --------------------------------------------------------------------------- commands


near_commands = st.dictionaries(
    st.sampled_from(
        ["v", "mass_g", "action", "phase", "athlete", "id", "by", "request_id", "extra"]
    ),
    st.one_of(
        st.just(1),
        st.sampled_from(["start", "stop", "pre", "post", "A12", "display", ""]),
        st.floats(min_value=-10, max_value=600000),
        st.integers(-5, 600000),
        st.booleans(),
        st.none(),
        st.text(max_size=70),
    ),
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from((*COMMAND_NAMES, "reboot")),
    payload=st.binary(max_size=80) | near_commands.map(lambda d: json.dumps(d).encode()),
)
def test_commands_read_exactly_as_the_current_parser(name, payload):
    """Until monitor.mqtt.commands becomes a thin layer over this, both must agree exactly."""
    try:
        old = old_commands.parse_command(name, payload)
    except old_commands.CommandError as err:
        old, old_err = None, err
    try:
        new = parse_command(name, payload)
    except CommandError as err:
        new, new_err = None, err
    if old is None:
        assert new is None, (payload, new)
        assert new_err.request_id == old_err.request_id
        if name != "session":  # session gained 'checkout' in its list of actions
            assert str(new_err) == str(old_err)
        return
    assert new is not None, (payload, new_err)
    for f in dataclasses.fields(old):
        assert getattr(new, f.name) == getattr(old, f.name)


def test_session_command_takes_an_athlete_and_checkout():
    start = parse_command("session", b'{"v":1,"action":"start","athlete":"a3k7q2"}')
    assert start == SessionCommand("start", athlete="a3k7q2") and start.starts
    assert parse_command("session", b'{"v":1,"action":"checkout"}').stops
    assert parse_command("session", b'{"v":1,"action":"stop"}').stops
    for bad, message in [
        (b'{"v":1,"action":"start","athlete":"A3"}', "athlete id"),
        (b'{"v":1,"action":"start","athlete":null}', "must be a string"),
        (b'{"v":1,"action":"start","athlete":"a/b"}', "athlete id"),
    ]:
        with pytest.raises(CommandError, match=message):
            parse_command("session", bad)


def test_command_errors_carry_the_request_id():
    with pytest.raises(CommandError) as info:
        parse_command("calibrate", b'{"v":1,"mass_g":-1,"request_id":"r9"}')
    assert info.value.request_id == "r9" and "more than 0" in str(info.value)
    with pytest.raises(CommandError, match="unknown command"):
        parse_command("reboot", b'{"v":1}')


def test_command_names_match_the_topics():
    assert tuple(COMMANDS) == COMMAND_NAMES
    assert all(COMMANDS[n].schema_name == f"cmd_{n}" for n in COMMAND_NAMES)


def test_commands_are_small_and_unambiguous():
    with pytest.raises(CommandError, match="limit"):
        Tare.from_json(b'{"v":1,"request_id":"' + b"x" * 5000 + b'"}')
    with pytest.raises(CommandError, match="twice"):
        Calibrate.from_json(b'{"v":1,"mass_g":1,"mass_g":2}')
    with pytest.raises(CommandError, match="not valid JSON"):
        Calibrate.from_json(b'{"v":1,"mass_g":NaN}')
    assert Calibrate(500).to_json() == b'{"v":1,"mass_g":500.0}'


# --------------------------------------------------------------------------- the grades


def test_grades_are_defined_once_and_grade_in_log_steps():
    assert (DEFAULT_GRADES.elevated_ratio, DEFAULT_GRADES.high_ratio) == (2.0, 4.0)
    assert [DEFAULT_GRADES.level(r) for r in (None, 0.5, 1.99, 2.0, 3.99, 4.0, 50.0)] == [
        "normal",
        "normal",
        "normal",
        "elevated",
        "elevated",
        "high",
        "high",
    ]
    assert DEFAULT_GRADES.level(9.0, measurable=False) is TremorLevel.NONE
    assert DEFAULT_GRADES.level(math.nan) is TremorLevel.NORMAL
    coach = Grades(elevated_ratio=1.5, high_ratio=3.0)
    assert [coach.level(r) for r in (1.4, 1.5, 3.0)] == ["normal", "elevated", "high"]
    assert tremor_level(3.0) == "elevated"


@pytest.mark.parametrize(
    "values",
    [
        {"elevated_ratio": 4.0, "high_ratio": 2.0},
        {"elevated_ratio": 2.0, "high_ratio": 2.0},
        {"elevated_ratio": 1.0, "high_ratio": 3.0},
        {"elevated_ratio": math.nan, "high_ratio": 3.0},
        {"elevated_ratio": "2", "high_ratio": 3.0},
    ],
)
def test_nonsense_grades_are_refused(values):
    with pytest.raises(MessageError):
        Grades(**values)


def test_grades_travel_in_the_session_and_the_profile():
    coach = Grades(elevated_ratio=1.8, high_ratio=3.5)
    s = SessionReport(station="bench-1", state="rest", thresholds=coach, ts=TS)
    assert json.loads(s.to_json())["thresholds"] == {"elevated_ratio": 1.8, "high_ratio": 3.5}
    assert SessionReport.from_json(s.to_json()).thresholds == coach
    # A station that does not send them yet: the reader takes the defaults, not its own numbers.
    old = b'{"v":1,"ts":1,"station":"bench-1","name":"B","state":"idle","set_count":0}'
    assert SessionReport.from_json(old).thresholds is DEFAULT_GRADES
    p = Profile.from_json(
        b'{"v":1,"ts":1,"athlete":"a1","baselines_mg":{"limb":8.1},'
        b'"thresholds":{"elevated_ratio":1.8,"high_ratio":3.5},"updated_ts":1}'
    )
    assert p.thresholds == coach
    with pytest.raises(MessageError, match="below high_ratio"):
        Profile.from_json(
            b'{"v":1,"athlete":"a1","baselines_mg":{},'
            b'"thresholds":{"elevated_ratio":3,"high_ratio":2}}'
        )


# --------------------------------------------------------------------------- producers


def test_values_are_normalised_when_built():
    t = Tremor(
        station="bench-1",
        sensor="wrist",
        rms_mg=np.float32(12.3456789),
        peak_hz=math.nan,
        ratio=np.float64(math.inf),
        level="normal",
        measurable=np.bool_(True),
        band_rms_mg={"tremor": np.float32(12.5), "x": math.nan},
        regularity=1.0000000001,
        window_s=np.int64(2),
        ts=1732435200.123456,
    )
    assert t.rms_mg == 12.3457 and t.peak_hz is None and t.ratio is None
    assert t.level is TremorLevel.NORMAL and t.measurable is True
    assert t.band_rms_mg == {"tremor": 12.5, "x": None} and t.regularity == 1.0
    assert t.window_s == 2.0 and t.ts == 1732435200.123
    assert type(json.loads(t.to_json())["level"]) is str


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Tremor(station="bench-1", sensor="", level="none", window_s=1), "sensor"),
        (lambda: Tremor(station="bench 1", sensor="s", level="none", window_s=1), "station"),
        (
            lambda: Tremor(station="b", sensor="s", level="extreme", window_s=1),
            "level must be one of",
        ),
        (lambda: Tremor(station="b", sensor="s", level="none", window_s=0), "more than 0"),
        (
            lambda: Tremor(station="b", sensor="s", level="none", rms_mg=-1, window_s=1),
            "at least 0",
        ),
        (lambda: Tremor(station="b", sensor="s", level="none", ts=math.nan, window_s=1), "finite"),
        (
            lambda: Tremor(station="b", sensor="s", level="none", moving=1, window_s=1),
            "true or false",
        ),
        (lambda: SessionReport(station="b", state="idle", set_count=2.5), "whole number"),
        (lambda: SessionReport(station="b", state="idle", set_count=True), "whole number"),
        (
            lambda: AlertEvent(
                station="b", id="x", code="c", level="info", state="open", message=""
            ),
            "state must be one of",
        ),
        (
            lambda: AlertEvent(
                station="b",
                id="x",
                code="c",
                level="info",
                state="raised",
                message="",
                evidence={"x": object()},
            ),
            "cannot put",
        ),
        (lambda: CommandResult(station="b", ok=True, error="oops"), "null when ok"),
        (lambda: CommandResult(station="b", ok=False), "what was wrong"),
        (lambda: Calibrate(0), "more than 0"),
        (lambda: SessionCommand("pause"), "action must be one of"),
    ],
)
def test_bad_values_are_refused_when_built(build, message):
    with pytest.raises(MessageError, match=message):
        build()


def test_to_json_refuses_to_leave_out_what_the_schema_promises():
    t = Tremor(sensor="wrist", level="none", measurable=False, window_s=2.5)  # no station
    with pytest.raises(MessageError, match="station is missing"):
        t.to_json()
    s = SessionReport(station="bench-1")  # no state
    with pytest.raises(MessageError, match="state is missing"):
        s.to_json()


def test_optional_keys_are_left_out_when_not_set():
    raised = AlertEvent(
        station="b",
        id="x",
        code="c",
        level="info",
        state="raised",
        message="m",
        raised_ts=TS,
        ts=TS,
    )
    assert not {"by", "acked_ts", "silenced_until_ts", "follows"} & set(raised.to_dict())
    acked = dataclasses.replace(raised, state="acknowledged", by="display", acked_ts=TS + 1)
    assert acked.to_dict()["by"] == "display" and acked.to_dict()["acked_ts"] == TS + 1
    assert Tare().to_json() == b'{"v":1}'


def test_messages_are_values():
    t = Tare()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.request_id = "x"  # type: ignore[misc]
    assert all(c.__dataclass_params__.frozen for c in MESSAGES.values())


# --------------------------------------------------------------------------- readers


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_readers_take_what_they_know_and_leave_the_rest():
    # A newer version with a key this reader does not know.
    t = Tremor.from_json(
        j({"v": 2, "sensor": "wrist", "level": "high", "ratio": 4.5, "new_field": {"x": 1}})
    )
    assert t.ratio == 4.5 and t.level == "high"
    # Keys left out read as unknown (None), not as a made-up value.
    assert (t.station, t.ts, t.placement, t.measurable, t.window_s) == (None,) * 5
    s = SessionReport.from_json(j({"v": 1, "name": "Bench 1", "set_count": 2}))
    assert (s.name, s.set_count, s.state, s.rep_count) == ("Bench 1", 2, None, None)
    h = Hydration.from_json(j({"v": 1, "ts": TS, "mode": "body", "body_mass_loss_pct": 2.3}))
    assert h.mode == "body" and h.intake_ml is None
    assert SessionReport.from_json(j({"v": 1, "set_count": 3.0})).set_count == 3
    fake = AlertEvent.from_json(
        j(
            {
                "v": 1,
                "id": "x1",
                "level": "urgent",
                "code": "redflag.fall",
                "message": "Possible fall",
                "red_flag": True,
            }
        )
    )
    assert fake.state == "raised" and fake.red_flag and fake.raised_ts is None


BAD_TELEMETRY = [
    (Tremor, b"not json"),
    (Tremor, b"\xff\xfe\x00"),
    (Tremor, b"[1, 2]"),
    (Tremor, b'"text"'),
    (Tremor, b'{"v": 1, "sensor": "w", "level": "high", "ratio": NaN}'),
    (Tremor, b'{"v": 1, "sensor": "w", "level": "high", "ratio": Infinity}'),
    (Tremor, j({"v": 1, "sensor": "w", "level": "high", "rms_mg": "12"})),
    (Tremor, j({"v": 1, "sensor": "w", "level": "high", "rms_mg": True})),
    (Tremor, b'{"v": 1, "sensor": "w", "level": "high", "rms_mg": 1' + b"0" * 400 + b"}"),
    (Tremor, b'{"v": 1, "sensor": "w", "level": "high", "rms_mg": 1e400}'),
    (Tremor, j({"v": 1, "sensor": "w", "level": "purple"})),
    (Tremor, j({"sensor": "w", "level": "high"})),
    (Tremor, j({"v": "1", "sensor": "w", "level": "high"})),
    (Tremor, j({"v": 0, "sensor": "w", "level": "high"})),
    (Tremor, j({"v": 1, "sensor": ["wrist"], "level": "high"})),
    (Tremor, j({"v": 1, "sensor": "w"})),
    (Tremor, b'{"v": 1, "v": 1, "sensor": "w", "level": "high"}'),
    (Tremor, b"[" * 50_000 + b"]" * 50_000),
    (Tremor, j({"v": 1, "sensor": "w", "level": "high", "pad": "x" * 70_000})),
    (SessionReport, j({"v": 1, "set_count": -1})),
    (SessionReport, j({"v": 1, "set_count": 2.5})),
    (SessionReport, j({"v": 1, "name": 42})),
    (SessionReport, j({"v": 1, "thresholds": {"elevated_ratio": 3, "high_ratio": 2}})),
    (Hydration, j({"v": 1, "mode": "bucket"})),
    (AlertEvent, j({"v": 1, "id": 7, "level": "urgent"})),
    (AlertEvent, j({"v": 1, "level": "urgent"})),
    (ActiveAlerts, j({"v": 1, "alerts": {"a": 1}})),
    (CommandResult, j({"v": 1, "ok": False})),
    (
        SessionRecord,
        j(
            {
                "v": 1,
                "ts": 1,
                "station": "b",
                "id": "b:1",
                "started_ts": 1,
                "ended_ts": 2,
                "sets": [],
            }
        ),
    ),
    (
        SessionRecord,
        j(
            {
                "v": 1,
                "ts": 1,
                "station": "b",
                "id": "b:1",
                "athlete": None,
                "started_ts": 1,
                "ended_ts": 2,
            }
        ),
    ),
    (Card, j({"v": 1, "athlete": "a1", "display_name": ""})),
    (Card, b""),
]


@pytest.mark.parametrize("cls, payload", BAD_TELEMETRY)
def test_bad_payloads_are_refused_with_one_error(cls, payload):
    with pytest.raises(MessageError) as info:
        cls.from_json(payload)
    assert str(info.value).startswith(f"{cls.schema_name}: ")


def test_errors_name_the_key_deep_inside():
    rec = {
        "v": 1,
        "ts": 1,
        "station": "b",
        "id": "b:1",
        "athlete": None,
        "started_ts": 1,
        "ended_ts": 2,
        "sets": [
            {
                "index": 1,
                "kind": "reps",
                "sensor": "w",
                "placement": "limb",
                "start_ts": 1,
                "end_ts": 2,
                "reps": -3,
            }
        ],
    }
    with pytest.raises(MessageError, match=r"session_record: sets\[0\]\.reps must be a whole"):
        SessionRecord.from_json(j(rec))


def test_one_alert_of_a_list_can_be_read_on_its_own():
    good = AlertEvent(
        station="b",
        id="x",
        code="c",
        level="urgent",
        state="raised",
        message="m",
        raised_ts=TS,
        ts=TS,
    ).to_dict()
    assert AlertEvent.from_dict(good).level.rank == 3
    with pytest.raises(MessageError):
        AlertEvent.from_dict({"id": 3})


def test_size_limits_follow_the_payload():
    pad = "x" * (70 * 1024)
    big_record = {
        "v": 1,
        "ts": 1,
        "station": "b",
        "id": "b:1",
        "athlete": None,
        "started_ts": 1,
        "ended_ts": 2,
        "sets": [],
        "note": pad,
    }
    assert SessionRecord.from_json(j(big_record)).id == "b:1"
    with pytest.raises(MessageError, match="limit"):
        SessionRecord.from_json(j(big_record | {"note": "x" * (1024 * 1024)}))


# --------------------------------------------------------------------------- contract examples


CONTRACT_EXAMPLES = {
    "athlete": {
        "v": 1,
        "ts": TS,
        "station": "bench-1",
        "athlete": "a3k7qz5n2mb4x6c8d0fe",
        "guest": False,
        "since_ts": TS - 60,
        "source": "tag",
        "profile": "applied",
    },
    "profile": {
        "v": 1,
        "ts": TS,
        "athlete": "a3k7qz5n2mb4x6c8d0fe",
        "baselines_mg": {"limb": 8.1, "body": 3.2, "bench": 1.9},
        "body_mass_g": 72400.0,
        "thresholds": {"elevated_ratio": 2.0, "high_ratio": 4.0},
        "updated_ts": TS,
    },
    "card": {"v": 1, "ts": TS, "athlete": "m-5f2k", "display_name": "Sam"},
    "cmd_session": {"v": 1, "action": "start", "athlete": "a3k7qz5n2mb4x6c8d0fe"},
    "session_record": {
        "v": 1,
        "ts": TS,
        "station": "bench-1",
        "id": "bench-1:1732435200123",
        "athlete": "a3k7qz5n2mb4x6c8d0fe",
        "guest": False,
        "started_ts": TS - 1800,
        "ended_ts": TS,
        "end_reason": "superseded",
        "sets": [
            {
                "index": 1,
                "kind": "reps",
                "sensor": "wrist",
                "placement": "limb",
                "start_ts": TS - 1700,
                "end_ts": TS - 1660,
                "reps": 12,
                "ratio_median": 1.3,
                "ratio_peak": 2.1,
                "growth_per_min": 0.2,
                "recovery_s": 48.0,
            }
        ],
        "holds": [
            {
                "index": 3,
                "sensor": "forearm",
                "start_ts": TS - 900,
                "end_ts": TS - 855,
                "duration_s": 45.0,
                "ratio_peak": 3.1,
                "fatigue_ratio_peak": 1.2,
            }
        ],
        "alerts": [
            {
                "id": "bench-1:1732435200:0001",
                "code": "tremor.high",
                "level": "warning",
                "raised_ts": TS - 1650,
                "cleared_ts": TS - 1500,
                "acknowledged_ts": None,
                "by": None,
            }
        ],
        "hydration": {
            "mode": "bottle",
            "intake_ml": 450.0,
            "weigh_ins": [{"phase": "pre", "mass_g": 72400.0, "ts": TS - 1800}],
            "sweat_rate_l_per_h": 0.9,
            "body_mass_loss_pct": 1.1,
        },
        "trace": [
            {
                "ts": TS - 1740,
                "sensor": "wrist",
                "state": "reps",
                "ratio_p50": 1.2,
                "ratio_max": 2.0,
                "rms_mg_p50": 9.5,
            }
        ],
        "profile_update": {"baselines_mg": {"limb": 8.3}, "body_mass_g": 72100.0},
    },
}


@pytest.mark.parametrize("name", CONTRACT_EXAMPLES)
def test_contract_examples_fit_schema_and_reader(validator, name):
    payload = CONTRACT_EXAMPLES[name]
    errors = list(validator(name).iter_errors(payload))
    assert not errors, errors
    message = MESSAGES[name].from_json(j(payload))
    assert json.loads(message.to_json()) == payload


def test_session_record_schema_requires_athlete_and_sets(validator):
    record = CONTRACT_EXAMPLES["session_record"]
    assert {"athlete", "sets"} <= set(schemas.load("session_record")["required"])
    for key in ("athlete", "sets"):
        assert not validator("session_record").is_valid(
            {k: v for k, v in record.items() if k != key}
        )
    guest = SessionRecord.from_json(j(record | {"athlete": None, "guest": True}))
    assert guest.athlete is None and json.loads(guest.to_json())["athlete"] is None


def test_check_in_says_nobody():
    nobody = CheckIn.from_json(
        j(
            {
                "v": 1,
                "ts": TS,
                "station": "b",
                "athlete": None,
                "guest": False,
                "since_ts": None,
                "source": None,
                "profile": None,
            }
        )
    )
    assert nobody.nobody
    assert not CheckIn(station="b", athlete=None, guest=True).nobody


# --------------------------------------------------------------------------- generated files


def test_committed_schemas_and_field_reference_are_generated():
    assert schemas.stale() == [], "run: python -m monitor.mqtt.schemas"


def test_generated_schemas_are_valid_2020_12():
    jsonschema = pytest.importorskip("jsonschema")
    for name, cls in MESSAGES.items():
        jsonschema.Draft202012Validator.check_schema(cls.json_schema())
        assert cls.json_schema() == schemas.load(name)


def test_the_check_command_reports_and_fails_on_a_stale_file(tmp_path):
    for name, text in schemas.generated().items():
        (tmp_path / name).write_text(text, "utf-8")
    md = tmp_path / "PAYLOADS.md"
    md.write_text(f"# x\n{schemas.BEGIN}\nold\n{schemas.END}\n", "utf-8")
    (tmp_path / "tremor.json").write_text("{}", "utf-8")
    (tmp_path / "gone.json").write_text("{}", "utf-8")
    assert schemas.stale(tmp_path, md) == ["tremor.json", "gone.json", "PAYLOADS.md"]
    assert schemas.write(tmp_path, md) == ["tremor.json", "gone.json", "PAYLOADS.md"]
    assert schemas.stale(tmp_path, md) == [] and not (tmp_path / "gone.json").exists()
    assert "#### `session_record`" in md.read_text("utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "monitor.mqtt.schemas", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _payloads_md() -> str:
    return (ROOT / "monitor" / "mqtt" / "PAYLOADS.md").read_text("utf-8")


def test_every_payload_named_in_payloads_md_has_a_schema():
    rows = re.findall(
        r"^\| `([^`]+)` \| (?:yes|no) \| \d \| (?:`([^`]+)`|-) \|", _payloads_md(), re.MULTILINE
    )
    assert len(rows) >= 11
    named = set()
    for topic, schema in rows:
        if topic == "status":
            continue
        assert schema, f"topic {topic} names no schema"
        names = (
            [f"cmd_{n}" for n in COMMAND_NAMES] + ["cmd_result"]
            if schema == "cmd_<name>"
            else [schema]
        )
        for n in names:
            assert (ROOT / "monitor" / "mqtt" / "schemas" / f"{n}.json").exists(), n
        named |= set(names)
    assert named == set(MESSAGES), "every message is in the topic table, and nothing else"


def test_examples_in_payloads_md_use_only_real_keys():
    text = _payloads_md()
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    checked = 0
    for section in sections:
        title = section.split("\n", 1)[0].strip()
        if title not in MESSAGES:
            continue
        example = "\n".join(line for line in section.splitlines() if line.startswith("    "))
        # The keys of a dictionary-like field (band names, placements) are data, not fields.
        example = re.sub(
            rf'"({"|".join(map_fields(MESSAGES[title]))})":\{{[^{{}}]*\}}', "", example
        )
        keys = set(re.findall(r'"([a-z_]+)"\s*:', example))
        assert keys, f"section {title} has no example"
        unknown = keys - field_names(MESSAGES[title])
        assert not unknown, f"PAYLOADS.md's {title} example names {unknown}"
        checked += 1
    assert checked >= 8


# --------------------------------------------------------------------------- the module itself


@pytest.mark.parametrize("module", ["__init__", "values", "telemetry", "athletes", "commands"])
def test_docstring_examples_hold(module):
    mod = sys.modules[f"monitor.mqtt.messages{'' if module == '__init__' else '.' + module}"]
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_format_knows_nothing_of_the_station_layers():
    # The display and the history service import this; it must not pull in i2c, sim, analysis.
    code = (
        "import sys, monitor.mqtt.messages; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['monitor', 'i2c'], ['monitor', 'sim'], ['monitor', 'analysis'])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_entry_class_is_reachable_and_named():
    def entries(cls):
        for f in layout(cls):
            kind = f.kind.inner if isinstance(f.kind, _Maybe) else f.kind
            kind = kind.inner if isinstance(kind, _Seq) else kind
            if isinstance(kind, _Nested):
                yield kind.cls
                yield from entries(kind.cls)

    for cls in MESSAGES.values():
        assert cls.schema_name and cls.title, cls
        for sub in entries(cls):
            assert issubclass(sub, Entry) and sub.schema_name and sub.title, sub
    assert messages.__all__ == sorted(messages.__all__, key=lambda n: (not n.isupper(), n))
