//! The `discovery_jobs`, `discovered_devices` and `discovery_dismissals` tables: jobs and their
//! schedule, claiming by a collector, result batches, the inbox, import marks and dismissals.

use plantwatch_shared::api::{
    Device, DeviceQuery, DeviceStatus, Found, Job, JobState, ResultBatch, ScanOptions,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, Row, params, params_from_iter};

use super::{json_column as json, parsed, to_json, to_time};

/// A job as inserted.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub name: String,
    pub collector_id: i64,
    pub targets: Vec<String>,
    pub exclusions: Vec<String>,
    pub credential_ids: Vec<i64>,
    pub options: ScanOptions,
    pub every_secs: Option<u32>,
    pub total: u64,
    pub created_by: Option<i64>,
}

/// What a collector needs of a job it claims (credentials and templates are added by the
/// caller).
#[derive(Debug, Clone)]
pub struct Work {
    pub id: i64,
    pub targets: Vec<String>,
    pub exclusions: Vec<String>,
    pub options: ScanOptions,
    pub credential_ids: Vec<i64>,
    pub resume_at: u64,
}

pub fn insert_job(
    conn: &Connection,
    job: &NewJob,
    repeat_of: Option<i64>,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO discovery_jobs (name, collector_id, targets, exclusions, credential_ids,
                                     options, every_secs, repeat_of, total, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            job.name,
            job.collector_id,
            to_json(&job.targets),
            to_json(&job.exclusions),
            to_json(&job.credential_ids),
            to_json(&job.options),
            job.every_secs,
            repeat_of,
            job.total as i64,
            job.created_by,
            now
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

const SELECT_JOB: &str = "
SELECT j.id, j.name, j.collector_id, c.name, j.targets, j.exclusions,
       (SELECT json_group_array(cr.name) FROM json_each(j.credential_ids) e
          JOIN credentials cr ON cr.id = e.value),
       j.options, j.every_secs, j.repeat_of, j.state, j.total, j.done,
       (SELECT count(*) FROM discovered_devices d WHERE d.job_id = j.id),
       (SELECT count(*) FROM discovered_devices d WHERE d.job_id = j.id
                                                    AND d.sys_object_id IS NOT NULL),
       j.error, u.username, j.created_at, j.started_at, j.progress_at, j.finished_at,
       j.next_run_at
  FROM discovery_jobs j
  JOIN remote_components c ON c.id = j.collector_id
  LEFT JOIN users u ON u.id = j.created_by";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let state: JobState = parsed(row, 10)?;
    let total = row.get::<_, i64>(11)?.max(0) as u64;
    let done = row.get::<_, i64>(12)?.max(0) as u64;
    let started_at: Option<i64> = row.get(18)?;
    let progress_at: Option<i64> = row.get(19)?;
    let finished_at: Option<i64> = row.get(20)?;
    // The rate over the run so far: to the last progress report, or to the end.
    let rate = match (started_at, finished_at.or(progress_at)) {
        (Some(start), Some(end)) if end > start && done > 0 => {
            Some(done as f64 / (end - start) as f64)
        }
        _ => None,
    };
    let eta_s = match rate {
        Some(rate) if state == JobState::Running && rate > 0.0 => {
            Some((total.saturating_sub(done) as f64 / rate).ceil() as u64)
        }
        _ => None,
    };
    Ok(Job {
        id: row.get(0)?,
        name: row.get(1)?,
        collector_id: row.get(2)?,
        collector: row.get(3)?,
        targets: json(row, 4)?,
        exclusions: json(row, 5)?,
        credentials: json(row, 6)?,
        options: json(row, 7)?,
        every_s: row.get(8)?,
        repeat_of: row.get(9)?,
        state,
        total,
        done,
        hosts_found: row.get::<_, i64>(13)?.max(0) as u64,
        snmp_identified: row.get::<_, i64>(14)?.max(0) as u64,
        rate,
        eta_s,
        error: row.get(15)?,
        created_by: row.get(16)?,
        created_at: to_time(row.get(17)?),
        started_at: started_at.map(to_time),
        finished_at: finished_at.map(to_time),
        next_run_at: row.get::<_, Option<i64>>(21)?.map(to_time),
    })
}

pub fn job(conn: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(&format!("{SELECT_JOB} WHERE j.id = ?1"))?
        .query_row([id], job_from_row)
        .optional()
}

/// A page of jobs, newest first, and how many match.
pub fn list_jobs(
    conn: &Connection,
    state: Option<JobState>,
    collector_id: Option<i64>,
    limit: u32,
    offset: u32,
) -> rusqlite::Result<(Vec<Job>, u64)> {
    let filter = "WHERE (?1 IS NULL OR j.state = ?1) AND (?2 IS NULL OR j.collector_id = ?2)";
    let state = state.map(JobState::as_str);
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM discovery_jobs j {filter}"),
        params![state, collector_id],
        |r| r.get(0),
    )?;
    let items = conn
        .prepare(&format!(
            "{SELECT_JOB} {filter} ORDER BY j.id DESC LIMIT ?3 OFFSET ?4"
        ))?
        .query_map(params![state, collector_id, limit, offset], job_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((items, total.max(0) as u64))
}

/// The collector of a job and its state.
pub fn job_owner(conn: &Connection, id: i64) -> rusqlite::Result<Option<(i64, JobState)>> {
    conn.prepare_cached("SELECT collector_id, state FROM discovery_jobs WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, parsed(r, 1)?)))
        .optional()
}

/// Queues the next run of every scheduled job of `collector_id` that is due: a copy that
/// carries the schedule on, while the finished run keeps its results and drops the schedule.
pub fn queue_due(conn: &Connection, collector_id: i64, now: i64) -> rusqlite::Result<usize> {
    let due: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM discovery_jobs
              WHERE collector_id = ?1 AND next_run_at IS NOT NULL AND next_run_at <= ?2",
        )?
        .query_map([collector_id, now], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &due {
        conn.execute(
            "INSERT INTO discovery_jobs (name, collector_id, targets, exclusions, credential_ids,
                                         options, every_secs, repeat_of, total, created_by,
                                         created_at)
             SELECT name, collector_id, targets, exclusions, credential_ids, options, every_secs,
                    coalesce(repeat_of, id), total, created_by, ?2
               FROM discovery_jobs WHERE id = ?1",
            [*id, now],
        )?;
        conn.execute(
            "UPDATE discovery_jobs SET next_run_at = NULL WHERE id = ?1",
            [*id],
        )?;
    }
    Ok(due.len())
}

/// The job `collector_id` is to run: one it was running (it restarted: resumed), else the
/// oldest queued one, which turns running.
pub fn claim(conn: &Connection, collector_id: i64, now: i64) -> rusqlite::Result<Option<Work>> {
    queue_due(conn, collector_id, now)?;
    let pick = |state: &str| {
        conn.prepare_cached(
            "SELECT id, targets, exclusions, options, credential_ids, resume_at
               FROM discovery_jobs WHERE collector_id = ?1 AND state = ?2 ORDER BY id LIMIT 1",
        )?
        .query_row(params![collector_id, state], |row| {
            Ok(Work {
                id: row.get(0)?,
                targets: json(row, 1)?,
                exclusions: json(row, 2)?,
                options: json(row, 3)?,
                credential_ids: json(row, 4)?,
                resume_at: row.get::<_, i64>(5)?.max(0) as u64,
            })
        })
        .optional()
    };
    if let Some(work) = pick("running")? {
        conn.execute(
            "UPDATE discovery_jobs SET progress_at = ?2 WHERE id = ?1",
            [work.id, now],
        )?;
        return Ok(Some(work));
    }
    let Some(work) = pick("queued")? else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE discovery_jobs SET state = 'running', started_at = ?2, progress_at = ?2
          WHERE id = ?1",
        [work.id, now],
    )?;
    Ok(Some(work))
}

