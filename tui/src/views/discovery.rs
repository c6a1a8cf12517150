//! Discovery: scan jobs with a live progress gauge (`c` starts a scan, `x` cancels one), and
//! each job's inbox of found devices (Enter on a job): filter, sort, mark with Space, import
//! the marked devices as nodes (`i`) or dismiss them (`x`), Enter for every probed field.

use std::cmp::Ordering;
use std::net::IpAddr;

use plantwatch_shared::api::{
    AddressSet, ComponentKind, ComponentQuery, ComponentStatus, CredentialQuery, DEFAULT_TCP_PORTS, Device, DeviceStatus,
    DeviceQuery, DeviceSelection, Job, JobQuery, JobSpec, JobState, MAX_PAGE_LIMIT, Role,
    ScanOptions, parse_tcp_ports,
};
use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph};

use super::{Ctx, Effect, Navigate, View, ViewSpec};
use crate::cells::{device_name, progress_cell, rtt_cell};
use crate::cells::time_cell;
use crate::event::{Reply, Task, task};
use crate::keymap::{Action, Binding, Key};
use crate::overlay::{Confirm, Overlay};
use crate::widgets::form::{Field, Form, Purpose};
use crate::widgets::table::{Column, DataTable, caseless};

// The fields of this view's forms: a label is written once, and a field is read by its id.
crate::field_ids! {
    Targets = "Targets",
    Exclude = "Exclude",
    Collector = "Collector",
    Credentials = "Credentials",
    TCPPorts = "TCP ports",
    Icmp = "ICMP",
    Snmp = "SNMP",
    ReverseDNS = "Reverse DNS",
    PacketsS = "Packets/s",
    Repeat = "Repeat",
    Name = "Name",
}

pub const SPEC: ViewSpec = ViewSpec {
    name: "discovery",
    aliases: &["di", "disc", "scan", "inbox"],
    about: "scan networks, review what was found, import it as nodes",
    min_role: Role::Viewer,
    make: || Box::new(DiscoveryView::new()),
};

crate::asks!(
    NEW_SCAN,
    CANCEL,
    DISMISS,
);

/// A text progress bar: `[####....]  47%`.
fn bar(job: &Job) -> String {
    let width = 8;
    let filled = (job.progress() * width as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(filled),
        ".".repeat(width - filled),
        job.progress() * 100.0
    )
}

fn eta_cell(job: &Job) -> String {
    match (job.state, job.eta_s) {
        (JobState::Running, Some(s)) if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        (JobState::Running, Some(s)) => format!("{s}s"),
        (JobState::Running | JobState::Queued, None) => "…".into(),
        // `2026-11-29 15:59` without the year: the column stays narrow.
        _ => time_cell(job.finished_at).get(5..).unwrap_or_default().to_owned(),
    }
}

static JOB_COLUMNS: &[Column<Job>] = &[
    Column {
        title: "ID",
        sort_key: 'i',
        width: Constraint::Length(4),
        cell: |j| j.id.to_string(),
        cmp: |a, b| a.id.cmp(&b.id),
    },
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Fill(1),
        cell: |j| j.name.clone(),
        cmp: |a, b| caseless(&a.name, &b.name),
    },
    Column {
        title: "COLLECTOR",
        sort_key: 'c',
        width: Constraint::Length(9),
        cell: |j| j.collector.clone(),
        cmp: |a, b| caseless(&a.collector, &b.collector),
    },
    Column {
        title: "STATE",
        sort_key: 's',
        width: Constraint::Length(9),
        cell: |j| j.state.to_string(),
        cmp: |a, b| a.state.cmp(&b.state),
    },
    Column {
        title: "PROGRESS",
        sort_key: 'p',
        width: Constraint::Length(16),
        cell: bar,
        cmp: |a, b| a.progress().total_cmp(&b.progress()),
    },
    Column {
        title: "HOSTS",
        sort_key: 'h',
        width: Constraint::Length(5),
        cell: |j| j.hosts_found.to_string(),
        cmp: |a, b| a.hosts_found.cmp(&b.hosts_found),
    },
    Column {
        title: "SNMP",
        sort_key: 'm',
        width: Constraint::Length(4),
        cell: |j| j.snmp_identified.to_string(),
        cmp: |a, b| a.snmp_identified.cmp(&b.snmp_identified),
    },
    Column {
        title: "ETA/ENDED",
        sort_key: 'e',
        width: Constraint::Length(11),
        cell: eta_cell,
        cmp: |a, b| a.finished_at.cmp(&b.finished_at),
    },
];

