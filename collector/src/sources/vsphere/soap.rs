//! The vSphere Web Services (SOAP) calls a poll needs, over HTTPS with rustls: the service
//! content, login (one session per vCenter, found expired and renewed), a container view, the
//! property collector paged (`RetrievePropertiesEx`, `ContinueRetrievePropertiesEx`), the
//! performance counters and `QueryPerf`. Every call has a timeout; at most two are in flight
//! to one vCenter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plantwatch_shared::{Fingerprint, Secret};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use tokio::sync::Semaphore;

use super::xml::{self, Element, escape};

/// Calls to one vCenter in flight at once.
pub const MAX_IN_FLIGHT: usize = 2;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SoapError {
    /// No answer: the connection, TLS, or the timeout.
    #[error("{0}")]
    Transport(String),
    /// The user name or password was refused.
    #[error("the vCenter refused the login for {0:?}: wrong user name or password")]
    InvalidLogin(String),
    /// The session is gone (expired, logged out, the vCenter restarted).
    #[error("the vCenter session expired")]
    NotAuthenticated,
    /// Any other SOAP fault.
    #[error("the vCenter answered with a fault: {0}")]
    Fault(String),
    /// An answer that is not what the call returns.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// A managed object reference: its type and id (`HostSystem`, `host-21`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MoRef {
    pub kind: String,
    pub id: String,
}

impl MoRef {
    pub fn new(kind: &str, id: &str) -> MoRef {
        MoRef {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }
    }

    fn of(element: &Element) -> Option<MoRef> {
        Some(MoRef {
            kind: element.kind.clone()?,
            id: element.text.trim().to_owned(),
        })
    }

    /// As an element named `name`.
    fn xml(&self, name: &str) -> String {
        format!(
            "<{name} type=\"{}\">{}</{name}>",
            escape(&self.kind),
            escape(&self.id)
        )
    }
}

/// What `RetrieveServiceContent` names.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceContent {
    pub root_folder: MoRef,
    pub property_collector: MoRef,
    pub view_manager: MoRef,
    pub session_manager: MoRef,
    pub perf_manager: Option<MoRef>,
    /// `about.fullName`.
    pub about: String,
}

/// One object of a property collector's answer: its reference and its properties by path.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectContent {
    pub obj: MoRef,
    pub props: Vec<(String, Element)>,
}

impl ObjectContent {
    /// A property's value element.
    pub fn prop(&self, path: &str) -> Option<&Element> {
        self.props.iter().find(|(p, _)| p == path).map(|(_, v)| v)
    }

    /// A property's text.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.prop(path).map(|v| v.text.as_str())
    }
}

