//! Loading the gateway configuration: JSON (`.json`) or TOML (`.toml`), one serde model
//! ([`schema`]) whose strings are parsed into typed values as the document is read
//! ([`values`]: path patterns, status ranges, address ranges, durations), with ARM template
//! spellings accepted (the private `normalize` pass) and the rules between fields checked
//! ([`validate()`]). Every problem is reported with its exact path, all of them at once; the
//! runtime only ever gets a configuration that passed, and never parses its strings again.
//!
//! This module is a leaf: it uses nothing else of the crate.

mod arm_export;
pub mod defaults;
mod features;
mod issue;
mod normalize;
pub mod schema;
pub mod validate;
mod validate_features;
pub mod values;

use std::fmt;
use std::path::{Path, PathBuf};

pub use issue::Issue;
pub use schema::*;
pub use validate::validate;
pub use values::{
    Cidr, ErrorStatus, FieldName, HeaderTemplate, InvalidValue, PathKind, PathPattern, Seconds,
    StatusRange,
};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The extension is neither `.json` nor `.toml`.
    #[error("{0}: unknown configuration format (use a .json or .toml file)")]
    Format(PathBuf),
    /// The file is not valid JSON/TOML, or a field has the wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and what, e.g. `requestRoutingRules[0].ruleType: unknown variant ...`.
        message: String,
    },
    /// The document parsed but breaks rules; every problem found is listed.
    #[error("{}", Issues(.0))]
    Invalid(Vec<Issue>),
}

impl ConfigError {
    /// Every problem as one line each (for `--check`).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(issues) => issues.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}

struct Issues<'a>(&'a [Issue]);

impl fmt::Display for Issues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} configuration error{}",
            if n == 1 { "" } else { "s" }
        )?;
        for issue in self.0 {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

/// The file formats the gateway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, like an ARM template.
    Json,
    /// TOML.
    Toml,
}

impl Format {
    /// The format a file name implies (by extension, case-insensitive).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// Reads and parses a configuration file (every check of [`from_str`]).
pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
    let format = Format::from_path(path).ok_or_else(|| ConfigError::Format(path.into()))?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.into(),
        source,
    })?;
    from_str(&text, format).map_err(|e| match e {
        ConfigError::Syntax { message, .. } => ConfigError::Syntax {
            path: path.into(),
            message,
        },
        other => other,
    })
}

/// Parses a document held in memory and checks it ([`parse_with_warnings`]), logging once
/// each warning.
pub fn from_str(text: &str, format: Format) -> Result<GatewayConfig, ConfigError> {
    let (config, warnings) = parse_with_warnings(text, format)?;
    for warning in &warnings {
        tracing::warn!("configuration: {warning}");
    }
    Ok(config)
}

/// Parses and checks a document: every value that does not parse and every broken rule
/// ([`validate()`]) is an [`Issue`] with its path, all of them in one
/// [`ConfigError::Invalid`]. Also lists what was ignored: an ARM template's other resources
/// and the Application Gateway fields this gateway does not implement, each with its path (see
/// the private `arm_export` module). Unknown fields outside Application Gateway's schema are
/// still errors.
pub fn parse_with_warnings(
    text: &str,
    format: Format,
) -> Result<(GatewayConfig, Vec<Issue>), ConfigError> {
    let syntax = |message: String| ConfigError::Syntax {
        path: PathBuf::new(),
        message,
    };
    let value: serde_json::Value = match format {
        Format::Json => serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?,
        Format::Toml => toml::from_str(text).map_err(|e| syntax(e.to_string()))?,
    };
    let mut warnings = Vec::new();
    let value = arm_export::unwrap_template(value, &mut warnings);
    let value = normalize::normalize(value).map_err(ConfigError::Invalid)?;
    let (config, mut issues) =
        arm_export::deserialize_tolerant::<GatewayConfig>(value, &mut warnings).map_err(|e| {
            let path = e.path().to_string();
            syntax(format!("{path}: {}", e.inner()))
        })?;
    let unparsed = issues.len();
    for issue in validate(&config) {
        // A rule about a value that did not parse would only repeat its issue.
        if !issues[..unparsed].iter().any(|i| i.covers(&issue.path)) {
            issues.push(issue);
        }
    }
    if issues.is_empty() {
        Ok((config, warnings))
    } else {
        Err(ConfigError::Invalid(issues))
    }
}
