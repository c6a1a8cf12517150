//! The client's own configuration: server profiles ("contexts") with their pinned certificate
//! fingerprints and session tokens, in `$XDG_CONFIG_HOME/plantwatch/config.toml` (mode 0600,
//! its folder 0700), so one console can switch between sites.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use plantwatch_shared::api::ha::ServerAddress;
use plantwatch_shared::{Client, Fingerprint, Secret};
use serde::{Deserialize, Serialize};

/// One server profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// The other servers of an active/standby pair, learnt from the server: the console
    /// moves to one of them when this one fails or is the standby.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<ServerAddress>,
}

impl Context {
    /// A client for this context's server (and the rest of its pair), without a token.
    pub fn client(&self) -> plantwatch_shared::Result<Client> {
        Client::new(&self.url, self.fingerprint)?.with_alternates(&self.alternates)
    }

    /// Records the pair `ha` describes; whether anything changed.
    pub fn learn_pair(&mut self, ha: &plantwatch_shared::api::ha::HaHealth) -> bool {
        let alternates = ha.others_than(&self.url);
        let changed = alternates != self.alternates;
        self.alternates = alternates;
        changed
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default, rename = "context")]
    pub contexts: Vec<Context>,
}

/// Where the file lives: `$XDG_CONFIG_HOME/plantwatch/config.toml`, else under `~/.config`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("plantwatch").join("config.toml"))
}

impl Profiles {
    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("parsing the client configuration {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profiles::default()),
            Err(e) => Err(e)
                .with_context(|| format!("reading the client configuration {}", path.display())),
        }
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .ok_or_else(|| anyhow!("no folder for {}", path.display()))?;
        if !dir.exists() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("restricting {}", dir.display()))?;
        }
        let text = toml::to_string_pretty(self).context("encoding the client configuration")?;
        let temp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("writing {}", temp.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    /// A context by name.
    pub fn get(&self, name: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// The context named `name`, or the current one.
    pub fn select(&self, name: Option<&str>) -> anyhow::Result<&Context> {
        let name = match name.or(self.current.as_deref()) {
            Some(name) => name,
            None => bail!(
                "no server selected: log in first with `plantwatch login https://SERVER:8443`"
            ),
        };
        self.get(name).ok_or_else(|| {
            anyhow!("there is no context {name:?}; `plantwatch context list` shows them")
        })
    }

    /// The context for `url`, if one exists.
    pub fn by_url(&self, url: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.url == url)
    }

    /// Adds or replaces the context of the same name and makes it current.
    pub fn upsert_current(&mut self, context: Context) {
        self.current = Some(context.name.clone());
        match self.contexts.iter_mut().find(|c| c.name == context.name) {
            Some(existing) => *existing = context,
            None => self.contexts.push(context),
        }
    }

    /// Makes `name` current.
    pub fn use_context(&mut self, name: &str) -> anyhow::Result<()> {
        if self.get(name).is_none() {
            bail!("there is no context {name:?}; `plantwatch context list` shows them");
        }
        self.current = Some(name.to_owned());
        Ok(())
    }

    /// Removes `name`; if it was current, none is.
    pub fn remove(&mut self, name: &str) -> anyhow::Result<Context> {
        let index = self
            .contexts
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| anyhow!("there is no context {name:?}"))?;
        if self.current.as_deref() == Some(name) {
            self.current = None;
        }
        Ok(self.contexts.remove(index))
    }
}

/// A context name for a server URL: its host and port.
pub fn name_for_url(url: &str) -> String {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(name: &str) -> Context {
        Context {
            name: name.into(),
            url: format!("https://{name}:8443"),
            fingerprint: Some(Fingerprint::of_der(name.as_bytes())),
            username: Some("ana".into()),
            token: Some("pws_secret".into()),
            alternates: Vec::new(),
        }
    }

    #[test]
    fn saves_privately_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plantwatch").join("config.toml");
        let mut profiles = Profiles::default();
        profiles.upsert_current(context("plant1"));
        profiles.upsert_current(context("plant2"));
        profiles.save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(Profiles::load(&path).unwrap(), profiles);
    }

    #[test]
    fn removing_the_current_context_leaves_none_current() {
        let mut profiles = Profiles::default();
        profiles.upsert_current(context("plant1"));
        profiles.upsert_current(context("plant2"));
        profiles.use_context("plant1").unwrap();
        profiles.remove("plant1").unwrap();
        assert_eq!(profiles.current, None);
        assert!(profiles.select(None).is_err());
        assert!(profiles.use_context("nope").is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        assert!(!format!("{:?}", context("p")).contains("pws_secret"));
    }

    #[test]
    fn context_names_come_from_host_and_port() {
        assert_eq!(name_for_url("https://plant1:8443"), "plant1:8443");
    }
}
