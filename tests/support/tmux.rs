//! A real terminal for the live view's end-to-end tests: a tmux server of the test's own, one
//! session `bw`, keys sent as a person types them, the screen read back.
use std::{
    process::Command,
    time::{Duration, Instant},
};

/// A tmux server of our own (its own socket), so that the session gets this process's
/// environment and nothing of a user's tmux.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new() -> Self {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test: `cargo xtask setup` installs it"
        );
        Self {
            socket: format!("buildwatch-tui-test-{}", std::process::id()),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "bw"];
        args.extend(keys);
        let out = self.cmd(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {out:?}");
        // Let the view apply and redraw.
        std::thread::sleep(Duration::from_millis(400));
    }

    pub fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", "bw", "-S", "-200"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok`; panics with the screen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}
