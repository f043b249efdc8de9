//! One problem of a configuration document: its path in the document's own spelling and
//! what is wrong there. Parsing, validation and the ARM-template reader all report these.

use std::fmt;

/// One problem: where (a path like `probes[0].interval`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The path of the field, in the document's own spelling.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl Issue {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Issue {
    /// Whether `path` is this issue's path or lies inside it (`a.b` covers `a.b.c` and
    /// `a.b[0]`): a later check of a value that already failed to parse says nothing new.
    pub fn covers(&self, path: &str) -> bool {
        path.strip_prefix(self.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    }
}
