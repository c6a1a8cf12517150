//! Certificates: every certificate the plant's `tls` checks found, soonest expiry first, with
//! the node, port, name, days left, issuer, trust and TLS version; `Enter` shows one whole.

use plantwatch_shared::api::{CertificateFinding, CertificateQuery, Role};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Rect};
use time::OffsetDateTime;

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::Overlay;
use crate::widgets::table::{Column, DataTable};

pub const SPEC: ViewSpec = ViewSpec {
    name: "certs",
    aliases: &["certificates", "tls"],
    about: "every certificate the TLS checks found, soonest expiry first",
    min_role: Role::Viewer,
    make: || Box::new(CertsView::new()),
};

/// Days left as shown and sorted: no certificate (a failed check) first of all.
fn days(f: &CertificateFinding) -> Option<i64> {
    f.days_left(OffsetDateTime::now_utc())
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

static COLUMNS: &[Column<CertificateFinding>] = &[
    Column {
        title: "DAYS",
        sort_key: 'd',
        width: Constraint::Length(6),
        cell: |f| days(f).map_or_else(|| "-".into(), |d| d.to_string()),
        cmp: |a, b| days(a).cmp(&days(b)),
    },
    Column {
        title: "NODE",
        sort_key: 'n',
        width: Constraint::Fill(1),
        cell: |f| f.node.clone(),
        cmp: |a, b| crate::widgets::table::caseless(&a.node, &b.node),
    },
    Column {
        title: "PORT",
        sort_key: 'p',
        width: Constraint::Length(6),
        cell: |f| f.port.to_string(),
        cmp: |a, b| a.port.cmp(&b.port),
    },
    Column {
        title: "NAME",
        sort_key: 'm',
        width: Constraint::Fill(1),
        cell: |f| f.server_name.clone(),
        cmp: |a, b| a.server_name.cmp(&b.server_name),
    },
    Column {
        title: "ISSUER / PROBLEM",
        sort_key: 'i',
        width: Constraint::Fill(2),
        cell: |f| f.error.clone().unwrap_or_else(|| f.issuer.clone()),
        cmp: |a, b| a.issuer.cmp(&b.issuer),
    },
    Column {
        title: "TRUST",
        sort_key: 't',
        width: Constraint::Length(5),
        cell: |f| if f.error.is_some() { "-".into() } else { yes_no(f.trusted) },
        cmp: |a, b| a.trusted.cmp(&b.trusted),
    },
    Column {
        title: "NAME OK",
        sort_key: 'o',
        width: Constraint::Length(7),
        cell: |f| if f.error.is_some() { "-".into() } else { yes_no(f.name_matches) },
        cmp: |a, b| a.name_matches.cmp(&b.name_matches),
    },
    Column {
        title: "TLS",
        sort_key: 'v',
        width: Constraint::Length(8),
        cell: |f| f.tls_version.clone().unwrap_or_else(|| "-".into()),
        cmp: |a, b| a.tls_version.cmp(&b.tls_version),
    },
];

pub struct CertsView {
    pub table: DataTable<CertificateFinding>,
}

impl CertsView {
    pub fn new() -> Self {
        let mut table = DataTable::new(COLUMNS, |f| f.check_id.to_string());
        // Soonest expiry first.
        table.sort_by(0);
        CertsView { table }
    }
}

impl Default for CertsView {
    fn default() -> Self {
        Self::new()
    }
}

/// Every field of a finding, for the detail overlay.
pub fn detail_lines(f: &CertificateFinding) -> Vec<(String, String)> {
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            text.to_owned()
        }
    };
    let mut lines = vec![
        ("Node".to_owned(), format!("{} port {}", f.node, f.port)),
        ("Server name".to_owned(), f.server_name.clone()),
    ];
    if let Some(error) = &f.error {
        lines.push(("Problem".into(), error.clone()));
    }
    lines.extend([
        ("Subject".to_owned(), or_dash(&f.subject)),
        ("Issuer".to_owned(), or_dash(&f.issuer)),
        ("Names".to_owned(), or_dash(&f.sans.join(", "))),
        ("Valid from".to_owned(), time_cell(f.not_before)),
        ("Expires".to_owned(), time_cell(f.not_after)),
        (
            "Days left".to_owned(),
            days(f).map_or_else(|| "-".into(), |d| d.to_string()),
        ),
        ("Chain expires".to_owned(), time_cell(f.chain_not_after)),
        ("Chain length".to_owned(), f.chain_length.to_string()),
        ("Name matches".to_owned(), yes_no(f.name_matches)),
        (
            "Trusted".to_owned(),
            match &f.trust_problem {
                Some(problem) if !f.trusted => format!("no: {problem}"),
                _ => yes_no(f.trusted),
            },
        ),
        ("Signature".to_owned(), or_dash(&f.signature_algorithm)),
        ("Key".to_owned(), or_dash(&f.key)),
        ("TLS".to_owned(), f.tls_version.clone().unwrap_or_else(|| "-".into())),
        ("SHA-256".to_owned(), or_dash(&f.fingerprint)),
        ("Checked".to_owned(), time_cell(Some(f.checked_at))),
    ]);
    lines
}

impl View for CertsView {
    fn title(&self) -> String {
        self.table.title("Certificates")
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![
            Binding::new(
                &[Key::new(KeyCode::Enter)],
                Action::Open,
                "show the certificate whole",
            )
            .footer("details"),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.table.sort_keys()
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        self.table.render(
            frame,
            area,
            "Certificates",
            "No certificates yet: add tls checks to nodes (plantwatch checks add NODE tls:443).",
            ctx.theme,
        );
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        vec![task("loading the certificates", async move {
            client
                .certificates(&CertificateQuery::default())
                .await
                .map(Reply::Certificates)
        })]
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Vec<Effect> {
        let (Action::Open, Some(finding)) = (action, self.table.selected()) else {
            return Vec::new();
        };
        vec![Effect::Open(Overlay::Detail {
            title: format!("Certificate of {} port {}", finding.node, finding.port),
            lines: detail_lines(finding),
        })]
    }

    fn on_reply(&mut self, reply: &Reply, _ctx: &Ctx) -> Vec<Effect> {
        if let Reply::Certificates(list) = reply {
            self.table.set_rows(list.items.clone());
        }
        Vec::new()
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        Some(&mut self.table)
    }
}
