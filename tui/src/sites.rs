//! All sites at once: every saved context's server asked in parallel for its summary — nodes by
//! health, active alerts by severity, collectors offline — and for its active alerts, for the
//! `:sites` view and `plantwatch sites status|alerts`. A site that does not answer within
//! [`SITE_TIMEOUT`] is shown as unreachable; it never holds the others up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use plantwatch_shared::api::{Alert, AlertQuery, ComponentStatus, Severity};
use plantwatch_shared::{Client, error_chain};
use serde::Serialize;

use crate::profile::{Context, Profiles};

/// How long one site may take to answer.
pub const SITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most active alerts read from one site for the merged list.
pub const ALERTS_PER_SITE: u32 = 200;

/// One site as the sites view shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteStatus {
    /// The context's name.
    pub site: String,
    pub url: String,
    /// Whether it is the context in use.
    pub current: bool,
    /// `ok`, `not signed in`, `unreachable`, `signed out` (the session ended) or `error`.
    pub state: String,
    /// Why it is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Nodes per health (`healthy`, `critical`, `offline`, …).
    pub nodes: BTreeMap<String, i64>,
    /// Active alerts per severity.
    pub alerts: BTreeMap<String, u64>,
    pub collectors: usize,
    pub collectors_offline: usize,
    /// How long the server took to answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_ms: Option<u64>,
}

impl SiteStatus {
    fn blank(context: &Context, current: bool, state: &str, problem: Option<String>) -> Self {
        SiteStatus {
            site: context.name.clone(),
            url: context.url.clone(),
            current,
            state: state.to_owned(),
            problem,
            nodes: BTreeMap::new(),
            alerts: BTreeMap::new(),
            collectors: 0,
            collectors_offline: 0,
            answer_ms: None,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.state == "ok"
    }

    pub fn node_count(&self) -> i64 {
        self.nodes.values().sum()
    }

    pub fn nodes_in(&self, health: &str) -> i64 {
        self.nodes.get(health).copied().unwrap_or(0)
    }

    pub fn alerts_of(&self, severity: &str) -> u64 {
        self.alerts.get(severity).copied().unwrap_or(0)
    }

    /// How bad the site is, worst first: unreachable, critical, offline, warning, healthy.
    pub fn urgency(&self) -> (u8, i64) {
        if !self.is_ok() {
            return (0, 0);
        }
        let critical = self.nodes_in("critical") + self.alerts_of("critical") as i64;
        let offline = self.nodes_in("offline") + self.collectors_offline as i64;
        let warning = self.nodes_in("warning") + self.alerts_of("warning") as i64;
        match (critical, offline, warning) {
            (c, _, _) if c > 0 => (1, -c),
            (_, o, _) if o > 0 => (2, -o),
            (_, _, w) if w > 0 => (3, -w),
            _ => (4, 0),
        }
    }

    /// `12 (1 critical, 2 offline)`: the nodes, and those not healthy.
    pub fn nodes_cell(&self) -> String {
        if !self.is_ok() {
            return "-".into();
        }
        let unwell: Vec<String> = [
            "critical",
            "offline",
            "warning",
            "maintenance",
            "discovering",
        ]
        .iter()
        .filter_map(|h| {
            let n = self.nodes_in(h);
            (n > 0).then(|| format!("{n} {h}"))
        })
        .collect();
        if unwell.is_empty() {
            format!("{}", self.node_count())
        } else {
            format!("{} ({})", self.node_count(), unwell.join(", "))
        }
    }
}

fn client_of(context: &Context) -> Result<Client, String> {
    let token = context.token.clone().ok_or("not signed in")?;
    context
        .client()
        .map(|c| c.with_token(token))
        .map_err(|e| error_chain(&e))
}

/// What a failed call says about the site: signed out, or unreachable.
fn failed(context: &Context, current: bool, error: &plantwatch_shared::Error) -> SiteStatus {
    let state = if error.status() == Some(401) {
        "signed out"
    } else if error.status().is_some() {
        "error"
    } else {
        "unreachable"
    };
    SiteStatus::blank(context, current, state, Some(error_chain(error)))
}

/// Asks one site for its summary.
pub async fn status_of(context: &Context, current: bool) -> SiteStatus {
    let client = match client_of(context) {
        Ok(client) => client,
        Err(problem) => {
            return SiteStatus::blank(context, current, "not signed in", Some(problem));
        }
    };
    let started = Instant::now();
    match tokio::time::timeout(SITE_TIMEOUT, client.summary()).await {
        Err(_) => SiteStatus::blank(
            context,
            current,
            "unreachable",
            Some(format!("no answer within {} s", SITE_TIMEOUT.as_secs())),
        ),
        Ok(Err(error)) => failed(context, current, &error),
        Ok(Ok(summary)) => {
            let offline = summary
                .collectors
                .iter()
                .filter(|c| c.status == ComponentStatus::Offline)
                .count();
            SiteStatus {
                nodes: summary.nodes_by_health,
                alerts: summary.alerts_by_severity,
                collectors: summary.collectors.len(),
                collectors_offline: offline,
                answer_ms: Some(started.elapsed().as_millis() as u64),
                ..SiteStatus::blank(context, current, "ok", None)
            }
        }
    }
}

/// Every saved site, asked in parallel, in the order they are saved; `in_use` (else the saved
/// current one) is marked current.
pub async fn statuses(profiles: &Profiles, in_use: Option<&str>) -> Vec<SiteStatus> {
    let in_use = in_use.or(profiles.current.as_deref());
    let mut tasks = tokio::task::JoinSet::new();
    for (index, context) in profiles.contexts.iter().cloned().enumerate() {
        let current = in_use == Some(context.name.as_str());
        tasks.spawn(async move { (index, status_of(&context, current).await) });
    }
    let mut out: Vec<(usize, SiteStatus)> = tasks.join_all().await;
    out.sort_by_key(|(index, _)| *index);
    out.into_iter().map(|(_, status)| status).collect()
}

/// An active alert of one site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteAlert {
    pub site: String,
    #[serde(flatten)]
    pub alert: Alert,
}