fn address_cmp(a: &Device, b: &Device) -> Ordering {
    match (a.address.parse::<IpAddr>(), b.address.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.address.cmp(&b.address),
    }
}

/// The status; a device still in the inbox that differs from the earlier scan says `changed`.
fn status_cell(d: &Device) -> String {
    if d.status == DeviceStatus::New && !d.changes.is_empty() {
        "changed".into()
    } else {
        d.status.to_string()
    }
}

static DEVICE_COLUMNS: &[Column<Device>] = &[
    Column {
        title: "ADDRESS",
        sort_key: 'a',
        width: Constraint::Length(15),
        cell: |d| d.address.clone(),
        cmp: address_cmp,
    },
    Column {
        title: "NAME",
        sort_key: 'n',
        width: Constraint::Fill(2),
        cell: device_name,
        cmp: |a, b| caseless(&device_name(a), &device_name(b)),
    },
    Column {
        title: "VENDOR",
        sort_key: 'v',
        width: Constraint::Fill(1),
        cell: |d| d.vendor.clone().unwrap_or_default(),
        cmp: |a, b| caseless(a.vendor.as_deref().unwrap_or(""), b.vendor.as_deref().unwrap_or("")),
    },
    Column {
        title: "TEMPLATE",
        sort_key: 't',
        width: Constraint::Fill(1),
        cell: Device::template_hint,
        cmp: |a, b| a.template.cmp(&b.template),
    },
    Column {
        title: "BY",
        sort_key: 'b',
        width: Constraint::Length(4),
        cell: |d| d.found_by.to_string(),
        cmp: |a, b| a.found_by.cmp(&b.found_by),
    },
    Column {
        title: "RTT",
        sort_key: 'r',
        width: Constraint::Length(9),
        cell: |d| rtt_cell(d.rtt_ms),
        cmp: |a, b| a.rtt_ms.unwrap_or(f64::MAX).total_cmp(&b.rtt_ms.unwrap_or(f64::MAX)),
    },
    Column {
        title: "MONITORED",
        sort_key: 'o',
        width: Constraint::Fill(1),
        cell: |d| d.node.clone().unwrap_or_default(),
        cmp: |a, b| a.node.cmp(&b.node),
    },
    Column {
        title: "STATUS",
        sort_key: 'u',
        width: Constraint::Length(9),
        cell: status_cell,
        cmp: |a, b| a.status.cmp(&b.status),
    },
];

pub struct DiscoveryView {
    pub jobs: DataTable<Job>,
    pub devices: DataTable<Device>,
    /// The job whose inbox is shown; the jobs list when `None`.
    pub inbox: Option<Job>,
    /// Collector names (the local one first) and SNMP credential names, for the new-scan form.
    pub collectors: Vec<String>,
    /// When the choices were loaded: they follow the 10 s refresh, not the live one.
    choices_at: Option<time::OffsetDateTime>,
    pub credentials: Vec<String>,
    target: Option<Job>,
    chosen: Vec<i64>,
}

impl DiscoveryView {
    pub fn new() -> Self {
        let mut jobs = DataTable::new(JOB_COLUMNS, |j| j.id.to_string());
        jobs.sort_by(0);
        jobs.sort_by(0);
        let mut devices = DataTable::new(DEVICE_COLUMNS, |d| d.id.to_string());
        devices.sort_by(0);
        DiscoveryView {
            jobs,
            devices,
            inbox: None,
            collectors: Vec::new(),
            choices_at: None,
            credentials: Vec::new(),
            target: None,
            chosen: Vec::new(),
        }
    }

    /// The job the gauge follows: the inbox's, else the selected one.
    fn followed(&self) -> Option<&Job> {
        let id = self.inbox.as_ref().or(self.jobs.selected())?.id;
        self.jobs.rows().iter().find(|j| j.id == id).or(self.inbox.as_ref())
    }

    /// The marked devices, else the selected one.
    fn selection(&self) -> Vec<Device> {
        let marked: Vec<Device> = self.devices.marked().into_iter().cloned().collect();
        if marked.is_empty() {
            self.devices.selected().cloned().into_iter().collect()
        } else {
            marked
        }
    }

