//! Component API keys (`pwk_<id>_<random>`): bcrypt-hashed at rest, and a cache of verified keys
//! so that a heartbeat every 10 s from thousands of agents does not pay for bcrypt each time.
//!
//! The cache is keyed by the SHA-256 of the key, never the key. Every change of a component's
//! key or standing (rotation, approval, revocation, deletion) calls [`KeyCache::forget`], which
//! drops its entries and bumps its generation; a check that read the database before such a
//! change cannot put its stale answer back, because [`KeyCache::remember`] refuses an entry of
//! an older generation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use plantwatch_shared::api::ComponentKind;
use plantwatch_shared::{API_KEY_PREFIX, Secret};
use sha2::{Digest, Sha256};

/// bcrypt cost of API keys. Keys carry 256 random bits, so the cost guards a stolen database
/// only; checks are cached, so it is paid once per key and server start.
pub const API_KEY_BCRYPT_COST: u32 = 10;

/// A new key for component `id`.
pub fn new_key(id: i64) -> Secret {
    Secret::new(super::random_token(&format!("{API_KEY_PREFIX}{id}_")))
}

/// The component a key claims to belong to.
pub fn component_of(key: &str) -> Option<i64> {
    let (id, rest) = key.strip_prefix(API_KEY_PREFIX)?.split_once('_')?;
    if rest.is_empty() {
        return None;
    }
    id.parse().ok().filter(|id| *id > 0)
}

/// The stored form of a key, hashed on the blocking pool.
pub async fn hash_key(key: Secret) -> anyhow::Result<String> {
    Ok(
        tokio::task::spawn_blocking(move || bcrypt::hash(key.expose(), API_KEY_BCRYPT_COST))
            .await??,
    )
}

/// Who a verified key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: i64,
    pub kind: ComponentKind,
    pub name: String,
    pub approved: bool,
    pub is_local: bool,
    pub node_id: Option<i64>,
}

/// SHA-256 of a key: what the cache is keyed by.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[derive(Debug, Default)]
struct Entries {
    by_digest: HashMap<[u8; 32], Identity>,
    generations: HashMap<i64, u64>,
}

/// Verified keys in memory.
#[derive(Debug)]
pub struct KeyCache {
    entries: Mutex<Entries>,
    enabled: AtomicBool,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            entries: Mutex::default(),
            enabled: AtomicBool::new(true),
        }
    }
}

impl KeyCache {
    /// The identity of a key verified before, if it is still valid.
    pub fn get(&self, digest: &[u8; 32]) -> Option<Identity> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        self.entries.lock().ok()?.by_digest.get(digest).cloned()
    }

    /// The generation of component `id`, read before its row is.
    pub fn generation(&self, id: i64) -> u64 {
        self.entries
            .lock()
            .map(|entries| entries.generations.get(&id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Remembers a verified key, unless the component changed since `generation` was read.
    pub fn remember(&self, digest: [u8; 32], identity: Identity, generation: u64) {
        if let Ok(mut entries) = self.entries.lock()
            && entries.generations.get(&identity.id).copied().unwrap_or(0) == generation
        {
            entries.by_digest.insert(digest, identity);
        }
    }

    /// Forgets every key of component `id` at once.
    pub fn forget(&self, id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            *entries.generations.entry(id).or_default() += 1;
            entries.by_digest.retain(|_, identity| identity.id != id);
        }
    }

    /// Turns the cache off (every check then pays for bcrypt): the benchmark's baseline.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
        if !enabled && let Ok(mut entries) = self.entries.lock() {
            entries.by_digest.clear();
        }
    }
}

/// When each component was last heard from, kept in memory and written to the database in
/// batches, so that heartbeats do not each cost a write.
#[derive(Debug, Default)]
pub struct Presence {
    seen: Mutex<(HashMap<i64, i64>, HashMap<i64, i64>)>,
    versions: Mutex<HashMap<i64, String>>,
}

impl Presence {
    /// Component `id` was heard from at `now`.
    pub fn touch(&self, id: i64, now: i64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.0.insert(id, now);
            seen.1.insert(id, now);
        }
    }

    /// When component `id` was last heard from since the server started.
    pub fn last_seen(&self, id: i64) -> Option<i64> {
        self.seen.lock().ok()?.0.get(&id).copied()
    }

    /// The contacts not yet written to the database.
    pub fn take_unwritten(&self) -> Vec<(i64, i64)> {
        self.seen
            .lock()
            .map(|mut seen| seen.1.drain().collect())
            .unwrap_or_default()
    }

    /// Notes the version a component runs; true when it is not the one noted before (then
    /// worth writing down).
    pub fn version_changed(&self, id: i64, version: &str) -> bool {
        let Ok(mut versions) = self.versions.lock() else {
            return false;
        };
        if versions.get(&id).is_some_and(|known| known == version) {
            return false;
        }
        versions.insert(id, version.to_owned());
        true
    }

    /// Forgets a deleted component.
    pub fn forget(&self, id: i64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.0.remove(&id);
            seen.1.remove(&id);
        }
        if let Ok(mut versions) = self.versions.lock() {
            versions.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: i64) -> Identity {
        Identity {
            id,
            kind: ComponentKind::Agent,
            name: format!("a{id}"),
            approved: true,
            is_local: false,
            node_id: None,
        }
    }

    #[test]
    fn keys_name_their_component() {
        let key = new_key(42);
        assert!(key.expose().starts_with("pwk_42_"));
        assert_eq!(component_of(key.expose()), Some(42));
        for bad in [
            "pwk_",
            "pwk_x_abc",
            "pwk_0_abc",
            "pwk_7_",
            "pws_7_abc",
            "pwk_-1_a",
        ] {
            assert_eq!(component_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn forgetting_a_component_drops_its_keys_and_refuses_stale_checks() {
        let cache = KeyCache::default();
        let (a, b) = (digest("pwk_1_a"), digest("pwk_2_b"));
        cache.remember(a, identity(1), cache.generation(1));
        cache.remember(b, identity(2), cache.generation(2));
        assert_eq!(cache.get(&a), Some(identity(1)));

        // A check that read the row before the revocation cannot re-insert its answer.
        let read_before = cache.generation(1);
        cache.forget(1);
        assert_eq!(cache.get(&a), None);
        cache.remember(a, identity(1), read_before);
        assert_eq!(cache.get(&a), None);
        assert_eq!(cache.get(&b), Some(identity(2)), "other components stay");
        cache.remember(a, identity(1), cache.generation(1));
        assert_eq!(cache.get(&a), Some(identity(1)));

        cache.set_enabled(false);
        assert_eq!(cache.get(&b), None);
    }

    #[test]
    fn presence_keeps_the_latest_contact_and_hands_out_each_once() {
        let presence = Presence::default();
        presence.touch(1, 100);
        presence.touch(1, 110);
        presence.touch(2, 105);
        let mut unwritten = presence.take_unwritten();
        unwritten.sort();
        assert_eq!(unwritten, [(1, 110), (2, 105)]);
        assert!(presence.take_unwritten().is_empty());
        assert_eq!(presence.last_seen(1), Some(110));
        presence.forget(1);
        assert_eq!(presence.last_seen(1), None);
        assert!(presence.version_changed(2, "0.1.0"));
        assert!(!presence.version_changed(2, "0.1.0"));
        assert!(presence.version_changed(2, "0.2.0"));
    }
}