/// Stores a result batch of a running job. Returns false when the job is no longer running
/// (cancelled, or failed as stale): the collector is to stop, and the batch is dropped.
pub fn record(
    conn: &Connection,
    job_id: i64,
    collector_id: i64,
    batch: &ResultBatch,
    now: i64,
) -> rusqlite::Result<bool> {
    let running: Option<i64> = conn
        .query_row(
            "SELECT every_secs FROM discovery_jobs WHERE id = ?1 AND state = 'running'",
            [job_id],
            |r| r.get(0),
        )
        .optional()?
        .map(|every: Option<i64>| every.unwrap_or(-1));
    let Some(every) = running else {
        return Ok(false);
    };
    for found in &batch.devices {
        upsert_device(conn, job_id, collector_id, found, now)?;
    }
    conn.execute(
        "UPDATE discovery_jobs SET done = min(max(done, ?2), total), resume_at = max(resume_at, ?3),
                                   progress_at = ?4
          WHERE id = ?1",
        params![job_id, batch.done as i64, batch.resume_at as i64, now],
    )?;
    if batch.finished {
        let state = if batch.error.is_some() {
            JobState::Failed
        } else {
            JobState::Done
        };
        conn.execute(
            "UPDATE discovery_jobs
                SET state = ?2, error = ?3, finished_at = ?4,
                    next_run_at = CASE WHEN ?5 > 0 THEN ?4 + ?5 END
              WHERE id = ?1",
            params![job_id, state.as_str(), batch.error, now, every],
        )?;
    }
    Ok(true)
}

