//! The one error type of the lab crate.

use std::io;

/// What went wrong while driving the lab. Its `Debug` is its message (tests `expect` on
/// results, and a log tail must stay readable there, not one escaped line).
#[derive(thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A command ran but exited unsuccessfully.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr (and stdout, when stderr was empty).
        stderr: String,
    },
    /// Something we were waiting for did not happen in time.
    #[error("timed out after {secs:.1}s waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long we waited.
        secs: f64,
    },
    /// A tool's output did not look as expected.
    #[error("could not parse {what}: {detail}")]
    Parse {
        /// Which output.
        what: String,
        /// Why.
        detail: String,
    },
    /// The caller asked for something the lab cannot do.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
    pub(crate) fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
