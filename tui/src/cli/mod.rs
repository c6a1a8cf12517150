//! The scripted subcommands of `plantwatch`. Exit codes: 0 ok, 1 failure, 2 usage, 3 partial.

pub mod alerts;
pub mod auth;
pub mod checks;
pub mod components;
pub mod context;
pub mod credentials;
pub mod discovery;
pub mod event_rules;
pub mod events;
pub mod ldap;
pub mod metrics;
pub mod nodes;
pub mod output;
pub mod sites;
pub mod templates;
pub mod topology;
pub mod users;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use plantwatch_shared::api::ComponentKind;
use plantwatch_shared::{Client, Secret};

use crate::profile::{self, Context, Profiles};
use plantwatch_shared::api::ErrorCode;

/// Command line of `plantwatch`.
#[derive(Debug, Parser)]
#[command(
    name = "plantwatch",
    version,
    about = "plantwatch: terminal-first infrastructure monitoring for OT sites.",
    after_help = "Without a subcommand, plantwatch opens the console for the current context."
)]
pub struct Cli {
    /// Output format of listings.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t)]
    pub output: output::Format,
    /// Use this context instead of the current one.
    #[arg(long, global = true, env = "PLANTWATCH_CONTEXT")]
    pub context: Option<String>,
    /// Client configuration file [default: $XDG_CONFIG_HOME/plantwatch/config.toml].
    #[arg(
        long,
        global = true,
        env = "PLANTWATCH_CLIENT_CONFIG",
        value_name = "FILE"
    )]
    pub client_config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to a server and save it as a context.
    Login(auth::LoginArgs),
    /// End the session of the current context.
    Logout,
    /// Show who you are signed in as.
    Whoami,
    /// Change your own password.
    Passwd(auth::PasswdArgs),
    /// Sign-in through the plant's directory, LDAP or Active Directory (admins).
    #[command(subcommand)]
    Ldap(ldap::LdapCommand),
    /// List, switch and remove server contexts.
    #[command(subcommand)]
    Context(context::ContextCommand),
    /// Manage users (admins).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// List, create, change, delete, import and export nodes.
    #[command(subcommand)]
    Nodes(nodes::NodesCommand),
    /// A node's service checks: TLS certificates, HTTP(S) pages, TCP ports.
    #[command(subcommand)]
    Checks(checks::ChecksCommand),
    /// The certificates the TLS checks found, soonest expiry first.
    #[command(subcommand)]
    Certs(checks::CertsCommand),
    /// The SNMP traps and syslog messages the collectors received.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Which traps and syslog messages open an alert, and what clears it.
    #[command(subcommand)]
    EventRules(event_rules::EventRulesCommand),
    /// The links LLDP and CDP show between the nodes, and the neighbours not monitored.
    #[command(subcommand)]
    Topology(topology::TopologyCommand),
    /// A node's series and their values over time, for scripts.
    #[command(subcommand)]
    Metrics(metrics::MetricsCommand),
    /// Every saved site at once: status side by side, and their active alerts merged.
    #[command(subcommand)]
    Sites(sites::SitesCommand),
    /// The device templates and Modbus profiles: list them, load dropped-in files again.
    #[command(subcommand)]
    Templates(templates::TemplatesCommand),
    /// Manage the credentials vault and attach credentials to nodes.
    #[command(subcommand)]
    Credentials(credentials::CredentialsCommand),
    /// Create, list and revoke enrollment tokens and their join codes (admins).
    #[command(subcommand)]
    Tokens(components::TokensCommand),
    /// List, approve, revoke and delete collectors; set their event receivers.
    #[command(subcommand)]
    Collectors(components::ComponentsCommand),
    /// List, approve, revoke and delete agents.
    #[command(subcommand)]
    Agents(components::ComponentsCommand),
    /// List, show, acknowledge and unacknowledge alerts.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// List, create, tune, disable and delete alert rules.
    #[command(subcommand)]
    Rules(alerts::RulesCommand),
    /// Create, list and end maintenance windows.
    #[command(subcommand)]
    Maintenance(alerts::MaintenanceCommand),
    /// Notification channels: list, create, delete, and send a test.
    #[command(subcommand)]
    Notify(alerts::NotifyCommand),
    /// Scan networks for devices, review what was found, import it as nodes.
    #[command(subcommand)]
    Discovery(discovery::DiscoveryCommand),
    /// Start a throwaway local server and open the console on it.
    Demo(crate::demo::DemoArgs),
    /// Print a completion script for a shell: `plantwatch completions bash >
    /// /etc/bash_completion.d/plantwatch` (zsh: into a directory of `$fpath` as `_plantwatch`;
    /// fish: `~/.config/fish/completions/plantwatch.fish`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `plantwatch man > /usr/local/share/man/man1/plantwatch.1`.
    Man,
}