/// The fields compared between scans, as (name, value in the new answer, column).
fn compared(found: &Found) -> [(&'static str, Option<String>); 5] {
    [
        ("sys_name", found.sys_name.clone()),
        ("sys_descr", found.sys_descr.clone()),
        ("sys_object_id", found.sys_object_id.clone()),
        ("template", found.template.clone()),
        ("dns_name", found.dns_name.clone()),
    ]
}

fn upsert_device(
    conn: &Connection,
    job_id: i64,
    collector_id: i64,
    found: &Found,
    now: i64,
) -> rusqlite::Result<()> {
    // The same address in the collector's latest earlier scan.
    let before: Option<[Option<String>; 5]> = conn
        .prepare_cached(
            "SELECT sys_name, sys_descr, sys_object_id, template, dns_name
               FROM discovered_devices
              WHERE collector_id = ?1 AND address = ?2 AND job_id < ?3
              ORDER BY job_id DESC LIMIT 1",
        )?
        .query_row(params![collector_id, found.address, job_id], |r| {
            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
        })
        .optional()?;
    let changes: Vec<&str> = match &before {
        Some(old) => compared(found)
            .iter()
            .zip(old)
            .filter(|((_, new), old)| new != *old)
            .map(|((name, _), _)| *name)
            .collect(),
        None => vec![],
    };
    let dismissed: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM discovery_dismissals
                             WHERE collector_id = ?1 AND address = ?2)",
        )?
        .query_row(params![collector_id, found.address], |r| r.get(0))?;
    let status = if dismissed {
        DeviceStatus::Dismissed
    } else {
        DeviceStatus::New
    };
    let found_by = found
        .found_by
        .unwrap_or(plantwatch_shared::api::FoundBy::Icmp);
    conn.prepare_cached(
        "INSERT INTO discovered_devices
             (job_id, collector_id, address, dns_name, sys_name, sys_descr, sys_object_id,
              sys_location, sys_contact, sys_uptime_secs, vendor, template, credential_id,
              rtt_ms, open_ports, found_by, seen_before, changes, status, found_at, address_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                 (SELECT id FROM credentials WHERE id = ?13), ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                 ?21)
         ON CONFLICT (job_id, address) DO UPDATE SET
             dns_name = excluded.dns_name, sys_name = excluded.sys_name,
             sys_descr = excluded.sys_descr, sys_object_id = excluded.sys_object_id,
             sys_location = excluded.sys_location, sys_contact = excluded.sys_contact,
             sys_uptime_secs = excluded.sys_uptime_secs, vendor = excluded.vendor,
             template = excluded.template, credential_id = excluded.credential_id,
             rtt_ms = excluded.rtt_ms, open_ports = excluded.open_ports,
             found_by = excluded.found_by, changes = excluded.changes",
    )?
    .execute(params![
        job_id,
        collector_id,
        found.address,
        found.dns_name,
        found.sys_name,
        found.sys_descr,
        found.sys_object_id,
        found.sys_location,
        found.sys_contact,
        found.sys_uptime_s.map(|s| s.min(i64::MAX as u64) as i64),
        found.vendor,
        found.template,
        found.credential_id,
        found.rtt_ms,
        to_json(&found.open_ports),
        found_by.as_str(),
        before.is_some(),
        to_json(&changes),
        status.as_str(),
        now,
        address_key(&found.address)
    ])?;
    Ok(())
}

