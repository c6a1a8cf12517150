//! The terminal side of the console: raw mode and the alternate screen (restored on every exit,
//! panics included), a thread reading keys, a once-a-second tick, and the loop that hands events
//! to the `App`, starts its API calls on tokio tasks and redraws.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self as term, Event as TermEvent};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::app::App;
use crate::event::Event;

/// Runs the console until the user quits.
pub fn run(app: App) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // `try_init` also installs a panic hook that restores the terminal before the message.
    let mut terminal = ratatui::try_init().context("opening the terminal")?;
    let result = runtime.block_on(event_loop(&mut terminal, app));
    ratatui::restore();
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Reads the terminal on its own thread until `stop` is set.
fn spawn_input(tx: UnboundedSender<Event>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match term::poll(Duration::from_millis(100)) {
                Ok(false) => {}
                Ok(true) => {
                    let event = match term::read() {
                        Ok(TermEvent::Key(key)) => Event::Key(key),
                        Ok(TermEvent::Resize(..)) => Event::Resize,
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    if tx.send(event).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
}

async fn event_loop(terminal: &mut DefaultTerminal, mut app: App) -> anyhow::Result<()> {
    let (tx, mut rx) = unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(tx.clone(), stop.clone());
    let ticker = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                if tx.send(Event::Tick).is_err() {
                    break;
                }
            }
        })
    };

    let result = loop {
        for call in app.outbox.drain(..) {
            let tx = tx.clone();
            tokio::spawn(async move {
                let outcome = call.task.await;
                let _ = tx.send(Event::Done {
                    generation: call.generation,
                    origin: call.origin,
                    outcome,
                });
            });
        }
        if let Err(error) = terminal.draw(|frame| crate::ui::render(&app, frame)) {
            break Err(error).context("drawing the console");
        }
        let Some(event) = rx.recv().await else {
            break Ok(());
        };
        app.handle(event);
        // Everything else already waiting is handled before the next frame.
        while let Ok(event) = rx.try_recv() {
            app.handle(event);
        }
        if app.quit {
            break Ok(());
        }
    };
    stop.store(true, Ordering::Relaxed);
    ticker.abort();
    result
}