/// How to reach a vCenter and whom to log in as.
#[derive(Clone)]
pub struct Endpoint {
    /// `https://host[:port]/sdk`.
    pub url: String,
    pub username: String,
    pub password: Secret,
    /// The certificate trusted whoever issued it; `None`: the collector's trusted roots.
    pub pin: Option<Fingerprint>,
    /// Wait for one call's answer.
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The SDK URL of a node's address: `host`, `host:port` or a whole URL.
pub fn sdk_url(address: &str) -> String {
    let address = address.trim().trim_end_matches('/');
    if address.starts_with("https://") || address.starts_with("http://") {
        if address.ends_with("/sdk") {
            address.to_owned()
        } else {
            format!("{address}/sdk")
        }
    } else if address.contains(':')
        && !address.starts_with('[')
        && address.parse::<std::net::Ipv6Addr>().is_ok()
    {
        format!("https://[{address}]/sdk")
    } else {
        format!("https://{address}/sdk")
    }
}

/// A session with one vCenter.
pub struct Session {
    endpoint: Endpoint,
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
    /// `vmware_soap_session=…` once logged in.
    cookie: Mutex<Option<String>>,
    content: Mutex<Option<ServiceContent>>,
    /// The performance counters' keys by `group.name.rollup`, read once: a vCenter numbers
    /// its counters once and for all, and the list is long (hundreds of counters).
    counters: Mutex<Option<HashMap<String, i32>>>,
}

impl Session {
    pub fn new(endpoint: Endpoint) -> Result<Session, SoapError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SoapError::Transport(e.to_string()))?;
        let config = match &endpoint.pin {
            Some(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(plantwatch_shared::client::pinned_verifier(*pin))
                .with_no_client_auth(),
            None => builder
                .with_root_certificates(plantwatch_shared::client::system_roots())
                .with_no_client_auth(),
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .connect_timeout(endpoint.timeout)
            .timeout(endpoint.timeout)
            .user_agent(concat!("plantwatch-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SoapError::Transport(e.to_string()))?;
        Ok(Session {
            endpoint,
            http,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            cookie: Mutex::new(None),
            content: Mutex::new(None),
            counters: Mutex::new(None),
        })
    }

    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// Whether a session cookie is held.
    pub fn logged_in(&self) -> bool {
        self.cookie.lock().is_ok_and(|c| c.is_some())
    }

    /// Forgets the session, as after the vCenter said it expired.
    pub fn forget(&self) {
        if let Ok(mut cookie) = self.cookie.lock() {
            *cookie = None;
        }
    }

    /// One SOAP call: `body` is the element inside `<soapenv:Body>`; answers the element
    /// inside the answer's body.
    async fn call(&self, body: &str) -> Result<Element, SoapError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| SoapError::Transport("closed".into()))?;
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
        );
        let mut request = self
            .http
            .post(&self.endpoint.url)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", "urn:vim25/6.5")
            .body(envelope);
        let cookie = self.cookie.lock().ok().and_then(|c| c.clone());
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.map_err(|e| {
            SoapError::Transport(format!(
                "cannot reach {}: {}",
                self.endpoint.url,
                plantwatch_shared::client::error_chain(&e)
            ))
        })?;
        if let Some(set) = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("vmware_soap_session"))
        {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            if let Ok(mut cookie) = self.cookie.lock() {
                *cookie = Some(pair);
            }
        }
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            SoapError::Transport(format!("reading the answer of {}: {e}", self.endpoint.url))
        })?;
        let root = xml::parse(&text)
            .map_err(|e| SoapError::Decode(format!("HTTP {status} and no SOAP answer ({e})")))?;
        let body = root
            .find("Body")
            .ok_or_else(|| SoapError::Decode(format!("HTTP {status} and no SOAP body")))?;
        if let Some(fault) = body.child("Fault") {
            return Err(fault_of(fault));
        }
        body.children
            .first()
            .cloned()
            .ok_or_else(|| SoapError::Decode("an empty SOAP body".into()))
    }

    /// The service content, asked for once per session object.
    pub async fn content(&self) -> Result<ServiceContent, SoapError> {
        if let Some(content) = self.content.lock().ok().and_then(|c| c.clone()) {
            return Ok(content);
        }
        let answer = self
            .call("<RetrieveServiceContent xmlns=\"urn:vim25\"><_this type=\"ServiceInstance\">ServiceInstance</_this></RetrieveServiceContent>")
            .await?;
        let value = answer
            .child("returnval")
            .ok_or_else(|| SoapError::Decode("no service content".into()))?;
        let reference = |name: &str| {
            value
                .child(name)
                .and_then(MoRef::of)
                .ok_or_else(|| SoapError::Decode(format!("the service content names no {name}")))
        };
        let content = ServiceContent {
            root_folder: reference("rootFolder")?,
            property_collector: reference("propertyCollector")?,
            view_manager: reference("viewManager")?,
            session_manager: reference("sessionManager")?,
            perf_manager: value.child("perfManager").and_then(MoRef::of),
            about: value
                .text_at("about/fullName")
                .unwrap_or_default()
                .to_owned(),
        };
        if let Ok(mut held) = self.content.lock() {
            *held = Some(content.clone());
        }
        Ok(content)
    }

    /// Logs in unless a session is held.
    pub async fn ensure_login(&self) -> Result<(), SoapError> {
        if self.logged_in() {
            return Ok(());
        }
        let content = self.content().await?;
        let body = format!(
            "<Login xmlns=\"urn:vim25\">{}<userName>{}</userName><password>{}</password></Login>",
            content.session_manager.xml("_this"),
            escape(&self.endpoint.username),
            escape(self.endpoint.password.expose()),
        );
        match self.call(&body).await {
            Ok(_) if self.logged_in() => Ok(()),
            Ok(_) => Err(SoapError::Decode("the login set no session cookie".into())),
            Err(SoapError::Fault(text)) if text.contains("InvalidLogin") => {
                Err(SoapError::InvalidLogin(self.endpoint.username.clone()))
            }
            Err(error) => Err(error),
        }
    }

    /// Logs out (best effort) and forgets the session.
    pub async fn logout(&self) {
        if !self.logged_in() {
            return;
        }
        if let Ok(content) = self.content().await {
            let body = format!(
                "<Logout xmlns=\"urn:vim25\">{}</Logout>",
                content.session_manager.xml("_this")
            );
            let _ = self.call(&body).await;
        }
        self.forget();
    }

    /// A container view of every object of `kinds` under the root folder.
    pub async fn container_view(&self, kinds: &[&str]) -> Result<MoRef, SoapError> {
        let content = self.content().await?;
        let types: String = kinds.iter().map(|k| format!("<type>{k}</type>")).collect();
        let body = format!(
            "<CreateContainerView xmlns=\"urn:vim25\">{}{}{types}<recursive>true</recursive></CreateContainerView>",
            content.view_manager.xml("_this"),
            content.root_folder.xml("container"),
        );
        let answer = self.call(&body).await?;
        answer
            .child("returnval")
            .and_then(MoRef::of)
            .ok_or_else(|| SoapError::Decode("CreateContainerView returned no view".into()))
    }

    /// Destroys a view (best effort).
    pub async fn destroy_view(&self, view: &MoRef) {
        let body = format!(
            "<DestroyView xmlns=\"urn:vim25\">{}</DestroyView>",
            view.xml("_this")
        );
        let _ = self.call(&body).await;
    }

    /// The properties `paths` of every object of `kind` (a type and its paths) in `view`,
    /// `page` objects per answer, following the tokens to the end.
    pub async fn retrieve_view(
        &self,
        view: &MoRef,
        specs: &[(&str, &[&str])],
        page: u32,
    ) -> Result<Vec<ObjectContent>, SoapError> {
        let object_set = format!(
            "<objectSet>{}<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>",
            view.xml("obj")
        );
        self.retrieve(specs, &object_set, page).await
    }

    /// The properties `paths` of one object.
    pub async fn retrieve_one(
        &self,
        obj: &MoRef,
        paths: &[&str],
    ) -> Result<Option<ObjectContent>, SoapError> {
        let object_set = format!(
            "<objectSet>{}<skip>false</skip></objectSet>",
            obj.xml("obj")
        );
        let mut found = self
            .retrieve(&[(obj.kind.as_str(), paths)], &object_set, 100)
            .await?;
        Ok(found.pop())
    }

    async fn retrieve(
        &self,
        specs: &[(&str, &[&str])],
        object_set: &str,
        page: u32,
    ) -> Result<Vec<ObjectContent>, SoapError> {
        let content = self.content().await?;
        let prop_sets: String = specs
            .iter()
            .map(|(kind, paths)| {
                let paths: String = paths
                    .iter()
                    .map(|p| format!("<pathSet>{p}</pathSet>"))
                    .collect();
                format!("<propSet><type>{kind}</type>{paths}</propSet>")
            })
            .collect();
        let body = format!(
            "<RetrievePropertiesEx xmlns=\"urn:vim25\">{}<specSet>{prop_sets}{object_set}</specSet><options><maxObjects>{page}</maxObjects></options></RetrievePropertiesEx>",
            content.property_collector.xml("_this"),
        );
        let mut found = Vec::new();
        let mut answer = self.call(&body).await?;
        // No `returnval` at all: no objects.
        while let Some(result) = answer.child("returnval") {
            found.extend(result.all("objects").filter_map(object_content));
            let token = result.text_at("token").map(str::trim).unwrap_or_default();
            if token.is_empty() {
                break;
            }
            let body = format!(
                "<ContinueRetrievePropertiesEx xmlns=\"urn:vim25\">{}<token>{}</token></ContinueRetrievePropertiesEx>",
                content.property_collector.xml("_this"),
                escape(token)
            );
            answer = self.call(&body).await?;
        }
        Ok(found)
    }

    /// The performance counters' keys by `group.name.rollup` (`cpu.usage.average`), asked for
    /// once per session object.
    pub async fn counters(&self) -> Result<HashMap<String, i32>, SoapError> {
        if let Some(counters) = self.counters.lock().ok().and_then(|c| c.clone()) {
            return Ok(counters);
        }
        let mut counters = HashMap::new();
        if let Some(perf) = self.content().await?.perf_manager
            && let Some(found) = self.retrieve_one(&perf, &["perfCounter"]).await?
        {
            for info in found
                .prop("perfCounter")
                .map(|v| v.children.as_slice())
                .unwrap_or_default()
            {
                let name = format!(
                    "{}.{}.{}",
                    info.text_at("groupInfo/key").unwrap_or_default(),
                    info.text_at("nameInfo/key").unwrap_or_default(),
                    info.text_at("rollupType").unwrap_or_default()
                );
                if let Some(key) = info.text_at("key").and_then(|k| k.trim().parse().ok()) {
                    counters.insert(name, key);
                }
            }
        }
        if let Ok(mut held) = self.counters.lock() {
            *held = Some(counters.clone());
        }
        Ok(counters)
    }

    /// `QueryPerf` of the latest real-time sample (20 s) of `counters` for `entities`:
    /// (entity id, counter id, value).
    pub async fn query_perf(
        &self,
        entities: &[MoRef],
        counters: &[i32],
    ) -> Result<Vec<(String, i32, i64)>, SoapError> {
        let content = self.content().await?;
        let Some(perf) = content.perf_manager else {
            return Ok(Vec::new());
        };
        let metric_ids: String = counters
            .iter()
            .map(|c| {
                format!("<metricId><counterId>{c}</counterId><instance></instance></metricId>")
            })
            .collect();
        let specs: String = entities
            .iter()
            .map(|e| {
                format!(
                    "<querySpec>{}<maxSample>1</maxSample>{metric_ids}<intervalId>20</intervalId></querySpec>",
                    e.xml("entity")
                )
            })
            .collect();
        let body = format!(
            "<QueryPerf xmlns=\"urn:vim25\">{}{specs}</QueryPerf>",
            perf.xml("_this")
        );
        let answer = self.call(&body).await?;
        let mut values = Vec::new();
        for metric in answer.all("returnval") {
            let Some(entity) = metric.child("entity") else {
                continue;
            };
            for series in metric.all("value") {
                let Some(counter) = series
                    .text_at("id/counterId")
                    .and_then(|c| c.trim().parse().ok())
                else {
                    continue;
                };
                let newest = series
                    .all("value")
                    .filter_map(|v| v.text.trim().parse::<i64>().ok())
                    .last();
                if let Some(value) = newest.filter(|v| *v >= 0) {
                    values.push((entity.text.trim().to_owned(), counter, value));
                }
            }
        }
        Ok(values)
    }
}

