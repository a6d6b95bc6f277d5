"""The layout's rules (DESIGN.md), enforced. Imports flow one way: `contract` imports nothing of
ours; `server` and `worker` never import each other (they share contract/), so the worker can run
on another box; `platewatch` sits on top of both. Inside the server: handlers → services →
store (queries, db) → settings; web handlers never import the API module and no page module
imports another; SQL lives only in server/store/. Nothing shipped imports the training code or
PyTorch."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A module may import only modules of a lower rank. A new module must be ranked here.
SERVER_RANKS = {
    "settings": 0, "matching": 0, "clock": 0,
    "params": 0,  # bounds on integers taken from URLs, for handlers and http_edges
    "outside_urls": 0,  # the one check on a URL a user enters before the server calls it
    "store.chain": 0,  # the audit chain's encoding: the migration that built the chain uses it
    "store.migrations": 1, "store.snapshot": 0,
    "store.queries": 1, "push": 1, "store.db": 2,
    "store.queries_search": 2, "store.queries_admin": 2, "store.queries_mfa": 2,  # may use queries.one / all_rows
    "store.queries_holds": 2, "store.queries_demo": 2, "store.queries_push": 2,
    "store.queries_audit": 2,
    "vendor_reads": 1,  # Plate Recognizer's and OpenALPR's reads as ours, for the API
    "store.queries_signin": 2,  # the CJIS sign-in rules: lock-out, idle sessions, unused accounts
    "hotlist_formats": 1,  # reading hot-list files in every layout: the CLI, the web upload and hotlists call it
    "store.queries_sources": 2, "store.queries_webhooks": 2,
    "hotlist_fetch": 1,  # calling a hot-list source's URL: checked first, credentials kept apart
    "store.queries_requests": 2, "store.export_rows": 0,  # public records requests; export's one snapshot
    "store.queries_accountability": 2,  # purge records, hits by kind, prohibited purposes, the access log
    "audit": 2, "auth": 3,
    "audit_chain": 3,  # verifying the audit log's hash chain; signed daily checkpoints of its head
    "alerts": 3,  # raising and working alerts, and their view: ingest, hot lists, API and pages call it
    "access": 4,  # justified access: reason, case number, note, the cursor of a further page
    "purposes": 3,  # prohibited purposes: the list, the check access makes, the refusal's audit line
    "deletions": 3, "access_log": 3,  # what the purge recorded per day; every search and look-up: reports
    "retention": 3, "backup": 3, "holds": 3, "duty": 3,
    "searches": 5,  # the search service: investigators' searches and records requests' look-ups
    "records_requests": 6,  # public records requests: asked, looked up (a search), answered
    "export": 4,  # `platewatch export`: the data in open formats
    "dormant": 3,  # disabling accounts nobody uses: the server's hourly job, and enabling them again
    "users": 4, "cameras": 4,  # adding a user or a camera: the CLI and the web app alike
    "notify": 4, "mfa": 4,
    "ingest": 5,
    "hotlists": 5,
    "hotlist_sources": 6,  # scheduled refresh: the server's schedule and the CLI call it
    "webhooks": 6, "webhook_sender": 7,  # webhook targets (CLI and web alike), and delivering alerts to them
    "mqtt": 6,  # alerts and camera health out to an MQTT broker, beside the push sender
    "api_docs": 5,  # what the OpenAPI schema says beyond the handlers' signatures (the read's body)
    "figures": 6,  # the dashboard's and the transparency report's numbers and charts
    "false_hits": 6,  # hits by list kind and outcome: the dashboard and the transparency report
    "api": 6,
    "web.base": 7, "web.cards": 7,  # what page modules share; no handlers of their own
    **{f"web.{page}": 8 for page in ("account", "admin", "alerts", "audit", "dashboard", "files", "history",
                                     "holds", "reasons", "search", "signin", "transparency", "users",
                                     "integrations", "hotlist_sources", "records_requests")},
    "http_edges": 9,  # what every request passes through; app wires it
    "app": 10,
}
WEB_SHARED = {"web.base", "web.cards"}
# A string that starts a SQL statement (not an HTTP method: "DELETE FROM", not "DELETE").
SQL = re.compile(r"\s*(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|TRIGGER)|"
                 r"ALTER\s+TABLE|DROP\s|PRAGMA\s)")


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
    """Named for history: the worker imports nothing of the server (nor the command on top of
    both); the wire types it posts are in contract/."""
    for path in modules("worker"):
        for name in imports_of(path):
            assert name.split(".")[0] not in ("server", "platewatch"), f"worker/{path.name} imports {name}"


def test_contract_imports_nothing_of_ours():
    for path in modules("contract"):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top not in ("server", "worker", "platewatch", "synth", "training", "web"), \
                f"contract/{path.name} imports {name}"


def test_nothing_shipped_needs_the_training_tools():
    """PyTorch and the training code are a development extra: the product runs the ONNX export.
    The onnx package is a runtime dependency for one job only: cutting PP-OCRv4's recogniser
    for the plate head (worker/recognize/platehead.py)."""
    for package in ("server", "worker", "web"):
        for path in modules(package):
            for name in imports_of(path):
                top = name.split(".")[0]
                assert top not in ("training", "torch"), f"{package}/{path.name} imports {name}"
                assert top != "onnx" or path.name == "platehead.py", f"{package}/{path.name} imports {name}"


def test_web_handlers_never_import_the_api_and_no_page_imports_another():
    for path in modules("server/web"):
        key = server_key(path)
        for name in imports_of(path):
            target = ranked_module(name) if name.startswith("server.") else None
            assert target != "api", f"server/{key} imports the API module: call a service instead"
            if key not in WEB_SHARED and target and target.startswith("web."):
                assert target in WEB_SHARED, f"page module server/{key} imports page module server/{target}"


def sql_strings(path: Path) -> list[str]:
    """String constants (f-string parts too) that start a SQL statement."""
    return [node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)]


def test_sql_lives_only_in_the_store():
    for package in ("server", "platewatch", "contract", "worker"):
        for path in modules(package):
            if path.is_relative_to(ROOT / "server" / "store"):
                continue
            assert not sql_strings(path), f"{path.relative_to(ROOT)} has SQL: move it into server/store/"


def test_the_sql_check_sees_sql():
    assert sql_strings(ROOT / "server" / "store" / "queries.py")
    assert not SQL.match("DELETE") and SQL.match("DELETE FROM sessions")


def test_the_running_worker_and_server_never_import_synth_or_training():
    """Rendered plates and scenes (synth/) and the training code are for training, tests, bench
    and the demo: the worker never loads them, nor the server apart from its demo command.
    synth/ ships for the demo, so it needs no training code either."""
    for package, banned in (("worker", ("synth", "training", "torch")), ("synth", ("training", "torch"))):
        for path in modules(package):
            for name in imports_of(path):
                assert name.split(".")[0] not in banned, f"{path.relative_to(ROOT)} imports {name}"
    for package in ("server", "platewatch"):
        for path in modules(package):
            if path.stem == "demo":
                continue
            for name in imports_of(path):
                assert name.split(".")[0] != "synth", f"{path.relative_to(ROOT)} imports {name}"
