"""The command parser: every good form, every bad form, and anything at all off the network."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.mqtt.commands import (
    MAX_PAYLOAD_BYTES,
    Ack,
    Calibrate,
    CommandError,
    Session,
    Tare,
    WeighIn,
    parse_command,
)
from monitor.mqtt.payloads import load_schema

NAMES = ("tare", "calibrate", "session", "weigh_in", "ack")


def cmd(name: str, **fields) -> bytes:
    return json.dumps({"v": 1} | fields).encode()


@pytest.mark.parametrize(
    "name, payload, expected",
    [
        ("tare", cmd("tare"), Tare()),
        ("tare", cmd("tare", request_id="r-1"), Tare(request_id="r-1")),
        ("calibrate", cmd("calibrate", mass_g=1000.0), Calibrate(mass_g=1000.0)),
        ("calibrate", cmd("calibrate", mass_g=500), Calibrate(mass_g=500.0)),
        ("calibrate", cmd("calibrate", mass_g=500000), Calibrate(mass_g=500000.0)),
        ("calibrate", cmd("calibrate", mass_g=0.5), Calibrate(mass_g=0.5)),
        ("session", cmd("session", action="start"), Session(action="start")),
        ("session", cmd("session", action="stop", request_id="x"), Session("stop", "x")),
        ("weigh_in", cmd("weigh_in", phase="pre", athlete="A12"), WeighIn("pre", "A12")),
        (
            "weigh_in",
            cmd("weigh_in", phase="post", athlete="jo.smith-2_b"),
            WeighIn("post", "jo.smith-2_b"),
        ),
        (
            "ack",
            cmd("ack", id="bench-1:1732435200:0007", by="display"),
            Ack("bench-1:1732435200:0007", "display"),
        ),
        ("ack", cmd("ack", id="a"), Ack("a")),
        ("ack", b' { "id" : "a1", "v" : 1 } ', Ack("a1")),
    ],
)
def test_good_commands(name, payload, expected):
    parsed = parse_command(name, payload)
    assert parsed == expected
    assert parsed.name == name
    assert type(parsed).__dataclass_params__.frozen


@pytest.mark.parametrize(
    "name, payload, message",
    [
        ("reboot", cmd("tare"), "unknown command"),
        ("tare", b"", "not JSON"),
        ("tare", b"[1]", "JSON object"),
        ("tare", b'"tare"', "JSON object"),
        ("tare", b"null", "JSON object"),
        ("tare", b'{"v":1', "not JSON"),
        ("tare", b"\xff\xfe{}", "UTF-8"),
        ("tare", b"{}", "missing 'v'"),
        ("tare", cmd("tare", extra=1), "unknown key 'extra'"),
        ("tare", b'{"v":2}', "v must be 1"),
        ("tare", b'{"v":1.0}', "v must be 1"),
        ("tare", b'{"v":true}', "v must be 1"),
        ("tare", b'{"v":"1"}', "v must be 1"),
        ("tare", b'{"v":1,"v":1}', "twice"),
        ("tare", b'{"v":NaN}', "not valid JSON"),
        ("tare", cmd("tare", request_id=""), "request_id"),
        ("tare", cmd("tare", request_id="x" * 65), "request_id"),
        ("tare", cmd("tare", request_id=7), "request_id must be a string"),
        ("tare", cmd("tare", request_id="a\nb"), "request_id"),
        ("calibrate", cmd("calibrate"), "missing 'mass_g'"),
        ("calibrate", cmd("calibrate", mass_g=0), "more than 0"),
        ("calibrate", cmd("calibrate", mass_g=-5), "more than 0"),
        ("calibrate", cmd("calibrate", mass_g=500000.1), "at most"),
        ("calibrate", cmd("calibrate", mass_g=True), "must be a number"),
        ("calibrate", cmd("calibrate", mass_g="1000"), "must be a number"),
        ("calibrate", cmd("calibrate", mass_g=None), "must be a number"),
        ("calibrate", b'{"v":1,"mass_g":1e400}', "at most"),
        ("calibrate", b'{"v":1,"mass_g":Infinity}', "not valid JSON"),
        ("session", cmd("session", action="pause"), "action must be one of"),
        ("session", cmd("session", action=["start"]), "action must be one of"),
        ("session", cmd("session"), "missing 'action'"),
        ("weigh_in", cmd("weigh_in", phase="mid", athlete="A1"), "phase"),
        ("weigh_in", cmd("weigh_in", phase="pre"), "missing 'athlete'"),
        ("weigh_in", cmd("weigh_in", phase="pre", athlete=""), "athlete"),
        ("weigh_in", cmd("weigh_in", phase="pre", athlete="x" * 65), "athlete"),
        ("weigh_in", cmd("weigh_in", phase="pre", athlete="a/b"), "athlete"),
        ("weigh_in", cmd("weigh_in", phase="pre", athlete="<script>"), "athlete"),
        ("weigh_in", cmd("weigh_in", phase="pre", athlete=12), "athlete must be a string"),
        ("ack", cmd("ack"), "missing 'id'"),
        ("ack", cmd("ack", id=""), "id must be"),
        ("ack", cmd("ack", id=7), "id must be a string"),
        ("ack", cmd("ack", id="x" * 129), "id must be"),
        ("ack", cmd("ack", id="a\u0000b"), "id must be"),
        ("ack", cmd("ack", id="a", by=""), "by must be"),
        ("ack", cmd("ack", id="a", action="start"), "unknown key"),
        ("tare", b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "limit"),
        ("tare", b"[" * 2000 + b"]" * 2000, "nested too deeply|JSON object"),
    ],
)
def test_bad_commands(name, payload, message):
    with pytest.raises(CommandError, match=message):
        parse_command(name, payload)


def test_request_id_is_kept_on_errors():
    with pytest.raises(CommandError) as info:
        parse_command("session", cmd("session", action="pause", request_id="req-9"))
    assert info.value.request_id == "req-9"
    with pytest.raises(CommandError) as info:
        parse_command("session", b"not json")
    assert info.value.request_id is None


def test_commands_are_values():
    with pytest.raises(AttributeError):
        parse_command("tare", cmd("tare")).request_id = "x"  # type: ignore[misc]
    assert parse_command("ack", cmd("ack", id="a")) == Ack(id="a")


# --------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    ["v", "mass_g", "action", "phase", "athlete", "id", "by", "request_id", "extra"]
)
near_commands = st.dictionaries(
    keys,
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


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from((*NAMES, "reboot", "")), payload=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_command_error(name, payload):
    with contextlib.suppress(CommandError):
        parse_command(name, payload)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NAMES), value=json_values)
def test_arbitrary_json_raises_only_command_error(name, value):
    with contextlib.suppress(CommandError):
        parse_command(name, json.dumps(value).encode())


@pytest.fixture(scope="module")
def schemas():
    jsonschema = pytest.importorskip("jsonschema")
    return {n: jsonschema.Draft202012Validator(load_schema(f"cmd_{n}")) for n in NAMES}


@settings(max_examples=500, deadline=None)
@given(name=st.sampled_from(NAMES), data=near_commands)
def test_parser_accepts_nothing_the_schema_rejects(schemas, name, data):
    """The published schema is a promise: whatever the station accepts, it documents."""
    try:
        parse_command(name, json.dumps(data).encode())
    except CommandError:
        return
    assert schemas[name].is_valid(data), (name, data)


@pytest.mark.parametrize(
    "name, payload",
    [
        ("tare", {"v": 1}),
        ("calibrate", {"v": 1, "mass_g": 1000.0}),
        ("session", {"v": 1, "action": "start"}),
        ("weigh_in", {"v": 1, "phase": "pre", "athlete": "A12"}),
        ("ack", {"v": 1, "id": "bench-1:1:0001", "by": "display", "request_id": "r"}),
    ],
)
def test_documented_examples_pass_both(schemas, name, payload):
    assert schemas[name].is_valid(payload)
    parse_command(name, json.dumps(payload).encode())
