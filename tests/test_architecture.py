"""The layers of ARCHITECTURE.md, checked against the imports the code really makes.

Every ``import`` of a ``monitor`` module is read from the source (with :mod:`ast`, so
imports inside functions count too); only those under ``if TYPE_CHECKING:`` are left
out, since they never run. A layer may import the foundation, itself and the layers
its rule names, nothing else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Small modules everything may use: units, errors, the clock, small files, the tremor
#: grade, systemd's notifier, and the package itself (its version).
FOUNDATION = (
    "monitor",
    "monitor.units",
    "monitor.errors",
    "monitor.clock",
    "monitor.files",
    "monitor.grades",
    "monitor.notify",
)
FORMAT = ("monitor.mqtt.messages", "monitor.mqtt.topics", "monitor.mqtt.schemas")

#: layer -> (its modules, what else it may import). The same table as ARCHITECTURE.md.
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "drivers": (("monitor.i2c",), ()),
    "simulated chips": (
        (
            "monitor.sim.bus",
            "monitor.sim.chip",
            "monitor.sim.lsm6ds",
            "monitor.sim.mpu6050",
            "monitor.sim.nau7802",
            "monitor.sim.pn532",
            "monitor.sim.scenarios",
            "monitor.sim.turns",
        ),
        ("monitor.i2c",),
    ),
    "analysis": (("monitor.analysis",), ()),
    "message format": (FORMAT, ()),
    "alerts": (("monitor.alerts", "monitor.alert_state"), ("monitor.analysis", *FORMAT)),
    "athletes": (("monitor.athletes",), ("monitor.analysis", *FORMAT)),
    "transport": (
        (
            "monitor.mqtt.outbox",
            "monitor.mqtt.salvage",
            "monitor.mqtt.publisher",
            "monitor.mqtt.discovery",
            "monitor.mqtt.payloads",
            "monitor.mqtt.commands",
            "monitor.mqtt.embedded_broker",
        ),
        FORMAT,
    ),
    "status panel": (("monitor.gpio",), ("monitor.config",)),
    # The wall display and the history service read the message format, never a station.
    "display": (("monitor.display",), (*FORMAT, "monitor.mqtt.publisher")),
    "history": (
        ("monitor.history",),
        (*FORMAT, "monitor.mqtt.publisher", "monitor.display", "monitor.config"),
    ),
}

#: Only these may import the station: what drives it and what reads its steps.
STATION_USERS = (
    "monitor.uplink",
    "monitor.runner",
    "monitor.replay",
    "monitor.demo",
    "monitor.mqtt.homeassistant",
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted((ROOT / "monitor").rglob("*.py"))}


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(module: str) -> list[tuple[str, int]]:
    """(imported monitor module, line) for each import ``module`` runs."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                assert isinstance(child, ast.If)
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    target = child.module or ""
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    found.append((sub if sub in MODULES else target, child.lineno))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return [(name, line) for name, line in found if _under(name, ("monitor",))]


def test_every_layer_names_modules_that_exist():
    for layer, (members, allowed) in LAYERS.items():
        for prefix in (*members, *allowed):
            assert any(_under(m, (prefix,)) for m in MODULES), (layer, prefix)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_layer_imports_only_what_its_rule_allows(layer):
    members, allowed = LAYERS[layer]
    wrong = [
        f"{module}:{line} imports {name}"
        for module in MODULES
        if _under(module, members)
        for name, line in imports(module)
        if name not in FOUNDATION and not _under(name, members + allowed)
    ]
    assert wrong == [], f"{layer} reaches beyond its rule (ARCHITECTURE.md)"


def test_only_the_drivers_of_a_station_import_it():
    wrong = [
        f"{module}:{line}"
        for module in MODULES
        if module != "monitor.station" and not _under(module, STATION_USERS)
        for name, line in imports(module)
        if name == "monitor.station"
    ]
    assert wrong == []


def test_the_checker_sees_imports_inside_functions_and_skips_type_checking_ones():
    # monitor.bus picks the simulated bus the way gpiozero picks a pin factory: lazily.
    assert "monitor.sim.rig" in {name for name, _ in imports("monitor.bus")}
    # monitor.athletes.desk names the station for its type hints only.
    assert "monitor.station" not in {name for name, _ in imports("monitor.athletes.desk")}
