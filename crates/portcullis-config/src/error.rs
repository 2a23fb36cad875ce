//! Configuration errors that say where the problem is and how to fix it.
//!
//! Every problem found while loading or validating a configuration becomes one
//! [`ConfigError`]. Loading collects all of them before it fails, so an operator
//! fixes a file in one pass instead of one error per restart. [`ConfigErrors`]
//! prints one error per line, in the form
//!
//! ```text
//! config.yml:3: http.adr: unknown key. Fix: remove it or rename it; did you mean `http.addr`?
//! ```

use std::fmt;

/// One problem in a configuration, with the key it concerns, where that key
/// came from, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, such as `auth.htpasswd.path`. For an environment
    /// variable that maps to no key, the variable's name.
    pub key: String,
    /// 1-based line in the configuration file, when the key came from the file.
    pub line: Option<usize>,
    /// What is wrong, without a trailing period.
    pub message: String,
    /// What to do about it, without a trailing period.
    pub fix: String,
    /// The closest valid key (or environment variable), when the problem is a
    /// name that is not known.
    pub nearest: Option<String>,
    /// Where the key came from: the configuration file's name, `env NAME` for
    /// an environment override, or empty when unknown (a config built in code).
    pub source: String,
}

impl ConfigError {
    /// An error about `key` with no location; use the builder methods to add one.
    pub fn new(key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            line: None,
            message: message.into(),
            fix: fix.into(),
            nearest: None,
            source: String::new(),
        }
    }

    /// Sets where the key came from.
    #[must_use]
    pub fn at(mut self, source: impl Into<String>, line: Option<usize>) -> Self {
        self.source = source.into();
        self.line = line;
        self
    }

    /// Sets the closest valid name.
    #[must_use]
    pub fn nearest(mut self, nearest: Option<String>) -> Self {
        self.nearest = nearest;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.source.is_empty(), self.line) {
            (false, Some(line)) => write!(f, "{}:{line}: ", self.source)?,
            (false, None) => write!(f, "{}: ", self.source)?,
            (true, Some(line)) => write!(f, "line {line}: ")?,
            (true, None) => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}.", self.message)?;
        if !self.fix.is_empty() {
            write!(f, " Fix: {}", self.fix)?;
        }
        match &self.nearest {
            Some(nearest) if self.fix.is_empty() => write!(f, " Did you mean `{nearest}`?"),
            Some(nearest) => write!(f, "; did you mean `{nearest}`?"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// All the problems found in one configuration. Never empty when returned as
/// an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Whether no problem was found.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, otherwise `Err(self)`.
    ///
    /// # Errors
    /// Returns `self` when it holds at least one error.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_line_and_nearest() {
        let e = ConfigError::new("http.adr", "unknown key", "remove it or rename it")
            .at("config.yml", Some(3))
            .nearest(Some("http.addr".into()));
        assert_eq!(
            e.to_string(),
            "config.yml:3: http.adr: unknown key. Fix: remove it or rename it; did you mean `http.addr`?"
        );
    }

    #[test]
    fn display_many_one_per_line() {
        let errors = ConfigErrors(vec![
            ConfigError::new("a", "bad", "fix a"),
            ConfigError::new("b", "worse", "").at("env REGISTRY_B", None),
        ]);
        assert_eq!(
            errors.to_string(),
            "a: bad. Fix: fix a\nenv REGISTRY_B: b: worse."
        );
    }
}
