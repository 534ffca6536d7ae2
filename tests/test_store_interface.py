"""The store interface (signalosd/store) and its SQLite implementation stay one contract: every
query domain code may call exists on the SQLite transaction with the same parameters, and no
code calls an interface method through its class (a Protocol's methods are stubs)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from signalosd.store import Database, Tx
from signalosd.store.file_backup import FileBackup
from signalosd.store.sqlite.db import SqliteDatabase
from signalosd.store.sqlite.file_backup import SqliteFileBackup
from signalosd.store.sqlite.tx import SqliteTx

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [(Tx, SqliteTx), (Database, SqliteDatabase), (FileBackup, SqliteFileBackup)]


def members(protocol: type) -> list[str]:
    return sorted(
        name
        for name, value in inspect.getmembers(protocol)
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    )


@pytest.mark.parametrize(
    ("protocol", "implementation", "name"),
    [(p, i, name) for p, i in PAIRS for name in members(p)],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_the_sqlite_store_has_every_member_of_the_interface(protocol, implementation, name):
    wanted = inspect.getattr_static(protocol, name)
    if isinstance(wanted, property):
        return  # an attribute of the instance, or a property: mypy checks its type
    got = getattr(implementation, name)
    assert list(inspect.signature(got).parameters) == list(inspect.signature(wanted).parameters)


def test_no_code_calls_an_interface_method_through_its_class():
    """`Tx.prune_trades` is the Protocol's stub, which returns None: call it on a transaction
    (`lambda tx, ...: tx.prune_trades(...)`) instead."""
    names = {p.__name__ for p, _ in PAIRS}
    wrong = []
    for package in ("signalosd", "signalos_cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in names
                ):
                    wrong.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}"
                    )
    assert wrong == []