/// Writes the manual page: the command, its options, and a section per subcommand.
fn man_page() -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    use std::io::Write as _;
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    // A section per subcommand with its about and usage, so the page is the whole reference.
    out.extend_from_slice(b".SH \"COMMAND REFERENCE\"\n");
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        writeln!(out, ".SS \"plantwatch {}\"", sub.get_name())?;
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        writeln!(out, "{}", about.replace('\\', "\\\\"))?;
        for leaf in sub.get_subcommands().filter(|c| c.get_name() != "help") {
            let about = leaf
                .get_about()
                .map(ToString::to_string)
                .unwrap_or_default();
            writeln!(
                out,
                ".TP\n\\fBplantwatch {} {}\\fR\n{}",
                sub.get_name(),
                leaf.get_name(),
                about.replace('\\', "\\\\")
            )?;
        }
    }
    write_stdout(&out)
}

/// Writes `bytes` to standard output; a reader that closed early (`| head`) is no error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let command = match cli.command {
        None => return exit(open_console(cli.context.as_deref(), cli.client_config)),
        Some(Command::Demo(args)) => {
            return exit(crate::demo::run(args, crate::theme::Theme::from_env()));
        }
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "plantwatch", &mut script);
            return exit(write_stdout(&script));
        }
        Some(Command::Man) => return exit(man_page()),
        Some(command) => command,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("plantwatch: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let session = Session {
        format: cli.output,
        context: cli.context,
        config_path: cli.client_config,
    };
    exit(runtime.block_on(session.dispatch(command)))
}

/// A command that did part of its work: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Partial(pub String);

/// A bad argument value, found after clap parsed the line: exit code 2, like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Returns early with a [`Usage`] error.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::cli::Usage(format!($($arg)*)).into())
    };
}
pub(crate) use usage;

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<Partial>().is_some() => {
            eprintln!("plantwatch: {error}");
            ExitCode::from(3)
        }
        Err(error) if error.downcast_ref::<Usage>().is_some() => {
            eprintln!("plantwatch: {error} (see --help)");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("plantwatch: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// Refuses to open the console without a terminal on both ends.
pub fn require_terminal() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal; for scripts use the subcommands (plantwatch --help)");
    }
    Ok(())
}

/// `plantwatch` without a subcommand: the console on the selected context.
fn open_console(context: Option<&str>, config: Option<PathBuf>) -> anyhow::Result<()> {
    require_terminal()?;
    let path = match config {
        Some(path) => path,
        None => profile::default_path()?,
    };
    let profiles = Profiles::load(&path)?;
    let mut app = crate::app::App::new(profiles, Some(path), crate::theme::Theme::from_env());
    app.start(context);
    crate::console::run(app)
}

/// The error and a hint where one helps.
fn describe(error: &anyhow::Error) -> String {
    let mut text = format!("{error:#}");
    if let Some(api) = error.downcast_ref::<plantwatch_shared::Error>()
        && api.status() == Some(401)
        && !api.is(ErrorCode::InvalidCredentials)
    {
        text.push_str("\nhint: run `plantwatch login` to sign in again");
    }
    text
}

/// What every command needs: output format, selected context, configuration file.
pub struct Session {
    pub format: output::Format,
    pub context: Option<String>,
    pub config_path: Option<PathBuf>,
}

impl Session {
    async fn dispatch(&self, command: Command) -> anyhow::Result<()> {
        match command {
            Command::Login(args) => auth::login(self, args).await,
            Command::Logout => auth::logout(self).await,
            Command::Whoami => auth::whoami(self).await,
            Command::Passwd(args) => auth::passwd(self, args).await,
            Command::Context(command) => context::run(self, command),
            Command::Users(command) => users::run(self, command).await,
            Command::Ldap(command) => ldap::run(self, command).await,
            Command::Nodes(command) => nodes::run(self, command).await,
            Command::Checks(command) => checks::checks(self, command).await,
            Command::Certs(command) => checks::certs(self, command).await,
            Command::Events(command) => events::run(self, command).await,
            Command::EventRules(command) => event_rules::run(self, command).await,
            Command::Topology(command) => topology::run(self, command).await,
            Command::Sites(command) => sites::run(self, command).await,
            Command::Templates(command) => templates::run(self, command).await,
            Command::Metrics(command) => metrics::run(self, command).await,
            Command::Credentials(command) => credentials::run(self, command).await,
            Command::Tokens(command) => components::tokens(self, command).await,
            Command::Collectors(command) => {
                components::components(self, ComponentKind::Collector, command).await
            }
            Command::Agents(command) => {
                components::components(self, ComponentKind::Agent, command).await
            }
            Command::Alerts(command) => alerts::alerts(self, command).await,
            Command::Rules(command) => alerts::rules(self, command).await,
            Command::Maintenance(command) => alerts::maintenance(self, command).await,
            Command::Notify(command) => alerts::notify(self, command).await,
            Command::Discovery(command) => discovery::run(self, command).await,
            // Started by `run` before any runtime exists: it runs its own.
            Command::Demo(_) | Command::Completions { .. } | Command::Man => {
                bail!("this command runs on its own")
            }
        }
    }

