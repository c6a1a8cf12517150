//! The agent as a Windows service: `install` registers it (automatic start, restarted on
//! failure), `start`/`stop` drive it through the Service Control Manager and wait for it,
//! `uninstall` removes it. The SCM runs `plantwatch-agent.exe --state-dir DIR service …`, which
//! hands the process to the service dispatcher: the agent then runs as under `run`, logging to
//! a daily file in `DIR\logs` (seven kept), until the SCM says stop or the machine shuts down.
#![allow(unsafe_code)] // `define_windows_service!` expands to the FFI entry point.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use plantwatch_shared::api::ComponentKind;
use plantwatch_shared::daemon::Enrollment;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use crate::cli::RunArgs;

/// The service's name in the Service Control Manager.
pub const SERVICE_NAME: &str = "plantwatch-agent";
const DISPLAY_NAME: &str = "plantwatch agent";
const DESCRIPTION: &str = "Reports this machine's metrics, services and heartbeat to the \
                           plantwatch server.";
/// How long `start`, `stop` and `uninstall` wait for the service.
const WAIT: Duration = Duration::from_secs(30);
/// Daily log files kept in the state directory's `logs`.
const LOG_FILES_KEPT: usize = 7;

fn manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
        .context("opening the Service Control Manager (run as Administrator)")
}

/// Registers the service: automatic start; on failure restarted after 10 s, 30 s, 60 s (the
/// count forgotten after a day without one).
pub fn install(state_dir: &Path, run: &[OsString]) -> anyhow::Result<()> {
    Enrollment::load(state_dir, ComponentKind::Agent)
        .context("enroll first (plantwatch-agent enroll CODE); the service runs the enrollment")?;
    let exe = std::env::current_exe().context("finding this program")?;
    // The SCM starts the service in system32: the state directory must not be relative.
    let state_dir = std::path::absolute(state_dir).context("resolving the state directory")?;
    let state_dir = state_dir.as_path();
    let mut arguments = vec![
        OsString::from("--state-dir"),
        state_dir.as_os_str().to_owned(),
        OsString::from("service"),
    ];
    arguments.extend(run.iter().cloned());
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: arguments,
        dependencies: Vec::new(),
        account_name: None, // LocalSystem: the state directory is SYSTEM's and Administrators'.
        account_password: None,
    };
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_CONFIG,
        )
        .context("registering the service (is it installed already? uninstall first)")?;
    if let Err(error) = service.set_description(DESCRIPTION) {
        tracing::warn!("Setting the service's description failed: {error}");
    }
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(10), restart(30), restart(60)]),
        })
        .context("setting the service's recovery (restart on failure)")?;
    // An exit with an error counts as a failure too, not only a crash (Wine lacks this
    // setting: there only crashes restart the service).
    if let Err(error) = service.set_failure_actions_on_non_crash_failures(true) {
        eprintln!(
            "warning: the service restarts after a crash, but this system would not restart it \
             after an exit with an error: {error}"
        );
    }
    println!("Installed the service {SERVICE_NAME} (automatic start, restarted on failure).");
    println!("Start it now: plantwatch-agent start");
    Ok(())
}

/// Stops the service if it runs, then removes it.
pub fn uninstall() -> anyhow::Result<()> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .context("opening the service (is it installed?)")?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        let _ = service.stop();
        wait_for(&service, ServiceState::Stopped)?;
    }
    service.delete().context("removing the service")?;
    println!("Removed the service {SERVICE_NAME}.");
    Ok(())
}

/// Starts the service and waits until it runs.
pub fn start() -> anyhow::Result<()> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::START,
        )
        .context("opening the service (install it first: plantwatch-agent install)")?;
    if service.query_status()?.current_state != ServiceState::Running {
        service
            .start::<&OsStr>(&[])
            .context("starting the service")?;
        wait_for(&service, ServiceState::Running)?;
    }
    println!("The service {SERVICE_NAME} is running.");
    Ok(())
}

/// Stops the service and waits until it has.
pub fn stop() -> anyhow::Result<()> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP,
        )
        .context("opening the service (is it installed?)")?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        service.stop().context("stopping the service")?;
        wait_for(&service, ServiceState::Stopped)?;
    }
    println!("The service {SERVICE_NAME} is stopped.");
    Ok(())
}

fn wait_for(service: &windows_service::service::Service, want: ServiceState) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = service.query_status()?;
        if status.current_state == want {
            return Ok(());
        }
        if want == ServiceState::Running && status.current_state == ServiceState::Stopped {
            bail!(
                "the service stopped (exit code {:?}); see its log in the state directory's logs",
                status.exit_code
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the service is {:?} after {} s",
                status.current_state,
                WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The process the SCM started: hands it to the service dispatcher, which calls
/// [`service_main`] on a thread of its own and returns when the service has stopped.
pub fn dispatch() -> anyhow::Result<()> {
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).context(
        "connecting to the Service Control Manager (the `service` command is run by Windows; \
         use `run` in a console)",
    )
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    // The settings are the process's command line, as `install` registered it.
    let cli = <crate::cli::Cli as clap::Parser>::parse();
    let crate::cli::Command::Service(args) = cli.command else {
        return;
    };
    let _guard = log_to_file(&cli.state_dir);
    if let Err(error) = serve(&cli.state_dir, args) {
        tracing::error!("The service failed: {error:#}");
    }
}

/// Logs to `STATE_DIR\logs\agent.log.YYYY-MM-DD`, a new file a day, seven kept.
fn log_to_file(state_dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir: PathBuf = state_dir.join("logs");
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("agent.log")
        .max_log_files(LOG_FILES_KEPT)
        .build(&dir)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init()
        .ok()?;
    Some(guard)
}

fn serve(state_dir: &Path, args: RunArgs) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            let _ = stop_tx.send(());
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(SERVICE_NAME, handler)?;
    let report = |state, accept, exit_code| {
        status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code,
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        })
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ServiceExitCode::NO_ERROR,
    )?;
    tracing::info!("Service started.");
    let result = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                // The SCM's stop arrives on its own thread; hand it to the runtime.
                std::thread::spawn(move || {
                    let _ = stop_rx.recv();
                    let _ = tx.send(());
                });
                let stop = async {
                    let _ = rx.await;
                    tracing::info!("Stop requested by the Service Control Manager.");
                };
                crate::cli::run_agent(state_dir, args, stop).await
            })
        });
    let exit_code = match &result {
        Ok(()) => ServiceExitCode::NO_ERROR,
        // An error exit makes the SCM apply the recovery actions (restart).
        Err(_) => ServiceExitCode::ServiceSpecific(1),
    };
    report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit_code,
    )?;
    result
}
