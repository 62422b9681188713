//! Progress reporting without printing: the CLI turns these events into progress bars.

/// Something that happened while fetching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent<'a> {
    /// A download started; `total` is its size when known.
    Started {
        /// What is fetched (file name).
        what: &'a str,
        /// Its size in bytes, when known.
        total: Option<u64>,
    },
    /// More bytes arrived.
    Advanced {
        /// What is fetched.
        what: &'a str,
        /// Bytes so far.
        done: u64,
        /// Its size, when known.
        total: Option<u64>,
    },
    /// A file is ready; `cached` when no download was needed.
    Finished {
        /// What was fetched.
        what: &'a str,
        /// Whether it came from the cache.
        cached: bool,
    },
    /// Something the user should know about a choice made on their behalf (a release taken
    /// from after the project's cut-off), printed as a line of its own.
    Notice {
        /// The sentence.
        text: &'a str,
    },
}

/// Receives [`ProgressEvent`]s; implemented for any `Fn(&ProgressEvent)` closure.
pub trait Progress: Sync {
    /// Handle one event.
    fn event(&self, event: &ProgressEvent<'_>);
}

impl<F: Fn(&ProgressEvent<'_>) + Sync> Progress for F {
    fn event(&self, event: &ProgressEvent<'_>) {
        self(event)
    }
}

/// Ignores all events.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &ProgressEvent<'_>) {}
}
