"""The policy layer and the contract do no I/O: no module under server/policy/ or server/contract/
imports a web, Redis, database or Socket.IO library, nor any part of the service outside the policy
and the contract.

Policy is the rules the service applies (who may do what, who is offered a consult, when a round
recurs, which passwords pass); kept pure, each rule is read and tested on its own, without Redis or
a database, and called the same way from HTTP, Socket.IO and the loops. The contract (the vocabulary,
the errors, the validation) is what every layer speaks, so it too must not pull a library of I/O
into whoever reads it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent.parent / "server"
POLICY = SERVER / "policy"
CONTRACT = SERVER / "contract"
FORBIDDEN_LIBRARIES = {"aiohttp", "redis", "sqlalchemy", "socketio", "aiortc", "alembic"}
ALLOWED_SERVER_PACKAGES = ("server.policy", "server.contract")


def imported_modules(path: Path, package: str = "server.policy") -> list[str]:
    """Every module `path` imports, at its top or inside a function, as absolute dotted names
    (a relative import resolved against `package`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append(module)
            if module in ("server", *ALLOWED_SERVER_PACKAGES):  # `from server.policy import matching`
                found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def offences(path: Path, package: str = "server.policy") -> list[str]:
    wrong = []
    for module in imported_modules(path, package):
        root = module.split(".")[0]
        if root in FORBIDDEN_LIBRARIES:
            wrong.append(module)
        elif root in ("server", "signaling") and module not in ("server", *ALLOWED_SERVER_PACKAGES):
            if not module.startswith(tuple(f"{p}." for p in ALLOWED_SERVER_PACKAGES)):
                wrong.append(module)
    return wrong


POLICY_MODULES = sorted(POLICY.rglob("*.py"))
CONTRACT_MODULES = sorted(CONTRACT.rglob("*.py"))


def test_the_policy_and_contract_packages_have_modules() -> None:
    assert len(POLICY_MODULES) > 1
    assert len(CONTRACT_MODULES) > 1


@pytest.mark.parametrize("path", POLICY_MODULES, ids=lambda p: p.relative_to(POLICY).as_posix())
def test_a_policy_module_does_no_io(path: Path) -> None:
    assert offences(path) == [], f"{path.name} imports outside policy and contract"


@pytest.mark.parametrize("path", CONTRACT_MODULES, ids=lambda p: p.relative_to(CONTRACT).as_posix())
def test_a_contract_module_does_no_io(path: Path) -> None:
    assert offences(path, "server.contract") == [], f"{path.name} imports outside contract and policy"


def test_the_rule_catches_what_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import redis.asyncio\n"
        "from sqlalchemy import select\n"
        "from server import http\n"
        "from server.records.models import Consult\n"
        "from server.contract.errors import AppError\n"
        "from server.policy import matching\n"
        "def f():\n"
        "    import aiohttp\n"
    )
    assert offences(sample) == ["redis.asyncio", "sqlalchemy", "server.http", "server.records.models", "aiohttp"]
