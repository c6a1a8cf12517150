//! Webhook channel: the notification as a JSON body, POSTed, signed with HMAC-SHA256 of the
//! body under the channel's `hmac_key` in the `x-plantwatch-signature` header.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use plantwatch_shared::Secret;
use plantwatch_shared::api::{ChannelSettings, Notification, SIGNATURE_HEADER};
use sha2::Sha256;

/// `sha256=` and the hex HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub async fn send(
    settings: &ChannelSettings,
    secrets: &BTreeMap<String, Secret>,
    notification: &Notification,
    timeout: Duration,
) -> Result<(), String> {
    let url = settings.url.as_deref().ok_or("the channel has no url")?;
    let body = serde_json::to_vec(notification).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("plantwatch/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(key) = secrets.get("hmac_key") {
        request = request.header(SIGNATURE_HEADER, signature(key.expose().as_bytes(), &body));
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("POST {url} answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