    fn new_scan_form(&self) -> Form {
        let mut collectors = self.collectors.clone();
        if collectors.is_empty() {
            collectors.push("local".into());
        }
        let defaults = ScanOptions::default();
        let ports: Vec<String> = DEFAULT_TCP_PORTS.iter().map(u16::to_string).collect();
        Form::new(
            "New scan",
            Purpose::View(NEW_SCAN),
            vec![
                Field::text(FieldId::Targets).checked(targets_check),
                Field::text(FieldId::Exclude).optional().checked(exclusions_check),
                Field::pick(FieldId::Collector, collectors),
                Field::multi(FieldId::Credentials, self.credentials.clone()),
                Field::text(FieldId::TCPPorts)
                    .optional()
                    .with_value(ports.join(","))
                    .checked(ports_check),
                Field::choice(FieldId::Icmp, &["yes", "no"], "yes"),
                Field::choice(FieldId::Snmp, &["yes", "no"], "yes"),
                Field::choice(FieldId::ReverseDNS, &["yes", "no"], "yes"),
                Field::text(FieldId::PacketsS)
                    .with_value(defaults.packets_per_second.to_string())
                    .checked(pps_check),
                Field::choice(FieldId::Repeat, &["once", "hourly", "daily", "weekly"], "once"),
                Field::text(FieldId::Name).optional(),
            ],
        )
        .with_note(
            "Targets: CIDRs, ranges (a-b) and addresses, comma-separated. Credentials are tried in the order chosen.",
        )
    }
}

impl Default for DiscoveryView {
    fn default() -> Self {
        Self::new()
    }
}

fn targets_check(text: &str) -> Result<(), String> {
    let set = AddressSet::parse(&[text], &[] as &[&str]).map_err(|e| e.to_string())?;
    match set.size_problem(false) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

fn exclusions_check(text: &str) -> Result<(), String> {
    AddressSet::parse(&[] as &[&str], &[text])
        .map(drop)
        .map_err(|e| e.to_string())
}

fn ports_check(text: &str) -> Result<(), String> {
    parse_tcp_ports(text).map(drop)
}

fn pps_check(text: &str) -> Result<(), String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(()),
        _ => Err("a number of packets per second, 1 to 100000".into()),
    }
}