    pub fn config_path(&self) -> anyhow::Result<PathBuf> {
        match &self.config_path {
            Some(path) => Ok(path.clone()),
            None => profile::default_path(),
        }
    }

    pub fn load(&self) -> anyhow::Result<Profiles> {
        Profiles::load(&self.config_path()?)
    }

    pub fn save(&self, profiles: &Profiles) -> anyhow::Result<()> {
        profiles.save(&self.config_path()?)
    }

    /// The selected context and a client signed in with its token.
    pub fn client(&self) -> anyhow::Result<(Context, Client)> {
        let profiles = self.load()?;
        let context = profiles.select(self.context.as_deref())?.clone();
        let token = context.token.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "not signed in to {}: run `plantwatch login {}`",
                context.name,
                context.url
            )
        })?;
        let client = context.client()?.with_token(token);
        Ok((context, client))
    }

    /// Prints a listing in the chosen format.
    pub fn print<T: serde::Serialize>(
        &self,
        value: &T,
        headers: &[&str],
        rows: Vec<Vec<String>>,
    ) -> anyhow::Result<()> {
        let text = match self.format {
            output::Format::Json => output::json::render(value)?,
            output::Format::Table => output::table::render(headers, &rows),
            output::Format::Csv => output::csv::render(headers, &rows)?,
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        Ok(())
    }
}

/// Reads one line from standard input (a password piped in by a script).
pub fn read_stdin_secret(what: &str) -> anyhow::Result<Secret> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let value = line.trim_end_matches(['\n', '\r']).to_owned();
    if value.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(value.into())
}

/// Asks a question on the terminal; refuses when there is no terminal to ask on.
pub fn ask(question: &str, no_terminal_hint: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("{no_terminal_hint}");
    }
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// Asks twice, without echo, for a new secret called `label`; refuses when the two differ.
pub fn ask_new_secret(label: &str, no_terminal_hint: &str) -> anyhow::Result<Secret> {
    let secret = ask_secret(&format!("{label}: "), no_terminal_hint)?;
    if ask_secret(&format!("{label} again: "), no_terminal_hint)? != secret {
        bail!(
            "the two {} entries differ; nothing was changed",
            label.to_lowercase()
        );
    }
    Ok(secret)
}

/// Asks for a yes before a destructive step, unless `yes` was given on the command line.
pub fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let answer = ask(
        &format!("{question} [yes/no] "),
        "no terminal to confirm on; pass --yes",
    )?;
    if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
        bail!("nothing was changed");
    }
    Ok(())
}

/// Reads a secret without echo from the terminal.
pub fn ask_secret(prompt: &str, no_terminal_hint: &str) -> anyhow::Result<Secret> {
    if !std::io::stdin().is_terminal() {
        bail!("{no_terminal_hint}");
    }
    let secret = rpassword::prompt_password(prompt).context("reading from the terminal")?;
    if secret.is_empty() {
        bail!("no password given");
    }
    Ok(secret.into())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        let cli = super::Cli::command();
        cli.clone().debug_assert();
        // clap's own check misses an option named like a global one (`--output FILE` beside
        // `-o json`): that fails only when used.
        let globals: Vec<String> = cli
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().to_string())
            .collect();
        fn walk(command: &clap::Command, globals: &[String], path: &str) {
            for arg in command.get_arguments() {
                let id = arg.get_id().to_string();
                assert!(
                    !globals.contains(&id),
                    "{path}: --{id} has the name of a global option"
                );
            }
            for sub in command.get_subcommands() {
                walk(sub, globals, &format!("{path} {}", sub.get_name()));
            }
        }
        for sub in cli.get_subcommands() {
            walk(sub, &globals, sub.get_name());
        }
    }
}
