"""Imports flow one way (see DESIGN.md): handlers → services → queries/push/auth → db → settings.
The worker imports nothing of the server (they share contract/), so it can run on another box; nothing
shipped imports the training code or PyTorch."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A module may import only modules of a lower rank. A new module must be ranked here.
SERVER_RANKS = {
    "settings": 0, "matching": 0, "clock": 0,
    "params": 0,  # bounds on integers taken from URLs, for handlers and http_edges
    "store.migrations": 0,
    "store.queries": 1, "push": 1, "store.db": 1,
    "store.queries_search": 2, "store.queries_admin": 2, "store.queries_mfa": 2,  # may use queries.one / all_rows
    "store.queries_holds": 2, "store.queries_demo": 2, "store.snapshot": 0,
    "audit": 2, "auth": 3,
    "alerts": 3,  # raising and working alerts, and their view: ingest, hot lists, API and pages call it
    "retention": 3, "backup": 3, "holds": 3, "duty": 3,
    "notify": 4, "mfa": 4,
    "ingest": 5,
    "hotlists": 5,
    "api_docs": 5,  # what the OpenAPI schema says beyond the handlers' signatures (the read's body)
    "api": 6, "web.base": 7, "web.search": 8, "web.reasons": 8, "web.admin": 8, "web.dashboard": 8,
    "web.signin": 8, "web.users": 8, "web.audit": 8,
    "web.history": 9,  # shares web.search's justification and paging helpers
    "web.transparency": 9,  # the public report reuses the dashboard's numbers and charts
    "web.password": 9,  # renders the account page of web.signin
    "web.holds": 9,  # checks a hold's case number as web.search checks a search's
    "http_edges": 9,  # what every request passes through; app wires it
    "app": 10,
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if p.name != "__init__.py")


def server_key(path: Path) -> str:
    """A server module as SERVER_RANKS names it: its dotted path below server/ ("store.db")."""
    return ".".join(path.relative_to(ROOT / "server").with_suffix("").parts)


def ranked_module(name: str) -> str | None:
    """The ranked server module an imported name lies in ("server.store.db.Database" → "store.db")."""
    parts = name.split(".")[1:]
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in SERVER_RANKS:
            return ".".join(parts[:end])
    return None


def test_every_server_module_is_ranked():
    assert {server_key(p) for p in modules("server")} <= set(SERVER_RANKS)


def test_server_imports_flow_one_way():
    for path in modules("server"):
        rank = SERVER_RANKS[server_key(path)]
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "server" and (target := ranked_module(name)):
                assert SERVER_RANKS[target] < rank, f"server/{server_key(path)} imports server.{target}"
            assert parts[0] not in ("worker", "platewatch"), f"server/{path.name} imports {name}"


def test_worker_imports_only_server_schemas():
    """Named for history: the worker imports nothing of the server; the wire types are in contract/."""
    for path in modules("worker"):
        for name in imports_of(path):
            assert name.split(".")[0] != "server", f"worker/{path.name} imports {name}"


def test_contract_imports_nothing_of_ours():
    for path in modules("contract"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top not in ("server", "worker", "platewatch", "synth", "training", "web"), \
                f"contract/{path.name} imports {name}"


def test_nothing_shipped_needs_the_training_tools():
    """PyTorch and the training code are a development extra: the product runs the ONNX export.
    The onnx package is a runtime dependency for one job only: cutting PP-OCRv4's recogniser
    for the plate head (worker/platehead.py)."""
    for package in ("server", "worker", "web"):
        for path in modules(package):
            for name in imports_of(path):
                top = name.split(".")[0]
                assert top not in ("training", "torch"), f"{package}/{path.name} imports {name}"
                assert top != "onnx" or path.name == "platehead.py", f"{package}/{path.name} imports {name}"
