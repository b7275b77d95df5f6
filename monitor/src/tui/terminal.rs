//! Owning the terminal: raw mode and the alternate screen while the view runs, restored by a
//! guard on every way out (return, error, panic); the signals that end buildwatch end the view.
use std::{
    io::{self, Stdout, Write as _},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc::{Receiver, TryRecvError},
    },
    time::{Duration, Instant},
};

use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        cursor,
        event::{self, Event as TermEvent},
        execute,
        terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
    },
};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use super::{QuitReason, TuiContext, TuiOutcome, UiEvent, app::App, ui};

/// Redraw at least this often (the clock), and at most about this often under a flood of events.
const FRAME: Duration = Duration::from_millis(100);
/// Most of the run's events applied before looking at the keyboard again.
const BATCH: usize = 4096;
/// How long to wait for a key when the run is quiet (the latency of the run's next events).
const POLL: Duration = Duration::from_millis(25);

/// Puts the terminal back as it was: leaves the alternate screen, shows the cursor, ends raw
/// mode. Idempotent, and only touches the terminal when the view had taken it.
fn restore() {
    if ACTIVE.swap(false, Ordering::AcqRel) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
        let _ = io::stdout().flush();
    }
}

/// Whether the terminal is gone: stdin or stdout (both the terminal while the view runs)
/// reports a hang-up or an error. A live terminal reports neither.
pub fn hung_up() -> bool {
    let mut fds = [0, 1].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLOUT,
        revents: 0,
    });
    // SAFETY: poll(2) on two valid pollfd structures, without waiting.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    n > 0
        && fds
            .iter()
            .any(|p| p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0)
}

/// Points stdin, stdout and stderr at /dev/null: the terminal is gone, and writing to it would
/// fail (Rust's `eprintln!` panics on such a failure).
pub fn detach() {
    // The terminal modes cannot be restored on a hung-up terminal: nothing to do there.
    ACTIVE.store(false, Ordering::Release);
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd as _;
        for fd in 0..3 {
            // SAFETY: dup2 of a descriptor we own onto the standard ones.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// The view has the terminal.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Panic hooks installed (one is enough for every view of the process).
static HOOKED: AtomicUsize = AtomicUsize::new(0);

/// Holds the terminal in the view's modes; restores it when dropped.
struct Guard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Guard {
    fn enter() -> io::Result<Self> {
        if HOOKED.fetch_add(1, Ordering::AcqRel) == 0 {
            // A panic anywhere (the watch thread included) prints its message on a usable
            // terminal, not into the alternate screen.
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        }
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::Release);
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(stdout)) {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Signals that end the view. The watch loop has its own handlers for them (it forwards them to
/// the build); these only tell the view to give the terminal back.
struct Signals {
    got: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    fn register() -> io::Result<Self> {
        let got = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
            let got = got.clone();
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    got.store(sig as usize, Ordering::Release);
                })
            }?;
            ids.push(id);
        }
        Ok(Self { got, ids })
    }

    fn received(&self) -> Option<i32> {
        match self.got.load(Ordering::Acquire) {
            0 => None,
            sig => Some(sig as i32),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Runs the view until the user quits; events come from `rx`.
///
/// The terminal is taken only when [`UiEvent::Started`] arrives: if `rx` closes before that (the
/// command never started), this returns [`QuitReason::NotStarted`] without touching it. Once the
/// user quits, events keep arriving in `rx` for the caller to drain (the build's late output).
pub fn run(rx: &Receiver<UiEvent>, ctx: TuiContext) -> io::Result<TuiOutcome> {
    let mut app = App::from_context(&ctx);
    // Until the command runs, events are only collected.
    loop {
        match rx.recv() {
            Ok(UiEvent::Started { pid }) => {
                app.update(UiEvent::Started { pid });
                break;
            }
            Ok(other) => app.update(other),
            Err(_) => return Ok(outcome(&mut app, QuitReason::NotStarted)),
        }
    }
    let signals = Signals::register()?;
    let mut guard = Guard::enter()?;
    let result = event_loop(&mut guard, &mut app, rx, &ctx, &signals, Instant::now());
    drop(guard);
    drop(signals);
    Ok(outcome(&mut app, result?))
}

fn outcome(app: &mut App, reason: QuitReason) -> TuiOutcome {
    let (output, dropped_output) = app.take_output();
    TuiOutcome {
        reason,
        output,
        dropped_output,
        written: app.written().to_vec(),
    }
}

/// Applies the run's events as they come and the user's keys, redrawing at most every
/// [`FRAME`] (and at once after a key), until the user quits or a signal ends the view.
fn event_loop(
    guard: &mut Guard,
    app: &mut App,
    rx: &Receiver<UiEvent>,
    ctx: &TuiContext,
    signals: &Signals,
    started: Instant,
) -> io::Result<QuitReason> {
    let mut last_draw: Option<Instant> = None;
    loop {
        // The run's events: everything pending, bounded so that keys stay responsive.
        let mut busy = false;
        for _ in 0..BATCH {
            match rx.try_recv() {
                Ok(ev) => app.update(ev),
                // Disconnected: the run is over and everything it sent was applied.
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
            busy = true;
        }
        app.set_clock(started.elapsed());
        // A hung-up terminal reads as endless end-of-file: crossterm would spin on it at full
        // CPU, never reporting an error. Checked first, each turn.
        if hung_up() {
            (ctx.stop_build)();
            return Ok(QuitReason::TerminalGone);
        }
        // The terminal's events; wait for one only when the run is quiet.
        let wait = if busy { Duration::ZERO } else { POLL };
        let mut keyed = false;
        if event::poll(wait)? {
            match event::read()? {
                TermEvent::Key(key) => {
                    keyed = true;
                    app.update(UiEvent::Key(key));
                }
                TermEvent::Resize(..) => {
                    keyed = true;
                    app.update(UiEvent::Resize);
                }
                _ => {}
            }
        } else if !busy {
            app.update(UiEvent::Tick);
        }
        if app.take_stop_request() {
            (ctx.stop_build)();
        }
        if let Some(sig) = signals.received() {
            // The watch loop forwards the signal to the build; one that ignores it is still
            // stopped (SIGKILL after a grace period), since nobody is watching it any more.
            (ctx.stop_build)();
            app.quit_now(QuitReason::Signal(sig));
        }
        if let Some(reason) = app.quit_reason() {
            return Ok(reason);
        }
        if keyed || last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            guard.terminal.draw(|frame| ui::draw(frame, app))?;
            last_draw = Some(Instant::now());
        }
    }
}
