"""Schema, as numbered sqlite-utils migrations. Never edit an applied one: add the next. An applied
migration is frozen: it spells out its values (a CHECK's list) rather than reading today's constants,
so a new role or list kind needs a migration of its own and never changes what 001 built.

Times are Unix epoch milliseconds (UTC) in INTEGER columns: compact, fast to index and compare,
and free of time-zone ambiguity. Plates are stored as read (`plate`), normalised to A–Z0–9
(`plate_norm`) and folded over OCR confusion classes (`plate_folded`, see contract/plates.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from server.store.chain import GENESIS, entry_hash

migrations = Migrations("platewatch")


def _check(column: str, values: tuple[str, ...]) -> str:
    return f"CHECK ({column} IN ({', '.join(repr(v) for v in values)}))"


@migrations()
def m001_core(db: sqlite_utils.Database) -> None:
    db.executescript(f"""
    CREATE TABLE cameras (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, location TEXT NOT NULL DEFAULT '',
        token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
        last_seen_at INTEGER, last_read_at INTEGER, disabled INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE reads (
        id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        captured_at INTEGER NOT NULL, received_at INTEGER NOT NULL,
        plate TEXT NOT NULL, plate_norm TEXT NOT NULL, plate_folded TEXT NOT NULL,
        confidence REAL NOT NULL, candidates TEXT NOT NULL DEFAULT '[]',
        color TEXT, box TEXT, plate_image TEXT, vehicle_image TEXT
    );
    CREATE INDEX reads_plate_time ON reads(plate_norm, captured_at);
    CREATE INDEX reads_folded_time ON reads(plate_folded, captured_at);
    CREATE INDEX reads_time ON reads(captured_at);
    CREATE INDEX reads_camera_time ON reads(camera_id, captured_at);

    CREATE TABLE hotlists (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL DEFAULT 'custom' CHECK (kind IN ('stolen_vehicle', 'stolen_plate', 'wanted_person', 'amber', 'silver', 'missing_person', 'custom')),
        source TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, refreshed_at INTEGER
    );
    CREATE TABLE hotlist_entries (
        id INTEGER PRIMARY KEY,
        hotlist_id INTEGER NOT NULL REFERENCES hotlists(id) ON DELETE CASCADE,
        plate TEXT NOT NULL, plate_norm TEXT NOT NULL, plate_folded TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',
        expires_at INTEGER, added_by TEXT NOT NULL, added_at INTEGER NOT NULL
    );
    CREATE INDEX entries_folded ON hotlist_entries(plate_folded);
    CREATE INDEX entries_list ON hotlist_entries(hotlist_id);

    -- An alert snapshots the entry it matched: a daily list refresh replaces entries.
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        read_id INTEGER NOT NULL REFERENCES reads(id) ON DELETE CASCADE,
        camera_id INTEGER NOT NULL REFERENCES cameras(id),
        entry_id INTEGER REFERENCES hotlist_entries(id) ON DELETE SET NULL,
        hotlist_id INTEGER REFERENCES hotlists(id) ON DELETE SET NULL,
        hotlist_name TEXT NOT NULL, hotlist_kind TEXT NOT NULL,
        entry_plate TEXT NOT NULL, entry_plate_norm TEXT NOT NULL,
        entry_state TEXT NOT NULL DEFAULT '', entry_reason TEXT NOT NULL DEFAULT '',
        rule TEXT NOT NULL, compared TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
        retro INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'acknowledged', 'confirmed', 'not_match', 'invalid')),
        created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL, notified_at INTEGER,
        acknowledged_at INTEGER, acknowledged_by TEXT, resolved_at INTEGER, resolved_by TEXT,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX alerts_cooldown ON alerts(entry_plate_norm, camera_id, seen_at);
    CREATE INDEX alerts_created ON alerts(created_at);
    CREATE INDEX alerts_read ON alerts(read_id);
    CREATE INDEX alerts_unnotified ON alerts(notified_at) WHERE notified_at IS NULL;

    CREATE TABLE users (
        id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
        disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL
    );
    -- Browser sessions and API bearer tokens; only a SHA-256 of the secret is kept.
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind TEXT NOT NULL {_check('kind', ('session', 'api'))},
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);

    CREATE TABLE push_subscriptions (
        id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        endpoint TEXT NOT NULL UNIQUE, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
        created_at INTEGER NOT NULL, last_ok_at INTEGER
    );
    CREATE TABLE push_deliveries (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        endpoint TEXT NOT NULL, status INTEGER, error TEXT, ms REAL NOT NULL, sent_at INTEGER NOT NULL
    );
    CREATE INDEX deliveries_alert ON push_deliveries(alert_id);

    -- Append-only: triggers refuse any change to a written line.
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX audit_action_time ON audit_log(action, at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    """)


@migrations()
def m002_camera_health(db: sqlite_utils.Database) -> None:
    """What each camera's worker last reported: frame rate, last frame, frames skipped as still."""
    for column, kind in (("frames_per_s", "REAL"), ("last_frame_at", "INTEGER"), ("frames_gated", "INTEGER")):
        db.execute(f"ALTER TABLE cameras ADD COLUMN {column} {kind}")


@migrations()
def m003_read_colour_confidence(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE reads ADD COLUMN color_confidence REAL")


@migrations()
def m004_search_reasons(db: sqlite_utils.Database) -> None:
    """The department's list of reasons a search may be run for (admins add and retire them; a
    retired reason keeps its row, so old audit lines keep their meaning). And reads by time with
    the folded plate beside it: a wildcard search with no leading letters walks the time range
    testing plates inside the index, instead of fetching every read in the range."""
    # One statement at a time: executescript would commit the migration's transaction early.
    db.execute("""CREATE TABLE search_reasons (
        id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created_at INTEGER NOT NULL, created_by TEXT NOT NULL, retired_at INTEGER, retired_by TEXT)""")
    db.execute("CREATE INDEX reads_time_folded ON reads(captured_at, plate_folded)")
    for label in ("Stolen vehicle investigation", "Stolen plate investigation", "AMBER alert (child abduction)",
                  "Silver alert / missing person", "Criminal investigation", "Hit-and-run / traffic crash",
                  "Wanted person / warrant"):
        db.execute("INSERT INTO search_reasons (label, created_at, created_by) VALUES (?, 0, 'system')", [label])


@migrations()
def m005_entries_by_list_plate(db: sqlite_utils.Database) -> None:
    """A list's entries in plate order (paging a 100,000-entry list in the web app) and its
    unexpired count, from the index alone. It covers every use of entries_list, which goes."""
    db.execute("CREATE INDEX entries_list_plate ON hotlist_entries(hotlist_id, plate_norm, expires_at)")
    db.execute("DROP INDEX entries_list")


@migrations()
def m006_totp(db: sqlite_utils.Database) -> None:
    """Two-factor sign-in with authenticator apps (RFC 6238). On users: the TOTP secret once
    enrolment is confirmed, the one being set up until then, and the last 30 s step a code was
    accepted for (a code is good once: a later one must be from a later step). Recovery codes are
    kept only as hashes, each usable once. A sign-in between the password and the code holds a
    challenge (its secret hashed like a session's), never a session: nothing else accepts it."""
    for column, kind in (("totp_secret", "TEXT"), ("totp_pending", "TEXT"), ("totp_last_step", "INTEGER"),
                         ("totp_enrolled_at", "INTEGER")):
        db.execute(f"ALTER TABLE users ADD COLUMN {column} {kind}")
    db.execute("""CREATE TABLE recovery_codes (
        id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        code_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, used_at INTEGER)""")
    db.execute("CREATE INDEX recovery_codes_user ON recovery_codes(user_id)")
    db.execute(f"""CREATE TABLE signin_challenges (
        id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        purpose TEXT NOT NULL {_check('purpose', ('verify', 'enrol'))}, next TEXT NOT NULL DEFAULT '/',
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)""")


@migrations()
def m007_evidence_holds(db: sqlite_utils.Database) -> None:
    """Evidence holds: a read kept past the retention period for a case, placed and released by
    named officers. At most one active (unreleased) hold per read, enforced by a partial unique
    index; a trigger refuses to delete a read under one, so no purge can take evidence whatever
    its query says. A hold row goes with its read (the audit log keeps its story). The bounds are
    those the form checks: a search's case number (access.CASE_MAX) and a note's length."""
    db.execute("""CREATE TABLE holds (
        id INTEGER PRIMARY KEY, read_id INTEGER NOT NULL REFERENCES reads(id) ON DELETE CASCADE,
        case_number TEXT NOT NULL CHECK (length(case_number) BETWEEN 1 AND 40),
        note TEXT NOT NULL DEFAULT '' CHECK (length(note) <= 500),
        placed_by TEXT NOT NULL, placed_at INTEGER NOT NULL, released_by TEXT, released_at INTEGER,
        CHECK ((released_by IS NULL) = (released_at IS NULL)))""")
    db.execute("CREATE UNIQUE INDEX holds_active_read ON holds(read_id) WHERE released_at IS NULL")
    db.execute("CREATE INDEX holds_read ON holds(read_id)")  # deleting a read finds its released holds
    db.execute("""CREATE TRIGGER reads_held_no_delete BEFORE DELETE ON reads
        WHEN EXISTS (SELECT 1 FROM holds WHERE read_id = OLD.id AND released_at IS NULL)
        BEGIN SELECT RAISE(ABORT, 'read is under an evidence hold'); END""")


@migrations()
def m008_on_duty(db: sqlite_utils.Database) -> None:
    """On duty or off (server/duty.py): web push reaches only officers on duty. The end of the
    officer's current shift, epoch ms; NULL is off duty, where a new user starts, and so is a time
    already past. An upgrade must not silence phones that were getting alerts a minute ago: users
    with a push subscription start one shift (the default 12 hours) on duty, then switch as
    everyone does."""
    db.execute("ALTER TABLE users ADD COLUMN on_duty_until INTEGER")
    db.execute("UPDATE users SET on_duty_until = ? WHERE id IN (SELECT user_id FROM push_subscriptions)",
               [int(time.time() * 1000) + 12 * 3_600_000])


@migrations()
def m009_must_change_password(db: sqlite_utils.Database) -> None:
    """1 while the user's password is one an admin chose (a reset, or a new user's first on
    /users): the admin knows it, so the user may only change it until they do. Existing users,
    and those made with `platewatch user add` on the box, start at 0."""
    db.execute("ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0 "
               "CHECK (must_change_password IN (0, 1))")


@migrations()
def m010_hotlist_versions(db: sqlite_utils.Database) -> None:
    """A list is replaced without a long write: the import writes the new entries in short
    batches under a version of their own, then one tiny transaction makes it the list's live
    `version` (matching and every page read `live_entries`, so they see the old list or the new,
    never a mix), then the old rows go in short batches. `last_version` hands each import its own
    number. Deleting an entry sets its alerts' entry_id to NULL: alerts_entry finds them without
    walking every alert."""
    db.execute("ALTER TABLE hotlists ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE hotlists ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE hotlist_entries ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX entries_list_version_plate ON hotlist_entries(hotlist_id, version, plate_norm, expires_at)")
    db.execute("DROP INDEX entries_list_plate")
    db.execute("CREATE INDEX alerts_entry ON alerts(entry_id)")
    db.execute("""CREATE VIEW live_entries AS SELECT e.* FROM hotlist_entries e
        JOIN hotlists h ON h.id = e.hotlist_id AND e.version = h.version""")


@migrations()
def m011_page_counts(db: sqlite_utils.Database) -> None:
    """Running counts for the dashboard and the transparency report, so a page sums a few
    thousand small rows instead of counting 30 days of reads (seconds at 10 million reads).
    Reads per quarter hour of capture; alerts per quarter hour raised, hot-list kind and status.
    Triggers keep them in the transaction of every change that moves them (a read stored or
    purged or its time corrected, an alert raised, its status changed, or gone with its read),
    whatever code writes.
    Every time zone's offset is a whole number of quarter hours, so any local day, 23 or 25
    hours long across DST included, is a whole number of buckets. Rows at zero stay: harmless."""
    bucket = "{0}.{1} - {0}.{1} % 900000"  # the quarter hour's start, epoch ms (UTC)
    db.execute("CREATE TABLE read_counts (bucket INTEGER PRIMARY KEY, reads INTEGER NOT NULL)")
    db.execute("""CREATE TABLE alert_counts (
        bucket INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, alerts INTEGER NOT NULL,
        PRIMARY KEY (bucket, kind, status)) WITHOUT ROWID""")
    read_new, read_old = bucket.format("NEW", "captured_at"), bucket.format("OLD", "captured_at")
    db.execute(f"""CREATE TRIGGER read_counts_insert AFTER INSERT ON reads BEGIN
        INSERT INTO read_counts (bucket, reads) VALUES ({read_new}, 1)
            ON CONFLICT (bucket) DO UPDATE SET reads = reads + 1; END""")
    db.execute(f"""CREATE TRIGGER read_counts_delete AFTER DELETE ON reads BEGIN
        UPDATE read_counts SET reads = reads - 1 WHERE bucket = {read_old}; END""")
    db.execute(f"""CREATE TRIGGER read_counts_update AFTER UPDATE OF captured_at ON reads
        WHEN OLD.captured_at IS NOT NEW.captured_at BEGIN
        UPDATE read_counts SET reads = reads - 1 WHERE bucket = {read_old};
        INSERT INTO read_counts (bucket, reads) VALUES ({read_new}, 1)
            ON CONFLICT (bucket) DO UPDATE SET reads = reads + 1; END""")
    alert_new, alert_old = bucket.format("NEW", "created_at"), bucket.format("OLD", "created_at")
    add = f"""INSERT INTO alert_counts (bucket, kind, status, alerts)
        VALUES ({alert_new}, NEW.hotlist_kind, NEW.status, 1)
        ON CONFLICT (bucket, kind, status) DO UPDATE SET alerts = alerts + 1;"""
    remove = f"""UPDATE alert_counts SET alerts = alerts - 1
        WHERE bucket = {alert_old} AND kind = OLD.hotlist_kind AND status = OLD.status;"""
    db.execute(f"CREATE TRIGGER alert_counts_insert AFTER INSERT ON alerts BEGIN {add} END")
    db.execute(f"CREATE TRIGGER alert_counts_delete AFTER DELETE ON alerts BEGIN {remove} END")
    db.execute(f"""CREATE TRIGGER alert_counts_update AFTER UPDATE OF status, hotlist_kind, created_at ON alerts
        WHEN OLD.status IS NOT NEW.status OR OLD.hotlist_kind IS NOT NEW.hotlist_kind
          OR OLD.created_at IS NOT NEW.created_at
        BEGIN {remove} {add} END""")
    db.execute(f"INSERT INTO read_counts (bucket, reads) SELECT {bucket.format('reads', 'captured_at')}, count(*) "
               "FROM reads GROUP BY 1")
    db.execute(f"INSERT INTO alert_counts (bucket, kind, status, alerts) "
               f"SELECT {bucket.format('alerts', 'created_at')}, hotlist_kind, status, count(*) "
               "FROM alerts GROUP BY 1, 2, 3")


@migrations()
def m012_signin_attempts(db: sqlite_utils.Database) -> None:
    """Password checks in progress, one row each from just before the check until its result is
    written: the lock-out counts them with the `auth.failed` lines, so guesses sent all at once
    cannot all be checked before the first failure is written. A row a crash left behind counts
    only within the lock-out window, and the next sign-in clears it."""
    db.executescript("""
    CREATE TABLE signin_attempts (
        id INTEGER PRIMARY KEY, username TEXT NOT NULL, started_at INTEGER NOT NULL
    );
    CREATE INDEX signin_attempts_user ON signin_attempts(username, started_at);
    """)


@migrations()
def m013_read_revisions_and_camera_load(db: sqlite_utils.Database) -> None:
    """A read's revision (the worker refines a vehicle's read under the same id), and the load
    each camera's worker reports in its heartbeat."""
    db.execute("ALTER TABLE reads ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
    for column in ("vehicles_seen INTEGER", "vehicles_read INTEGER", "frames_dropped INTEGER",
                   "recognition_lag_s REAL", "overloaded INTEGER NOT NULL DEFAULT 0"):
        db.execute(f"ALTER TABLE cameras ADD COLUMN {column}")


@migrations()
def m014_audit_chain(db: sqlite_utils.Database) -> None:
    """The audit log becomes a hash chain (server/store/chain.py): each entry keeps the hash of
    the one before it (`prev_hash`) and its own (`hash`), written with it by the one writer. The
    existing log is chained here in id order, the update trigger lifted for this transaction
    only, and an `audit.chain_built` entry records that it was done, how many entries it covered
    and the head it reached. A log with no entries needs no record: its chain starts with its
    first entry."""
    db.execute("ALTER TABLE audit_log ADD COLUMN prev_hash TEXT")
    db.execute("ALTER TABLE audit_log ADD COLUMN hash TEXT")
    db.execute("DROP TRIGGER audit_no_update")
    head, count, after = GENESIS, 0, 0
    while rows := db.execute("SELECT id, at, actor, action, detail FROM audit_log WHERE id > ? ORDER BY id LIMIT 5000",
                             [after]).fetchall():
        for line_id, at, actor, action, detail in rows:
            line_hash = entry_hash(head, at, actor, action, detail)
            db.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?", [head, line_hash, line_id])
            head, count = line_hash, count + 1
        after = rows[-1][0]
    db.execute("""CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""")
    if count:
        at, detail = int(time.time() * 1000), json.dumps({"entries": count, "head": head}, separators=(",", ":"))
        db.execute("INSERT INTO audit_log (at, actor, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                   [at, "system", "audit.chain_built", detail, head,
                    entry_hash(head, at, "system", "audit.chain_built", detail)])


@migrations()
def m015_audit_purge(db: sqlite_utils.Database) -> None:
    """Audit entries past audit_retention_days may go, but only by a recorded purge: the delete
    trigger lets through only entries at or below the `through` id of an `audit.purge` entry,
    which the purge writes first in the same transaction (server/audit_chain.py)."""
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("""CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
        WHEN OLD.id > (SELECT coalesce(max(json_extract(detail, '$.through')), 0) FROM audit_log
                       WHERE action = 'audit.purge')
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: old entries go only by a recorded audit.purge'); END""")


@migrations()
def m016_hotlist_fields(db: sqlite_utils.Database) -> None:
    """What state and vendor feeds carry beyond plate, state and reason: the plate type (NCIC's
    LIT), a priority (0–100; NULL: the list's `default_priority`), the NCIC or record number and a
    note. A list remembers its import format (JSON of the import options), and an alert snapshots
    the priority of the entry it matched (NULL on alerts raised before this)."""
    for column in ("plate_type TEXT NOT NULL DEFAULT ''", "priority INTEGER CHECK (priority BETWEEN 0 AND 100)",
                   "record TEXT NOT NULL DEFAULT ''", "note TEXT NOT NULL DEFAULT ''"):
        db.execute(f"ALTER TABLE hotlist_entries ADD COLUMN {column}")
    db.execute("ALTER TABLE hotlists ADD COLUMN default_priority INTEGER NOT NULL DEFAULT 50 "
               "CHECK (default_priority BETWEEN 0 AND 100)")
    db.execute("ALTER TABLE hotlists ADD COLUMN import_format TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE alerts ADD COLUMN priority INTEGER")


@migrations()
def m017_hotlist_sources(db: sqlite_utils.Database) -> None:
    """Where a list refreshes itself from (a local file, or a folder the state's client drops files
    into), how often it looks, how old the list may grow before it is stale, and how the last
    look went (`last_file`: name and modification time of the file last imported)."""
    db.executescript("""
    CREATE TABLE hotlist_sources (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        hotlist_id INTEGER NOT NULL UNIQUE REFERENCES hotlists(id) ON DELETE CASCADE,
        location TEXT NOT NULL, every_hours REAL NOT NULL DEFAULT 24, max_age_hours REAL NOT NULL DEFAULT 26,
        created_at INTEGER NOT NULL, last_attempt_at INTEGER, last_ok_at INTEGER,
        last_error TEXT NOT NULL DEFAULT '', last_file TEXT NOT NULL DEFAULT ''
    );
    """)


@migrations()
def m018_webhooks(db: sqlite_utils.Database) -> None:
    """Webhook targets and their deliveries (server/webhooks.py). A target's signing `secret` is kept
    as given out, not hashed like a camera token: HMAC signs with the shared secret itself. `kinds`
    is a comma-separated list of list kinds ('' = every kind). A delivery is one alert offered to one
    target; `next_at` is when it is tried next (NULL once delivered or given up), so pending retries
    live here, not in memory, and survive a restart. Each try is a row of webhook_attempts."""
    db.executescript("""
    CREATE TABLE webhooks (
        id INTEGER PRIMARY KEY, url TEXT NOT NULL, kinds TEXT NOT NULL DEFAULT '', secret TEXT NOT NULL,
        created_by TEXT NOT NULL, created_at INTEGER NOT NULL, enabled INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        UNIQUE (webhook_id, alert_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE next_at IS NOT NULL;
    CREATE INDEX webhook_deliveries_alert ON webhook_deliveries(alert_id);
    CREATE TABLE webhook_attempts (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL, at INTEGER NOT NULL, status INTEGER, error TEXT NOT NULL DEFAULT '',
        ms REAL NOT NULL, next_at INTEGER
    );
    CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id);
    """)


@migrations()
def m019_records_requests(db: sqlite_utils.Database) -> None:
    """Public records requests (server/records_requests.py): a resident asks what the department
    holds about a plate. A request is a record and is kept (the retention purge never touches this
    table); the plate it names is not a read. `client_key` is a keyed hash of the asker's address,
    kept only so the per-address limit can count (the address itself is not stored). The bounds
    are those the form checks."""
    db.execute("""CREATE TABLE records_requests (
        id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL,
        plate TEXT NOT NULL CHECK (length(plate) BETWEEN 1 AND 16),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
        email TEXT NOT NULL DEFAULT '' CHECK (length(email) <= 254),
        postal_address TEXT NOT NULL DEFAULT '' CHECK (length(postal_address) <= 300),
        message TEXT NOT NULL DEFAULT '' CHECK (length(message) <= 2000),
        client_key TEXT NOT NULL,
        answer TEXT CHECK (length(answer) <= 5000), answered_at INTEGER, answered_by TEXT,
        CHECK (email != '' OR postal_address != ''),
        CHECK ((answer IS NULL) = (answered_at IS NULL)))""")
    db.execute("CREATE INDEX records_requests_client ON records_requests(client_key, received_at)")
    db.execute("CREATE INDEX records_requests_received ON records_requests(received_at)")
    db.execute("CREATE INDEX records_requests_answered ON records_requests(answered_at)")


@migrations()
def m020_prohibited_purposes(db: sqlite_utils.Database) -> None:
    """Words and phrases a search's case number or note may not contain ("immigration", "abortion"):
    the department's list, kept by admins. A search or plate history naming one is refused."""
    db.execute("""CREATE TABLE prohibited_purposes (
        id INTEGER PRIMARY KEY, phrase TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created_at INTEGER NOT NULL, created_by TEXT NOT NULL)""")


@migrations()
def m021_signin_rules(db: sqlite_utils.Database) -> None:
    """The CJIS sign-in rules (server/auth.py, server/dormant.py). A session's last use
    (`last_seen_at`, NULL: its creation) locks it when idle. A user's last sign-in, web or API,
    and when an admin last enabled them: the account is disabled when both, and its creation,
    are long past. Existing users take their last sign-in from the audit log, and count as
    enabled at the upgrade, so that it disables nobody at once: each gets the full period to
    sign in (an account unused as long after it goes then). `signin_locks`:
    usernames locked by failed sign-ins, known or not (the same answer either way); a release
    keeps the row, so failures before it are not counted again."""
    db.execute("ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER")
    db.execute("ALTER TABLE users ADD COLUMN last_signin_at INTEGER")
    db.execute("ALTER TABLE users ADD COLUMN enabled_at INTEGER")
    db.execute("""UPDATE users SET last_signin_at = (SELECT max(a.at) FROM audit_log a
        WHERE a.action IN ('auth.login', 'auth.token') AND a.actor = users.username)""")
    db.execute("UPDATE users SET enabled_at = ?", [int(time.time() * 1000)])
    db.execute("""CREATE TABLE signin_locks (
        username TEXT NOT NULL PRIMARY KEY COLLATE NOCASE, locked_at INTEGER NOT NULL,
        failures INTEGER NOT NULL, released_at INTEGER, released_by TEXT
    )""")


def connect(path: Path) -> sqlite_utils.Database:
    """A synchronous connection with the pragmas every connection needs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=10000")
    return db


def migrate(path: Path) -> None:
    db = connect(path)
    try:
        migrations.apply(db)
    finally:
        db.close()
