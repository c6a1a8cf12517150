//! One SNMP conversation with one device, with what snmp2 leaves to the caller: a timeout and
//! retries on every request, a fresh socket after a timeout (a late reply would otherwise be
//! read as the answer to the next request), v3 engine discovery and its "repeat the request",
//! and a shared limit on requests in flight. Replies are copied out of the session's buffer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plantwatch_shared::api::{AuthProtocol, CredentialKind, PrivProtocol, TargetCredential};
use snmp2::AsyncSession;
use snmp2::v3::{self, Security};
use tokio::sync::Semaphore;

use super::decode::{Oid, Value};

/// SNMP error-status tooBig: the answer would not fit in one datagram.
pub const TOO_BIG: u32 = 1;
/// SNMPv1 error-status noSuchName.
pub const NO_SUCH_NAME: u32 = 2;

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnmpError {
    /// No answer within the timeout, after every retry (a wrong v1/v2c community looks the
    /// same: the agent drops the request).
    #[error("no answer (timeout)")]
    Timeout,
    /// The agent answered but refused the v3 user or its keys.
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("{0}")]
    Protocol(String),
    #[error("the credential is not usable: {0}")]
    Credential(String),
}

/// How the session authenticates.
#[derive(Clone)]
pub enum Auth {
    V1(Vec<u8>),
    V2c(Vec<u8>),
    V3(Box<Security>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::V1(_) => "V1(***)",
            Auth::V2c(_) => "V2c(***)",
            Auth::V3(_) => "V3(***)",
        })
    }
}

impl Auth {
    /// The session parameters of a credential from the configuration.
    pub fn from_credential(credential: &TargetCredential) -> Result<Auth, SnmpError> {
        let secret = |field: &str| {
            credential
                .secrets
                .get(field)
                .map(|s| s.expose().as_bytes().to_vec())
        };
        match credential.kind {
            CredentialKind::SnmpV1 | CredentialKind::SnmpV2c => {
                let community = secret("community")
                    .ok_or_else(|| SnmpError::Credential("it has no community".into()))?;
                Ok(if credential.kind == CredentialKind::SnmpV1 {
                    Auth::V1(community)
                } else {
                    Auth::V2c(community)
                })
            }
            CredentialKind::SnmpV3 => {
                let params = &credential.params;
                let user = params
                    .username
                    .as_deref()
                    .ok_or_else(|| SnmpError::Credential("it has no user name".into()))?;
                let auth_password = secret("auth_password").unwrap_or_default();
                let mut security = Security::new(user.as_bytes(), &auth_password);
                security = match params.auth_protocol {
                    None => security.with_auth(v3::Auth::NoAuthNoPriv),
                    Some(protocol) => {
                        let protocol = match protocol {
                            AuthProtocol::Md5 => v3::AuthProtocol::Md5,
                            AuthProtocol::Sha1 => v3::AuthProtocol::Sha1,
                            AuthProtocol::Sha224 => v3::AuthProtocol::Sha224,
                            AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
                            AuthProtocol::Sha384 => v3::AuthProtocol::Sha384,
                            AuthProtocol::Sha512 => v3::AuthProtocol::Sha512,
                        };
                        let auth = match params.priv_protocol {
                            None => v3::Auth::AuthNoPriv,
                            Some(privacy) => v3::Auth::AuthPriv {
                                cipher: match privacy {
                                    PrivProtocol::Des => v3::Cipher::Des,
                                    PrivProtocol::Aes128 => v3::Cipher::Aes128,
                                    PrivProtocol::Aes192 => v3::Cipher::Aes192,
                                    PrivProtocol::Aes256 => v3::Cipher::Aes256,
                                },
                                privacy_password: secret("priv_password").unwrap_or_default(),
                            },
                        };
                        let mut security = security.with_auth_protocol(protocol).with_auth(auth);
                        // AES-192/256 keys are longer than short digests give: net-snmp
                        // extends them the Reeder way.
                        if matches!(
                            params.priv_protocol,
                            Some(PrivProtocol::Aes192 | PrivProtocol::Aes256)
                        ) {
                            security = security.with_key_extension_method(v3::KeyExtension::Reeder);
                        }
                        security
                    }
                };
                if let Some(context) = &params.context {
                    security = security.with_context_name(context);
                }
                Ok(Auth::V3(Box::new(security)))
            }
            _ => Err(SnmpError::Credential("it is not an SNMP credential".into())),
        }
    }

    pub fn is_v1(&self) -> bool {
        matches!(self, Auth::V1(_))
    }
}

/// A reply, owned.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub error_status: u32,
    pub error_index: u32,
    pub varbinds: Vec<(Oid, Value)>,
}

/// What to ask.
#[derive(Debug, Clone)]
pub enum Request {
    Get(Vec<Oid>),
    GetNext(Oid),
    GetBulk {
        oids: Vec<Oid>,
        max_repetitions: u32,
    },
}

/// Timeouts, retries and the shared in-flight limit.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    pub retries: u32,
    pub in_flight: Arc<Semaphore>,
}