/// Every probed field of a device, for the detail overlay.
pub fn detail_lines(d: &Device) -> Vec<(String, String)> {
    let mut lines = vec![("Address".into(), d.address.clone())];
    let mut add = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            lines.push((label.into(), value));
        }
    };
    add("DNS name", d.dns_name.clone());
    add("sysName", d.sys_name.clone());
    add("sysDescr", d.sys_descr.clone());
    add("sysObjectID", d.sys_object_id.clone());
    add("sysLocation", d.sys_location.clone());
    add("sysContact", d.sys_contact.clone());
    add(
        "Uptime",
        d.sys_uptime_s
            .map(|s| format!("{}d {:02}h{:02}m", s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60)),
    );
    add("Vendor", d.vendor.clone());
    add("Template", d.template.clone());
    if d.modbus_candidate() {
        add(
            "Modbus",
            Some("TCP 502 answers: import, then give it a Modbus profile and unit id".into()),
        );
    }
    add("Credential", d.credential.clone());
    add("Found by", Some(d.found_by.to_string()));
    add("RTT", Some(rtt_cell(d.rtt_ms)));
    add(
        "Open ports",
        Some(
            d.open_ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
    );
    add(
        "Checks",
        Some(
            d.suggested_checks()
                .iter()
                .map(|c| format!("{c} (added at import)"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    );
    add("Monitored", d.node.clone());
    add("Status", Some(d.status.to_string()));
    add(
        "Seen before",
        Some(if d.seen_before { "yes" } else { "no (new device)" }.into()),
    );
    add("Changed", Some(d.changes.join(", ")));
    add("Found at", Some(time_cell(Some(d.found_at))));
    lines
}

impl View for DiscoveryView {
    fn title(&self) -> String {
        match &self.inbox {
            Some(job) => self
                .devices
                .title(&format!("Discovery inbox — job {} {}", job.id, job.name)),
            None => self.jobs.title("Discovery jobs"),
        }
    }

    fn bindings(&self) -> Vec<Binding> {
        if self.inbox.is_some() {
            return vec![
                Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "every probed field")
                    .footer("details"),
                Binding::new(&[Key::ch(' ')], Action::Mark, "mark or unmark the device")
                    .role(Role::Operator),
                Binding::new(&[Key::ch('*')], Action::MarkAll, "mark every device shown, or unmark them")
                    .role(Role::Operator),
                Binding::new(
                    &[Key::ch('i')],
                    Action::Import,
                    "import the marked devices (or this one) as nodes",
                )
                .footer("import")
                .role(Role::Operator),
                Binding::new(
                    &[Key::ch('x')],
                    Action::Dismiss,
                    "dismiss the marked devices (or this one); later scans remember",
                )
                .footer("dismiss")
                .role(Role::Operator),
                Binding::new(
                    &[Key::new(KeyCode::Esc), Key::new(KeyCode::Backspace)],
                    Action::Leave,
                    "back to the jobs (clears the filter first)",
                )
                .footer("jobs"),
            ];
        }
        vec![
            Binding::new(&[Key::new(KeyCode::Enter)], Action::Open, "the job's inbox of found devices")
                .footer("inbox"),
            Binding::new(&[Key::ch('c')], Action::Create, "start a scan")
                .footer("scan")
                .role(Role::Operator),
            Binding::new(&[Key::ch('x')], Action::Delete, "cancel the job and its schedule")
                .footer("cancel")
                .role(Role::Operator),
        ]
    }

    fn sort_keys(&self) -> Vec<(&'static str, char)> {
        match self.inbox {
            Some(_) => self.devices.sort_keys(),
            None => self.jobs.sort_keys(),
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let theme = ctx.theme;
        let [gauge, table] = Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(area);
        match self.followed() {
            Some(job) => {
                let rate = job.rate.map(|r| format!(" · {r:.0}/s")).unwrap_or_default();
                let eta = match job.eta_s {
                    Some(s) if job.state == JobState::Running => format!(" · ETA {s}s"),
                    _ => String::new(),
                };
                let label = format!(
                    "job {} {} · {} · {} hosts · {} SNMP{rate}{eta}",
                    job.id,
                    job.state,
                    progress_cell(job),
                    job.hosts_found,
                    job.snmp_identified
                );
                let [top, below] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(gauge);
                frame.render_widget(
                    Gauge::default()
                        .gauge_style(if job.state == JobState::Failed { theme.error() } else { theme.ok() })
                        .ratio(job.progress())
                        .label(label),
                    top,
                );
                let detail = match &job.error {
                    Some(error) => Span::styled(error.clone(), theme.error()),
                    None => Span::styled(
                        format!("targets {} on {}", job.targets.join(", "), job.collector),
                        theme.dim(),
                    ),
                };
                frame.render_widget(Paragraph::new(Line::from(detail)), below);
            }
            None => frame.render_widget(
                Paragraph::new(Line::styled("No scan yet: press c to start one.", theme.dim())),
                gauge,
            ),
        }
        match &self.inbox {
            Some(_) => self.devices.render(
                frame,
                table,
                "Discovery inbox",
                "This scan found nothing (yet).",
                theme,
            ),
            None => self.jobs.render(frame, table, "Discovery jobs", "No discovery jobs.", theme),
        }
    }

    fn refresh(&self, ctx: &Ctx) -> Vec<Task> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        let mut tasks = Vec::new();
        let jobs = client.clone();
        tasks.push(task("loading discovery jobs", async move {
            jobs.list_jobs(&JobQuery {
                limit: Some(MAX_PAGE_LIMIT),
                ..JobQuery::default()
            })
            .await
            .map(Reply::Jobs)
        }));
        if let Some(job) = &self.inbox {
            let id = job.id;
            let devices = client.clone();
            tasks.push(task("loading the inbox", async move {
                let query = DeviceQuery {
                    limit: Some(MAX_PAGE_LIMIT),
                    ..DeviceQuery::default()
                };
                devices
                    .job_devices(id, &query)
                    .await
                    .map(|list| Reply::Devices { job_id: id, list })
            }));
        }
        let stale = self
            .choices_at
            .is_none_or(|at| ctx.now - at >= crate::app::REFRESH_EVERY || ctx.now < at);
        if ctx.role() >= Role::Operator && stale {
            let lookups = client;
            tasks.push(task("loading collectors and credentials", async move {
                let collectors = lookups
                    .list_components(&ComponentQuery {
                        kind: Some(ComponentKind::Collector),
                        limit: Some(MAX_PAGE_LIMIT),
                        ..ComponentQuery::default()
                    })
                    .await?;
                let credentials = lookups
                    .list_credentials(&CredentialQuery {
                        limit: Some(MAX_PAGE_LIMIT),
                        ..CredentialQuery::default()
                    })
                    .await?;
                let mut names: Vec<(bool, String)> = collectors
                    .items
                    .into_iter()
                    .filter(|c| {
                        !matches!(c.status, ComponentStatus::Pending | ComponentStatus::Revoked)
                    })
                    .map(|c| (!c.is_local, c.name))
                    .collect();
                names.sort();
                Ok(Reply::ScanChoices {
                    collectors: names.into_iter().map(|(_, n)| n).collect(),
                    credentials: credentials
                        .items
                        .into_iter()
                        .filter(|c| c.kind.is_snmp())
                        .map(|c| c.name)
                        .collect(),
                })
            }));
        }
        tasks
    }

    fn live(&self) -> bool {
        self.jobs
            .rows()
            .iter()
            .any(|j| matches!(j.state, JobState::Running | JobState::Queued))
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        match action {
            Action::Create => vec![Effect::Open(Overlay::Form(self.new_scan_form()))],
            Action::Open if self.inbox.is_none() => {
                let Some(job) = self.jobs.selected().cloned() else {
                    return vec![Effect::Info("No job selected.".into())];
                };
                self.devices.set_rows(Vec::new());
                self.devices.clear_marks();
                self.inbox = Some(job);
                vec![Effect::Refresh]
            }
            Action::Open => match self.devices.selected() {
                Some(device) => vec![Effect::Open(Overlay::Detail {
                    title: format!("Device {}", device.address),
                    lines: detail_lines(device),
                })],
                None => vec![Effect::Info("No device selected.".into())],
            },
            Action::Leave => {
                if !self.devices.filter().is_empty() {
                    self.devices.set_filter("");
                } else {
                    self.inbox = None;
                }
                Vec::new()
            }
            Action::Mark => {
                self.devices.toggle_mark();
                Vec::new()
            }
            Action::MarkAll => {
                self.devices.toggle_mark_all();
                Vec::new()
            }
            Action::Delete => {
                let Some(job) = self.jobs.selected().cloned() else {
                    return vec![Effect::Info("No job selected.".into())];
                };
                let question = format!(
                    "Cancel job {} ({}, {}){}?",
                    job.id,
                    job.name,
                    job.state,
                    if job.every_s.is_some() { " and its schedule" } else { "" }
                );
                self.target = Some(job);
                vec![Effect::Open(Overlay::Confirm(Confirm {
                    title: "Cancel scan".into(),
                    question,
                    yes: "cancel",
                    tag: CANCEL,
                }))]
            }
            Action::Import => {
                let (Some(job), devices) = (self.inbox.as_ref(), self.selection()) else {
                    return Vec::new();
                };
                if devices.is_empty() {
                    return vec![Effect::Info("No device selected.".into())];
                }
                let id = job.id;
                let selection = DeviceSelection {
                    devices: devices.iter().map(|d| d.id).collect(),
                    ..DeviceSelection::default()
                };
                vec![Effect::Call(task("importing devices", async move {
                    client
                        .import_devices(id, &selection)
                        .await
                        .map(|outcome| Reply::DevicesImported(Box::new(outcome)))
                }))]
            }
            Action::Dismiss => {
                let devices = self.selection();
                if devices.is_empty() {
                    return vec![Effect::Info("No device selected.".into())];
                }
                self.chosen = devices.iter().map(|d| d.id).collect();
                vec![Effect::Open(Overlay::Confirm(Confirm {
                    title: "Dismiss devices".into(),
                    question: format!(
                        "Dismiss {} device(s)? Later scans by this collector file them as dismissed.",
                        devices.len()
                    ),
                    yes: "dismiss",
                    tag: DISMISS,
                }))]
            }
            _ => Vec::new(),
        }
    }

    fn on_submit(&mut self, form: &mut Form, ctx: &Ctx) -> Vec<Effect> {
        let (Purpose::View(NEW_SCAN), Some(client)) = (form.purpose, ctx.client.cloned()) else {
            return Vec::new();
        };
        if !form.validate() {
            return Vec::new();
        }
        let split = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let yes = |label: FieldId| form.value(label) == "yes";
        let name = form.value(FieldId::Name).trim();
        let spec = JobSpec {
            name: (!name.is_empty()).then(|| name.to_owned()),
            targets: split(form.value(FieldId::Targets)),
            exclusions: split(form.value(FieldId::Exclude)),
            collector: Some(form.value(FieldId::Collector).to_owned()).filter(|c| !c.is_empty()),
            credentials: split(form.value(FieldId::Credentials)),
            options: ScanOptions {
                icmp: yes(FieldId::Icmp),
                tcp_ports: parse_tcp_ports(form.value(FieldId::TCPPorts)).unwrap_or_default(),
                snmp: yes(FieldId::Snmp),
                reverse_dns: yes(FieldId::ReverseDNS),
                packets_per_second: form.value(FieldId::PacketsS).trim().parse().unwrap_or(1_000),
                ..ScanOptions::default()
            },
            force: false,
            every_s: match form.value(FieldId::Repeat) {
                "hourly" => Some(3_600),
                "daily" => Some(86_400),
                "weekly" => Some(7 * 86_400),
                _ => None,
            },
        };
        vec![Effect::Call(form.submit("starting the scan", async move {
            client
                .create_job(&spec)
                .await
                .map(|job| Reply::JobChanged { job: Box::new(job), what: "queued" })
        }))]
    }

    fn on_confirm(&mut self, tag: crate::widgets::form::Ask, ctx: &Ctx) -> Vec<Effect> {
        let Some(client) = ctx.client.cloned() else {
            return Vec::new();
        };
        match (tag, &self.target, &self.inbox) {
            (CANCEL, Some(job), _) => {
                let id = job.id;
                vec![Effect::Call(task("cancelling the job", async move {
                    client
                        .cancel_job(id)
                        .await
                        .map(|job| Reply::JobChanged { job: Box::new(job), what: "cancelled" })
                }))]
            }
            (DISMISS, _, Some(job)) => {
                let (id, devices) = (job.id, std::mem::take(&mut self.chosen));
                vec![Effect::Call(task("dismissing devices", async move {
                    client
                        .dismiss_devices(
                            id,
                            &DeviceSelection {
                                devices,
                                ..DeviceSelection::default()
                            },
                        )
                        .await
                        .map(|d| Reply::DevicesDismissed(d.dismissed))
                }))]
            }
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: &Reply, ctx: &Ctx) -> Vec<Effect> {
        match reply {
            Reply::Jobs(list) => {
                self.jobs.set_rows(list.items.clone());
                if let Some(inbox) = &mut self.inbox
                    && let Some(job) = list.items.iter().find(|j| j.id == inbox.id)
                {
                    *inbox = job.clone();
                }
                Vec::new()
            }
            Reply::Devices { job_id, list } if self.inbox.as_ref().is_some_and(|j| j.id == *job_id) => {
                self.devices.set_rows(list.items.clone());
                Vec::new()
            }
            Reply::ScanChoices {
                collectors,
                credentials,
            } => {
                self.collectors = collectors.clone();
                self.choices_at = Some(ctx.now);
                self.credentials = credentials.clone();
                Vec::new()
            }
            Reply::JobChanged { job, what } => vec![
                Effect::CloseOverlay,
                Effect::Info(format!("Job {} {what}: {} addresses on {}.", job.id, job.total, job.collector)),
                Effect::Refresh,
            ],
            Reply::DevicesImported(outcome) => {
                self.devices.clear_marks();
                let mut text = format!("{} imported as nodes", outcome.created.len());
                if let Some(first) = outcome.skipped.first() {
                    text.push_str(&format!(
                        ", {} skipped ({}: {})",
                        outcome.skipped.len(),
                        first.address,
                        first.reason
                    ));
                }
                vec![Effect::Info(format!("{text}.")), Effect::Refresh]
            }
            Reply::DevicesDismissed(count) => {
                self.devices.clear_marks();
                vec![
                    Effect::Info(format!("{count} device(s) dismissed.")),
                    Effect::Refresh,
                ]
            }
            _ => Vec::new(),
        }
    }

    fn table(&mut self) -> Option<&mut dyn Navigate> {
        match self.inbox {
            Some(_) => Some(&mut self.devices),
            None => Some(&mut self.jobs),
        }
    }
}
