//! Alerting: the evaluator loop (every 10 s over the hot window), node health, maintenance
//! windows, parent suppression, and notifications.
//!
//! Each cycle [`evaluate::gather`]s rules, nodes, components, maintenance windows and
//! channels from the database, [`evaluate::Evaluator::judge`]s every rule in one pass over the
//! hot window (never over stored samples), and applies the outcome in one transaction:
//! alert transitions with their history, notifications queued durably, node health.

pub mod evaluate;
pub mod kinds;
pub mod maintenance;
pub mod messages;
pub mod notify;
pub mod rules;
#[cfg(test)]
mod scenarios;
pub mod suppression;
pub mod transitions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use tokio::sync::watch;

use self::evaluate::{CycleStats, Evaluator};
use crate::db;
use crate::state::AppState;
use crate::telemetry::registry::figures;
use crate::telemetry::{Counter, Exposition, Gauge, Report};

/// Stores any built-in rule the database lacks.
pub fn seed(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    db::alerts::seed_builtins(conn, &rules::builtin_defaults(), crate::clock::unix_secs())
}

/// Runs one cycle at `now` (UNIX seconds).
pub async fn cycle(
    state: &AppState,
    evaluator: &mut Evaluator,
    tz: &TimeZone,
    now: i64,
) -> anyhow::Result<CycleStats> {
    let inputs = {
        let (state, tz) = (state.clone(), tz.clone());
        state
            .db
            .clone()
            .call(move |conn| {
                evaluate::gather(conn, &state.presence, &tz, now).map_err(db::DbError::from)
            })
            .await?
    };
    let judgement = evaluator.judge(&inputs, &state.metrics.hot);
    let db = state.db.clone();
    // The transaction runs on a blocking thread; the evaluator's memory goes with it and back.
    let mut owned = std::mem::take(evaluator);
    let (result, back) = tokio::task::spawn_blocking(move || {
        let outcome = (|| -> anyhow::Result<CycleStats> {
            let mut conn = db.get()?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let stats = owned.apply(&tx, &inputs, judgement)?;
            tx.commit()?;
            Ok(stats)
        })();
        if outcome.is_err() {
            // The memory may hold changes that were rolled back: start again from what is
            // stored.
            if let Ok(open) = db
                .get()
                .map_err(anyhow::Error::from)
                .and_then(|conn| Ok(db::alerts::open_alerts(&conn)?))
            {
                owned = Evaluator::new(open);
            }
        }
        (outcome, owned)
    })
    .await?;
    *evaluator = back;
    result
}

/// Figures of the evaluator for the API and self-monitoring.
#[derive(Debug, Default)]
pub struct EvaluatorStatus {
    pub cycles: Counter,
    pub last_cycle_us: Gauge,
}

impl Report for EvaluatorStatus {
    fn report(&self, out: &mut Exposition) {
        out.value(&figures::EVALUATOR_CYCLES, self.cycles.get() as f64);
        out.value(
            &figures::EVALUATOR_CYCLE_SECONDS,
            self.last_cycle_us.get() as f64 / 1e6,
        );
    }
}

/// The evaluator loop: a cycle every `interval` until shutdown.
pub async fn run(
    state: AppState,
    interval: Duration,
    tz: TimeZone,
    status: Arc<EvaluatorStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let open = {
        let db = state.db.clone();
        db.call(|conn| db::alerts::open_alerts(conn).map_err(db::DbError::from))
            .await
    };
    let mut evaluator = match open {
        Ok(open) => Evaluator::new(open),
        Err(error) => {
            tracing::error!(%error, "Reading open alerts failed; the evaluator does not run.");
            return;
        }
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let started = Instant::now();
        match cycle(&state, &mut evaluator, &tz, crate::clock::unix_secs()).await {
            Ok(stats) => {
                if stats.opened + stats.resolved + stats.queued + stats.health_changes > 0 {
                    tracing::info!(
                        opened = stats.opened,
                        fired = stats.fired,
                        resolved = stats.resolved,
                        queued = stats.queued,
                        health_changes = stats.health_changes,
                        "Alerts evaluated."
                    );
                }
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "Alert evaluation failed."),
        }
        let elapsed = started.elapsed().as_micros() as u64;
        status
            .last_cycle_us
            .store(elapsed, std::sync::atomic::Ordering::Relaxed);
        status
            .cycles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