/// A key that sorts addresses numerically, IPv4 before IPv6 (anything else last, as text).
fn address_key(address: &str) -> Vec<u8> {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => [&[4u8][..], &ip.octets()].concat(),
        Ok(std::net::IpAddr::V6(ip)) => [&[6u8][..], &ip.octets()].concat(),
        Err(_) => [&[9u8][..], address.as_bytes()].concat(),
    }
}

/// Ends every running job that has not reported since `before`: its collector stopped or
/// lost the server. Partial results stay. Returns the ids.
pub fn fail_stale(conn: &Connection, before: i64, now: i64) -> rusqlite::Result<Vec<i64>> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM discovery_jobs WHERE state = 'running' AND progress_at < ?1",
        )?
        .query_map([before], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        conn.execute(
            "UPDATE discovery_jobs
                SET state = 'failed', finished_at = ?2,
                    error = 'the collector stopped reporting progress; the results so far are kept',
                    next_run_at = CASE WHEN every_secs IS NOT NULL THEN ?2 + every_secs END
              WHERE id = ?1",
            [*id, now],
        )?;
    }
    Ok(ids)
}

/// Cancels a job: a queued or running run stops, and a schedule ends. Returns false when
/// there was nothing to cancel.
pub fn cancel(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE discovery_jobs
            SET state = CASE WHEN state IN ('queued', 'running') THEN 'cancelled' ELSE state END,
                finished_at = CASE WHEN state IN ('queued', 'running') THEN ?2 ELSE finished_at END,
                every_secs = NULL, next_run_at = NULL
          WHERE id = ?1 AND (state IN ('queued', 'running') OR every_secs IS NOT NULL)",
        [id, now],
    )?;
    Ok(changed > 0)
}

const SELECT_DEVICE: &str = "
SELECT d.id, d.job_id, d.address, d.dns_name, d.sys_name, d.sys_descr, d.sys_object_id,
       d.sys_location, d.sys_contact, d.sys_uptime_secs, d.vendor, d.template, cr.name,
       d.rtt_ms, d.open_ports, d.found_by, m.id, m.name, d.seen_before, d.changes, d.status,
       d.found_at
  FROM discovered_devices d
  LEFT JOIN credentials cr ON cr.id = d.credential_id
  LEFT JOIN nodes m ON m.id = coalesce(
      d.node_id,
      (SELECT n.id FROM nodes n WHERE n.address = d.address ORDER BY n.id LIMIT 1),
      (SELECT n.id FROM nodes n WHERE d.sys_name IS NOT NULL AND n.name = d.sys_name LIMIT 1))";

/// The node monitoring a device now, by name: the one imported from it, else one with its
/// address, else one named like its sysName (the rule the inbox's `node` column shows).
pub fn monitoring_node(conn: &Connection, device_id: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(&format!("{SELECT_DEVICE} WHERE d.id = ?1"))?
        .query_row([device_id], |r| r.get::<_, Option<String>>(17))
        .optional()
        .map(Option::flatten)
}

fn device_from_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        job_id: row.get(1)?,
        address: row.get(2)?,
        dns_name: row.get(3)?,
        sys_name: row.get(4)?,
        sys_descr: row.get(5)?,
        sys_object_id: row.get(6)?,
        sys_location: row.get(7)?,
        sys_contact: row.get(8)?,
        sys_uptime_s: row.get::<_, Option<i64>>(9)?.map(|s| s.max(0) as u64),
        vendor: row.get(10)?,
        template: row.get(11)?,
        credential: row.get(12)?,
        rtt_ms: row.get(13)?,
        open_ports: json(row, 14)?,
        found_by: parsed(row, 15)?,
        node_id: row.get(16)?,
        node: row.get(17)?,
        seen_before: row.get(18)?,
        changes: json(row, 19)?,
        status: parsed(row, 20)?,
        found_at: to_time(row.get(21)?),
    })
}

/// Sort keys of the inbox.
pub const DEVICE_SORTS: &[(&str, &str)] = &[
    // Numeric order: IPv4 first, then IPv6.
    ("address", "d.address_key"),
    (
        "name",
        "coalesce(d.sys_name, d.dns_name, d.address) COLLATE NOCASE",
    ),
    ("vendor", "coalesce(d.vendor, '~') COLLATE NOCASE"),
    ("template", "coalesce(d.template, '~')"),
    ("rtt", "coalesce(d.rtt_ms, 1e9)"),
];

