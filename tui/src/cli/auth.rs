//! `plantwatch login`, `logout`, `whoami`, `passwd`.

use anyhow::{Context as _, bail};
use clap::Args;
use plantwatch_shared::client::normalize_url;
use plantwatch_shared::{Client, Fingerprint};
use serde::Serialize;

use super::{Session, ask, ask_new_secret, ask_secret, read_stdin_secret};
use crate::cells::time_cell;
use crate::profile::{Context, name_for_url};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server URL, e.g. https://plant1:8443 [default: the current context's].
    pub url: Option<String>,
    /// Username [default: the context's, else asked].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Trust this certificate fingerprint (as `plantwatch-server fingerprint` prints it)
    /// instead of asking.
    #[arg(long, value_name = "SHA256:…")]
    pub fingerprint: Option<Fingerprint>,
    /// Name of the context to save [default: host:port].
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the current and the new password from the first two lines of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Decides which certificate to trust for `url`, like SSH: a fingerprint given on the command
/// line, else the one already pinned, else the one the server shows, after asking.
async fn trusted_fingerprint(
    url: &str,
    given: Option<Fingerprint>,
    pinned: Option<Fingerprint>,
) -> anyhow::Result<Option<Fingerprint>> {
    if url.starts_with("http://") {
        return Ok(None);
    }
    if let Some(fingerprint) = given.or(pinned) {
        return Ok(Some(fingerprint));
    }
    let shown = Client::probe_fingerprint(url)
        .await?
        .context("the server presented no certificate")?;
    eprintln!("The server at {url} presents a certificate with fingerprint");
    eprintln!("    {shown}");
    eprintln!("Compare it with what `plantwatch-server fingerprint` prints on the server.");
    let hint = format!(
        "the server's certificate is not trusted yet and there is no terminal to ask on; \
         check it and pass --fingerprint {shown}"
    );
    let answer = ask("Trust it and continue? [yes/no] ", &hint)?;
    if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        bail!("not trusted; nothing was sent to the server");
    }
    Ok(Some(shown))
}

pub async fn login(session: &Session, args: LoginArgs) -> anyhow::Result<()> {
    let mut profiles = session.load()?;
    let selected = profiles.select(session.context.as_deref()).ok().cloned();
    let url = match (&args.url, &selected) {
        (Some(url), _) => normalize_url(url)?,
        (None, Some(context)) => context.url.clone(),
        (None, None) => bail!("give the server URL: plantwatch login https://SERVER:8443"),
    };
    let existing = profiles.by_url(&url).cloned();
    let pinned = existing.as_ref().and_then(|c| c.fingerprint);
    let fingerprint = trusted_fingerprint(&url, args.fingerprint, pinned).await?;

    let username = match args
        .user
        .or_else(|| existing.as_ref().and_then(|c| c.username.clone()))
    {
        Some(user) => user,
        None => ask("Username: ", "no --user given and no terminal to ask on")?,
    };
    let password = if args.password_stdin {
        read_stdin_secret("password")?
    } else {
        ask_secret(
            &format!("Password for {username}: "),
            "no terminal to ask for the password on; use --password-stdin",
        )?
    };
    let client = Client::new(&url, fingerprint)?.with_alternates(
        &existing
            .as_ref()
            .map(|c| c.alternates.clone())
            .unwrap_or_default(),
    )?;
    let signed_in = client.login(&username, password.expose()).await?;

    let name = args
        .name
        .or_else(|| existing.as_ref().map(|c| c.name.clone()))
        .unwrap_or_else(|| name_for_url(&url));
    let mut context = Context {
        name: name.clone(),
        url: url.clone(),
        fingerprint,
        username: Some(signed_in.user.username.clone()),
        token: Some(signed_in.token),
        alternates: existing.map(|c| c.alternates).unwrap_or_default(),
    };
    // One of an active/standby pair: remember the other server, to move to it by itself.
    if let Ok(health) = client.health().await
        && let Some(ha) = &health.ha
        && context.learn_pair(ha)
    {
        println!(
            "{url} is one of an active/standby pair; the console also knows {}.",
            context
                .alternates
                .iter()
                .map(|s| s.url.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    profiles.upsert_current(context);
    session.save(&profiles)?;
    println!(
        "Signed in to {url} as {} ({}). Context: {name}",
        signed_in.user.username, signed_in.user.role
    );
    Ok(())
}

pub async fn logout(session: &Session) -> anyhow::Result<()> {
    let mut profiles = session.load()?;
    let context = profiles.select(session.context.as_deref())?.clone();
    let Some(token) = context.token.clone() else {
        println!("Not signed in to {}.", context.name);
        return Ok(());
    };
    let client = context.client()?.with_token(token);
    match client.logout().await {
        Ok(()) => {}
        // The session had already ended on the server: forgetting it locally is all that's left.
        Err(error) if error.status() == Some(401) => {}
        Err(error) => return Err(error.into()),
    }
    if let Some(stored) = profiles
        .contexts
        .iter_mut()
        .find(|c| c.name == context.name)
    {
        stored.token = None;
    }
    session.save(&profiles)?;
    println!("Signed out of {}.", context.name);
    Ok(())
}

#[derive(Serialize)]
struct WhoAmI {
    context: String,
    url: String,
    #[serde(flatten)]
    me: plantwatch_shared::api::Me,
}

pub async fn whoami(session: &Session) -> anyhow::Result<()> {
    let (context, client) = session.client()?;
    let me = client.me().await?;
    let row = vec![
        me.user.username.clone(),
        me.user.role.to_string(),
        context.name.clone(),
        context.url.clone(),
        time_cell(Some(me.session.expires_at)),
    ];
    let value = WhoAmI {
        context: context.name,
        url: context.url,
        me,
    };
    session.print(
        &value,
        &["USER", "ROLE", "CONTEXT", "SERVER", "SESSION EXPIRES"],
        vec![row],
    )
}

pub async fn passwd(session: &Session, args: PasswdArgs) -> anyhow::Result<()> {
    let (_, client) = session.client()?;
    let (current, new) = if args.password_stdin {
        (
            read_stdin_secret("current password")?,
            read_stdin_secret("new password")?,
        )
    } else {
        let hint = "no terminal to ask on; use --password-stdin";
        let current = ask_secret("Current password: ", hint)?;
        (current, ask_new_secret("New password", hint)?)
    };
    client
        .change_password(current.expose(), new.expose())
        .await?;
    println!("Password changed. Your other sessions have been signed out.");
    Ok(())
}
