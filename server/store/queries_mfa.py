"""SQL for two-factor sign-in: users' TOTP state, one-time recovery codes and sign-in challenges
(the step between a right password and a right code; see mfa.py)."""

from __future__ import annotations

from collections.abc import Sequence

from aiosqlite import Row

from server.store.queries import one


async def user_mfa(conn, user_id: int) -> Row | None:
    return await one(conn, "SELECT * FROM users WHERE id = ?", (user_id,))


async def set_pending_secret(conn, user_id: int, secret: str) -> None:
    await conn.execute("UPDATE users SET totp_pending = ? WHERE id = ?", (secret, user_id))


async def confirm_enrolment(conn, user_id: int, step: int, now: int) -> bool:
    """The secret being set up becomes the user's; the step its code came from counts as used."""
    cur = await conn.execute(
        "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?, totp_enrolled_at = ? "
        "WHERE id = ? AND totp_pending IS NOT NULL AND totp_secret IS NULL", (step, now, user_id))
    return cur.rowcount == 1


async def claim_step(conn, user_id: int, step: int) -> bool:
    """Accepts a code's 30 s step only if it is later than the last one accepted: a code is good
    once, and one from an earlier step is refused after a later one was used (RFC 6238 §5.2)."""
    cur = await conn.execute(
        "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_secret IS NOT NULL "
        "AND (totp_last_step IS NULL OR totp_last_step < ?)", (step, user_id, step))
    return cur.rowcount == 1


async def clear_totp(conn, user_id: int) -> bool:
    """Forgets the authenticator and the recovery codes; True when there was something to forget."""
    cur = await conn.execute(
        "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL, totp_enrolled_at = NULL "
        "WHERE id = ? AND (totp_secret IS NOT NULL OR totp_pending IS NOT NULL)", (user_id,))
    await conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
    await conn.execute("DELETE FROM signin_challenges WHERE user_id = ?", (user_id,))
    return cur.rowcount == 1


async def replace_recovery_codes(conn, user_id: int, hashes: Sequence[str], now: int) -> None:
    await conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
    await conn.executemany("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)",
                           [(user_id, hashed, now) for hashed in hashes])


async def use_recovery_code(conn, user_id: int, code_hash: str, now: int) -> bool:
    cur = await conn.execute(
        "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
        (now, user_id, code_hash))
    return cur.rowcount == 1


async def recovery_codes_left(conn, user_id: int) -> int:
    row = await one(conn, "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", (user_id,))
    return row[0]


async def delete_expired_challenges(conn, now: int) -> int:
    cur = await conn.execute("DELETE FROM signin_challenges WHERE expires_at <= ?", (now,))
    return cur.rowcount


async def insert_challenge(conn, token_hash: str, user_id: int, purpose: str, target: str, now: int,
                           expires_at: int) -> None:
    await delete_expired_challenges(conn, now)
    await conn.execute(
        "INSERT INTO signin_challenges (token_hash, user_id, purpose, next, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)", (token_hash, user_id, purpose, target, now, expires_at))


async def challenge_by_hash(conn, token_hash: str, now: int) -> Row | None:
    """An open challenge of an enabled user, with the user's row (c_* names are the challenge's)."""
    return await one(
        conn,
        "SELECT u.*, c.purpose AS c_purpose, c.next AS c_next FROM signin_challenges c "
        "JOIN users u ON u.id = c.user_id WHERE c.token_hash = ? AND c.expires_at > ? AND NOT u.disabled",
        (token_hash, now))


async def delete_user_challenges(conn, user_id: int) -> int:
    cur = await conn.execute("DELETE FROM signin_challenges WHERE user_id = ?", (user_id,))
    return cur.rowcount


async def delete_challenge(conn, token_hash: str) -> None:
    await conn.execute("DELETE FROM signin_challenges WHERE token_hash = ?", (token_hash,))