/// A page of a job's devices and how many match.
pub fn devices(
    conn: &Connection,
    job_id: i64,
    query: &DeviceQuery,
    order: (&str, bool),
    limit: u32,
    offset: u32,
) -> rusqlite::Result<(Vec<Device>, u64)> {
    let mut filter = String::from("WHERE d.job_id = ?1");
    let mut args: Vec<Value> = vec![Value::Integer(job_id)];
    if let Some(status) = query.status {
        args.push(Value::Text(status.as_str().to_owned()));
        filter.push_str(&format!(" AND d.status = ?{}", args.len()));
    }
    if query.unmonitored == Some(true) {
        filter.push_str(" AND m.id IS NULL");
    }
    if let Some(text) = query.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        args.push(Value::Text(format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )));
        let n = args.len();
        filter.push_str(&format!(
            " AND (d.address LIKE ?{n} ESCAPE '\\' OR d.sys_name LIKE ?{n} ESCAPE '\\' \
               OR d.dns_name LIKE ?{n} ESCAPE '\\' OR d.vendor LIKE ?{n} ESCAPE '\\' \
               OR d.template LIKE ?{n} ESCAPE '\\' OR d.sys_descr LIKE ?{n} ESCAPE '\\')"
        ));
    }
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM ({SELECT_DEVICE} {filter})"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let (sql, descending) = order;
    let direction = if descending { "DESC" } else { "ASC" };
    let ordered = sql
        .split(", ")
        .map(|part| format!("{part} {direction}"))
        .collect::<Vec<_>>()
        .join(", ");
    args.push(Value::Integer(i64::from(limit)));
    args.push(Value::Integer(i64::from(offset)));
    let n = args.len();
    let items = conn
        .prepare(&format!(
            "{SELECT_DEVICE} {filter} ORDER BY {ordered}, d.id LIMIT ?{} OFFSET ?{n}",
            n - 1
        ))?
        .query_map(params_from_iter(args.iter()), device_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((items, total.max(0) as u64))
}

/// The devices of a job with these ids (all the job's inbox with `all`), with the credential
/// id that answered.
pub fn selected(
    conn: &Connection,
    job_id: i64,
    ids: &[i64],
    all: bool,
) -> rusqlite::Result<Vec<(Device, Option<i64>)>> {
    let mut statement = conn.prepare_cached(&format!(
        "{SELECT_DEVICE} WHERE d.job_id = ?1 AND (?2 OR d.id IN (SELECT value FROM json_each(?3)))
          ORDER BY d.id"
    ))?;
    let devices: Vec<Device> = statement
        .query_map(params![job_id, all, to_json(&ids)], device_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut credential =
        conn.prepare_cached("SELECT credential_id FROM discovered_devices WHERE id = ?1")?;
    devices
        .into_iter()
        .map(|d| {
            let id: Option<i64> = credential.query_row([d.id], |r| r.get(0))?;
            Ok((d, id))
        })
        .collect()
}

pub fn mark_imported(conn: &Connection, device_id: i64, node_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE discovered_devices SET status = 'imported', node_id = ?2 WHERE id = ?1",
        [device_id, node_id],
    )?;
    Ok(())
}

/// Dismisses devices of a job and remembers their addresses for the job's collector.
pub fn dismiss(
    conn: &Connection,
    job_id: i64,
    ids: &[i64],
    all: bool,
    user_id: Option<i64>,
    now: i64,
) -> rusqlite::Result<u64> {
    let chosen =
        "job_id = ?1 AND status = 'new' AND (?2 OR id IN (SELECT value FROM json_each(?3)))";
    conn.execute(
        &format!(
            "INSERT INTO discovery_dismissals (collector_id, address, dismissed_by, dismissed_at)
             SELECT collector_id, address, ?4, ?5 FROM discovered_devices WHERE {chosen}
             ON CONFLICT DO NOTHING"
        ),
        params![job_id, all, to_json(&ids), user_id, now],
    )?;
    let changed = conn.execute(
        &format!("UPDATE discovered_devices SET status = 'dismissed' WHERE {chosen}"),
        params![job_id, all, to_json(&ids)],
    )?;
    Ok(changed as u64)
}