fn object_content(objects: &Element) -> Option<ObjectContent> {
    let obj = MoRef::of(objects.child("obj")?)?;
    let props = objects
        .all("propSet")
        .filter_map(|p| Some((p.text_at("name")?.to_owned(), p.child("val")?.clone())))
        .collect();
    Some(ObjectContent { obj, props })
}

fn fault_of(fault: &Element) -> SoapError {
    let text = fault
        .text_at("faultstring")
        .unwrap_or_default()
        .trim()
        .to_owned();
    // The fault's type: the detail's first element, or its xsi:type.
    let detail = fault
        .child("detail")
        .and_then(|d| d.children.first())
        .map(|d| d.kind.clone().unwrap_or_else(|| d.name.clone()))
        .unwrap_or_default();
    if detail.contains("NotAuthenticated") {
        SoapError::NotAuthenticated
    } else {
        SoapError::Fault(
            format!("{detail}: {text}")
                .trim_start_matches(": ")
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_sdk_urls() {
        assert_eq!(sdk_url("vc01.plant"), "https://vc01.plant/sdk");
        assert_eq!(sdk_url("127.0.0.1:8989"), "https://127.0.0.1:8989/sdk");
        assert_eq!(sdk_url("https://vc01/sdk"), "https://vc01/sdk");
        assert_eq!(sdk_url("https://vc01:443/"), "https://vc01:443/sdk");
        assert_eq!(sdk_url("fe80::1"), "https://[fe80::1]/sdk");
    }

    #[test]
    fn faults_are_told_apart() {
        let fault = xml::parse(
            r#"<Fault><faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated.</faultstring>
               <detail><NotAuthenticatedFault xmlns:xsi="x" xsi:type="NotAuthenticated"><object type="Folder">group-d1</object></NotAuthenticatedFault></detail></Fault>"#,
        )
        .unwrap();
        assert_eq!(
            fault_of(fault.child("Fault").unwrap()),
            SoapError::NotAuthenticated
        );
        let fault = xml::parse(
            r#"<Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring>
               <detail><InvalidLoginFault xmlns:xsi="x" xsi:type="InvalidLogin"/></detail></Fault>"#,
        )
        .unwrap();
        assert_eq!(
            fault_of(fault.child("Fault").unwrap()),
            SoapError::Fault("InvalidLogin: Login failure".into())
        );
    }
}
