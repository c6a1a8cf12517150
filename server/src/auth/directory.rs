//! The directory as the server uses it: its settings from the database and vault, the shadow
//! rows of directory users, and the periodic check that re-evaluates the role of every directory
//! user with a live session (so a user removed from a group loses access within one interval).

use std::time::Duration;

use plantwatch_shared::api::{AuditAction, User};
use serde_json::json;
use tokio::sync::watch;

use super::ldap::{self, DirectoryConfig, Failure, Outcome};
use crate::db::{self, audit, sessions, settings, users};
use crate::state::AppState;

/// The directory settings in force, with the bind password opened; `None` while the directory
/// is off.
pub async fn load(state: &AppState) -> anyhow::Result<Option<DirectoryConfig>> {
    let config = load_any(state).await?;
    Ok(config.settings.enabled.then_some(config))
}

/// The directory settings, on or off, with the bind password opened (empty when none is set).
pub async fn load_any(state: &AppState) -> anyhow::Result<DirectoryConfig> {
    let (found, sealed) = state
        .db
        .call(|conn| settings::ldap(conn).map_err(db::DbError::from))
        .await?;
    let bind_password = match sealed {
        Some(sealed) => state
            .vault
            .open(settings::LDAP_BIND_PASSWORD_AAD, &sealed)
            .map_err(|e| anyhow::anyhow!("the directory's bind password cannot be opened: {e}"))?,
        None => Default::default(),
    };
    Ok(DirectoryConfig {
        settings: found,
        bind_password,
    })
}

/// Records a directory user's shadow row after the directory vouched for them (sign-in or
/// check), and an audit row when their role changed. `None` if a local user holds the name.
pub fn record_user(
    conn: &rusqlite::Connection,
    username: &str,
    outcome: &Outcome,
    now: i64,
) -> rusqlite::Result<Option<User>> {
    let Some((user, before)) =
        users::upsert_directory_user(conn, username, &outcome.dn, outcome.role, now)?
    else {
        return Ok(None);
    };
    if let Some(before) = before.filter(|before| *before != user.role) {
        let details = json!({ "from": before, "to": user.role, "groups": outcome.groups.len() });
        audit::record(
            conn,
            &audit::Actor::system(),
            AuditAction::UserDirectoryRole,
            Some(&format!("user:{}", user.id)),
            Some(&details),
            now,
        )?;
    }
    Ok(Some(user))
}

/// Checks every directory user with a live session once. Returns how many lost their sessions.
/// With directory sign-in switched off, every directory user loses their sessions: nobody
/// vouches for them any more.
pub async fn check_sessions(state: &AppState) -> anyhow::Result<usize> {
    let config = load(state).await?;
    let signed_in = state
        .db
        .call(|conn| users::directory_users_signed_in(conn).map_err(db::DbError::from))
        .await?;
    let mut revoked = 0;
    for user in signed_in {
        let Some(config) = &config else {
            revoke(state, &user, "directory_disabled").await?;
            revoked += 1;
            continue;
        };
        let (_, verdict) = ldap::run(config, &user.username, None).await;
        let reason = match verdict {
            Ok(outcome) => {
                let username = user.username.clone();
                state
                    .db
                    .write(move |tx| -> anyhow::Result<()> {
                        record_user(tx, &username, &outcome, crate::clock::unix_secs())?;
                        Ok(())
                    })
                    .await?;
                continue;
            }
            // A pinned role stands without a group; a user the directory no longer has goes.
            Err(Failure::NoGroup) if user.role_pinned => continue,
            Err(failure @ (Failure::NoGroup | Failure::UnknownUser)) => failure.reason(),
            Err(Failure::Unavailable(problem) | Failure::Misconfigured(problem)) => {
                // Keep sessions while the directory cannot answer; try again next time.
                tracing::warn!(%problem, "The directory could not be asked about signed-in users.");
                return Ok(revoked);
            }
            Err(Failure::WrongPassword) => continue,
        };
        revoke(state, &user, reason).await?;
        revoked += 1;
    }
    Ok(revoked)
}

/// Ends every session of a directory user, with an audit row saying why.
async fn revoke(state: &AppState, user: &User, reason: &'static str) -> anyhow::Result<()> {
    let user_id = user.id;
    let ended = state
        .db
        .write(move |tx| -> anyhow::Result<usize> {
            let now = crate::clock::unix_secs();
            let ended = sessions::delete_for_user(tx, user_id, None)?;
            audit::record(
                tx,
                &audit::Actor::system(),
                AuditAction::UserDirectoryRevoke,
                Some(&format!("user:{user_id}")),
                Some(&json!({ "reason": reason, "sessions_ended": ended })),
                now,
            )?;
            Ok(ended)
        })
        .await?;
    tracing::info!(user = %user.username, reason, ended, "A directory user lost access.");
    Ok(())
}

/// Runs [`check_sessions`] every `every` until shutdown.
pub async fn check_sessions_every(
    state: AppState,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(error) = check_sessions(&state).await {
                    tracing::warn!(%error, "Checking directory users' sessions failed.");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