/// One device, one credential, one socket at a time.
pub struct Session {
    addr: SocketAddr,
    auth: Auth,
    limits: Limits,
    /// Boxed: a session is large.
    inner: Option<Box<AsyncSession>>,
    /// Requests sent, for the poll statistics.
    pub requests: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.addr)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn to_oid(oid: &[u64]) -> Result<snmp2::Oid<'static>, SnmpError> {
    snmp2::Oid::from(oid).map_err(|e| SnmpError::Protocol(format!("bad OID: {e:?}")))
}

fn owned(pdu: snmp2::Pdu<'_>) -> Reply {
    Reply {
        error_status: pdu.error_status,
        error_index: pdu.error_index,
        varbinds: pdu
            .varbinds
            .map(|(oid, value)| {
                (
                    oid.iter().map(Iterator::collect).unwrap_or_default(),
                    Value::from_snmp(&value),
                )
            })
            .collect(),
    }
}

fn classify(error: snmp2::Error) -> SnmpError {
    match error {
        snmp2::Error::AuthFailure(kind) => SnmpError::Auth(kind.to_string()),
        snmp2::Error::CommunityMismatch => SnmpError::Auth("community mismatch".into()),
        other => SnmpError::Protocol(other.to_string()),
    }
}

impl Session {
    pub fn new(addr: SocketAddr, auth: Auth, limits: Limits) -> Session {
        Session {
            addr,
            auth,
            limits,
            inner: None,
            requests: 0,
        }
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Closes the socket between polls (its two 64 KiB buffers would otherwise stay allocated
    /// per target); kept for v3, whose engine discovery would have to be repeated.
    pub fn release(&mut self) {
        if !matches!(self.auth, Auth::V3(_)) {
            self.inner = None;
        }
    }

    async fn open(&mut self) -> Result<&mut AsyncSession, SnmpError> {
        if self.inner.is_none() {
            let req_id = rand::random::<u16>() as i32;
            let io = |e: std::io::Error| SnmpError::Protocol(format!("socket: {e}"));
            let mut session = match &self.auth {
                Auth::V1(community) => AsyncSession::new_v1(self.addr, community, req_id)
                    .await
                    .map_err(io)?,
                Auth::V2c(community) => AsyncSession::new_v2c(self.addr, community, req_id)
                    .await
                    .map_err(io)?,
                Auth::V3(security) => AsyncSession::new_v3(self.addr, req_id, (**security).clone())
                    .await
                    .map_err(io)?,
            };
            if matches!(self.auth, Auth::V3(_)) {
                self.requests += 1;
                session.init().await.map_err(classify)?;
            }
            self.inner = Some(Box::new(session));
        }
        self.inner
            .as_deref_mut()
            .ok_or_else(|| SnmpError::Protocol("no session".into()))
    }

    async fn once(&mut self, request: &Request) -> Result<Reply, SnmpError> {
        let session = self.open().await?;
        // v3: the first request after engine discovery may only update the time window.
        for _ in 0..2 {
            let result = match request {
                Request::Get(oids) => {
                    let oids = oids
                        .iter()
                        .map(|o| to_oid(o))
                        .collect::<Result<Vec<_>, _>>()?;
                    let refs: Vec<&snmp2::Oid<'_>> = oids.iter().collect();
                    session.get_many(&refs).await.map(owned)
                }
                Request::GetNext(oid) => session.getnext(&to_oid(oid)?).await.map(owned),
                Request::GetBulk {
                    oids,
                    max_repetitions,
                } => {
                    let oids = oids
                        .iter()
                        .map(|o| to_oid(o))
                        .collect::<Result<Vec<_>, _>>()?;
                    let refs: Vec<&snmp2::Oid<'_>> = oids.iter().collect();
                    session.getbulk(&refs, 0, *max_repetitions).await.map(owned)
                }
            };
            match result {
                Err(snmp2::Error::AuthUpdated) => continue,
                other => return other.map_err(classify),
            }
        }
        Err(SnmpError::Protocol(
            "the agent kept updating the security context".into(),
        ))
    }

    /// Sends `request`, retrying on timeouts; at most `limits.in_flight` requests of all
    /// sessions are outstanding at once.
    pub async fn request(&mut self, request: &Request) -> Result<Reply, SnmpError> {
        let mut last = SnmpError::Timeout;
        for _ in 0..=self.limits.retries {
            let in_flight = self.limits.in_flight.clone();
            let Ok(_permit) = in_flight.acquire_owned().await else {
                return Err(SnmpError::Protocol("the collector is stopping".into()));
            };
            self.requests += 1;
            let timeout = self.limits.timeout;
            match tokio::time::timeout(timeout, self.once(request)).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(error @ (SnmpError::Auth(_) | SnmpError::Credential(_)))) => {
                    self.inner = None;
                    return Err(error);
                }
                Ok(Err(error)) => {
                    // A reply for an earlier request, or garbage: start a clean socket.
                    self.inner = None;
                    last = error;
                }
                Err(_) => {
                    self.inner = None;
                    last = SnmpError::Timeout;
                }
            }
        }
        Err(last)
    }
}
