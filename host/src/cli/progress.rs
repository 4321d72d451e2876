//! A progress bar on standard error, drawn only when it is a terminal.

use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Draws `done/total` bars, at most every 100 ms, and clears the line when
/// dropped.
pub struct Bar {
    label: String,
    state: Mutex<State>,
}

struct State {
    last: Option<Instant>,
    drawn: bool,
}

impl Bar {
    /// A bar titled `label`, or `None` when standard error is not a terminal.
    pub fn new(label: &str) -> Option<Self> {
        std::io::stderr().is_terminal().then(|| Self {
            label: label.to_string(),
            state: Mutex::new(State {
                last: None,
                drawn: false,
            }),
        })
    }

    /// Redraws the bar.
    pub fn update(&self, done: u64, total: u64) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        if done < total && s.last.is_some_and(|t| now - t < Duration::from_millis(100)) {
            return;
        }
        s.last = Some(now);
        s.drawn = true;
        const WIDTH: u64 = 30;
        let filled = (done.min(total) * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '=' } else { ' ' })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{} [{bar}] {done}/{total}", self.label);
        let _ = err.flush();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.state.lock().is_ok_and(|s| s.drawn) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