/// The active alerts of every site that answers, most urgent first (critical, then newest), and
/// the sites that did not answer with why.
pub async fn alerts(profiles: &Profiles) -> (Vec<SiteAlert>, Vec<(String, String)>) {
    let mut tasks = tokio::task::JoinSet::new();
    for context in profiles.contexts.iter().cloned() {
        tasks.spawn(async move {
            let client = match client_of(&context) {
                Ok(client) => client,
                Err(problem) => return (context.name, Err(problem)),
            };
            let query = AlertQuery {
                limit: Some(ALERTS_PER_SITE),
                ..AlertQuery::default()
            };
            let answer = match tokio::time::timeout(SITE_TIMEOUT, client.list_alerts(&query)).await
            {
                Err(_) => Err(format!("no answer within {} s", SITE_TIMEOUT.as_secs())),
                Ok(Err(error)) => Err(error_chain(&error)),
                Ok(Ok(list)) => Ok(list.items),
            };
            (context.name, answer)
        });
    }
    let mut merged = Vec::new();
    let mut missing = Vec::new();
    for (site, answer) in tasks.join_all().await {
        match answer {
            Ok(items) => merged.extend(items.into_iter().map(|alert| SiteAlert {
                site: site.clone(),
                alert,
            })),
            Err(problem) => missing.push((site, problem)),
        }
    }
    sort_alerts(&mut merged);
    missing.sort();
    (merged, missing)
}

/// Critical first, then the newest, then by site: the same order on every refresh.
pub fn sort_alerts(alerts: &mut [SiteAlert]) {
    alerts.sort_by(|a, b| {
        let rank = |s: Severity| u8::from(s != Severity::Critical);
        rank(a.alert.severity)
            .cmp(&rank(b.alert.severity))
            .then_with(|| b.alert.started_at.cmp(&a.alert.started_at))
            .then_with(|| a.site.cmp(&b.site))
            .then_with(|| a.alert.id.cmp(&b.alert.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(nodes: &[(&str, i64)], alerts: &[(&str, u64)], offline: usize) -> SiteStatus {
        let context = Context {
            name: "plant".into(),
            url: "https://127.0.0.1:1".into(),
            fingerprint: None,
            username: None,
            token: None,
            alternates: Vec::new(),
        };
        SiteStatus {
            nodes: nodes.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
            alerts: alerts.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
            collectors: 2,
            collectors_offline: offline,
            ..SiteStatus::blank(&context, false, "ok", None)
        }
    }

    #[test]
    fn sites_rank_unreachable_critical_offline_warning_healthy() {
        let down = SiteStatus {
            state: "unreachable".into(),
            ..site(&[], &[], 0)
        };
        let critical = site(&[("healthy", 9), ("critical", 1)], &[], 0);
        let offline = site(&[("healthy", 9)], &[], 1);
        let warning = site(&[("healthy", 9)], &[("warning", 2)], 0);
        let healthy = site(&[("healthy", 9)], &[], 0);
        let mut all = [&healthy, &warning, &offline, &critical, &down];
        all.sort_by_key(|s| s.urgency());
        assert_eq!(all, [&down, &critical, &offline, &warning, &healthy]);
        assert_eq!(critical.nodes_cell(), "10 (1 critical)");
        assert_eq!(healthy.nodes_cell(), "9");
        assert_eq!(down.nodes_cell(), "-");
    }
}
