//! Reading many values in few round trips: GETs in chunks (v1's noSuchName handled), and table
//! walks that advance several columns in one GETBULK (GETNEXT, one column at a time, for v1),
//! stopping each column at the end of its subtree or at endOfMibView.

use std::collections::{BTreeMap, HashMap};

use super::decode::{Oid, Value, is_below};
use super::session::{NO_SUCH_NAME, Request, Session, SnmpError, TOO_BIG};

/// OIDs per GET request.
const GET_CHUNK: usize = 24;
/// Varbinds asked for per GETBULK, over all columns (keeps replies well under 64 KiB).
const BULK_VARBINDS: u32 = 240;
/// Repetitions per column when walking few columns.
pub const MAX_REPETITIONS: u32 = 40;
/// Rows read from one column at most (a broken agent must not loop us forever).
const MAX_ROWS: usize = 100_000;

/// GETs `oids`; the answer holds every OID the agent has a value for.
pub async fn get(session: &mut Session, oids: &[Oid]) -> Result<HashMap<Oid, Value>, SnmpError> {
    let mut out = HashMap::new();
    for chunk in oids.chunks(GET_CHUNK) {
        let mut asked: Vec<Oid> = chunk.to_vec();
        while !asked.is_empty() {
            let reply = session.request(&Request::Get(asked.clone())).await?;
            if reply.error_status == NO_SUCH_NAME && reply.error_index > 0 {
                // SNMPv1: one missing OID fails the request; ask again without it.
                asked.remove((reply.error_index as usize - 1).min(asked.len() - 1));
                continue;
            }
            if reply.error_status != 0 {
                return Err(SnmpError::Protocol(format!(
                    "the agent answered error-status {}",
                    reply.error_status
                )));
            }
            for (oid, value) in reply.varbinds {
                if value.is_present() {
                    out.insert(oid, value);
                }
            }
            break;
        }
    }
    Ok(out)
}

/// Walks each column (a subtree), returning per column its rows by index (the OID's suffix
/// below the column).
pub async fn walk_columns(
    session: &mut Session,
    columns: &[Oid],
) -> Result<Vec<BTreeMap<Oid, Value>>, SnmpError> {
    if session.auth().is_v1() {
        let mut out = Vec::with_capacity(columns.len());
        for column in columns {
            out.push(walk_getnext(session, column).await?);
        }
        return Ok(out);
    }
    let mut results = vec![BTreeMap::new(); columns.len()];
    let mut cursor: Vec<Option<Oid>> = columns.iter().cloned().map(Some).collect();
    let mut budget = BULK_VARBINDS;
    loop {
        let active: Vec<usize> = (0..columns.len())
            .filter(|&i| cursor[i].is_some())
            .collect();
        if active.is_empty() {
            break;
        }
        let repetitions = (budget / active.len() as u32).clamp(1, MAX_REPETITIONS);
        let oids = active.iter().filter_map(|&i| cursor[i].clone()).collect();
        let reply = session
            .request(&Request::GetBulk {
                oids,
                max_repetitions: repetitions,
            })
            .await?;
        if reply.error_status == TOO_BIG && budget > active.len() as u32 {
            budget /= 2;
            continue;
        }
        if reply.error_status != 0 {
            return Err(SnmpError::Protocol(format!(
                "the agent answered error-status {} to a GETBULK",
                reply.error_status
            )));
        }
        if reply.varbinds.is_empty() {
            break;
        }
        // Repetitions are interleaved: varbind k belongs to column active[k % active.len()].
        for (k, (oid, value)) in reply.varbinds.into_iter().enumerate() {
            let column = active[k % active.len()];
            let Some(previous) = &cursor[column] else {
                continue;
            };
            if value == Value::EndOfMibView
                || !is_below(&oid, &columns[column])
                || oid <= *previous
                || results[column].len() >= MAX_ROWS
            {
                cursor[column] = None;
                continue;
            }
            results[column].insert(oid[columns[column].len()..].to_vec(), value);
            cursor[column] = Some(oid);
        }
    }
    Ok(results)
}

async fn walk_getnext(
    session: &mut Session,
    column: &Oid,
) -> Result<BTreeMap<Oid, Value>, SnmpError> {
    let mut out = BTreeMap::new();
    let mut cursor = column.clone();
    while out.len() < MAX_ROWS {
        let reply = session.request(&Request::GetNext(cursor.clone())).await?;
        if reply.error_status == NO_SUCH_NAME {
            break; // v1's end of the MIB view
        }
        if reply.error_status != 0 {
            return Err(SnmpError::Protocol(format!(
                "the agent answered error-status {} to a GETNEXT",
                reply.error_status
            )));
        }
        let Some((oid, value)) = reply.varbinds.into_iter().next() else {
            break;
        };
        if value == Value::EndOfMibView || !is_below(&oid, column) || oid <= cursor {
            break;
        }
        out.insert(oid[column.len()..].to_vec(), value);
        cursor = oid;
    }
    Ok(out)
}
