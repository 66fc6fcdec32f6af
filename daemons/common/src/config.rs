//! Configuration: one struct per concern, filled from layers.
//!
//! Layers, later wins: built-in defaults, the TOML file
//! (`/etc/aztec-prover/<daemon>.toml` or `--config`), systemd credentials
//! (secrets only), `<ENV>_FILE` variables (secrets only), environment
//! variables (the seeds' names, e.g. `PROVER_BROKER_HOST`), command-line flags
//! (the seeds' style, e.g. `--proverAgent.proverBrokerUrl`).
//!
//! Each struct is declared once with [`crate::settings!`], which keeps the
//! default, the environment names, the flag and the help text beside the
//! field. A bad value is a one-line [`ConfigError`] naming the key, where the
//! value came from and what was expected; nothing else is touched before the
//! whole configuration has loaded.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A key in a TOML file.
    File(PathBuf),
    /// A systemd credential (`$CREDENTIALS_DIRECTORY/<name>`).
    Credential(PathBuf),
    /// A file named by an `<ENV>_FILE` variable.
    EnvFile(String, PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Credential(p) => write!(f, "credential {}", p.display()),
            Source::EnvFile(var, p) => write!(f, "file {} named by {var}", p.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag(flag) => write!(f, "flag --{flag}"),
        }
    }
}

/// A raw value before it is converted to a field's type.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    /// Text from the environment, a flag or a secret file.
    Text(&'a str),
    /// A value from a TOML file.
    Toml(&'a toml::Value),
}

/// A type a configuration field can have.
pub trait ConfigValue: Sized {
    /// Whether a bare flag (no value) means `true`.
    const IS_SWITCH: bool = false;
    /// What a valid value looks like, for error messages and `--help`.
    fn expected() -> String;
    /// Parses text (environment, flags).
    fn from_text(text: &str) -> Result<Self, String>;
    /// Converts a TOML value; scalars go through [`ConfigValue::from_text`].
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Self::from_text(s),
            toml::Value::Integer(i) => Self::from_text(&i.to_string()),
            toml::Value::Boolean(b) => Self::from_text(&b.to_string()),
            toml::Value::Float(x) => Self::from_text(&x.to_string()),
            other => Err(format!("a {} is not allowed here", other.type_str())),
        }
    }
    /// Converts either kind of raw value.
    fn from_raw(raw: Raw<'_>) -> Result<Self, String> {
        match raw {
            Raw::Text(t) => Self::from_text(t),
            Raw::Toml(v) => Self::from_toml(v),
        }
    }
    /// The value as `config show` prints it.
    fn render(&self) -> String;
}

macro_rules! config_value_via_fromstr {
    ($($t:ty => $expected:expr),* $(,)?) => {$(
        impl ConfigValue for $t {
            fn expected() -> String {
                $expected.to_string()
            }
            fn from_text(text: &str) -> Result<Self, String> {
                text.trim().parse::<$t>().map_err(|e| e.to_string())
            }
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

config_value_via_fromstr! {
    u16 => "a whole number from 0 to 65535",
    u32 => "a whole number from 0 to 4294967295",
    u64 => "a whole number from 0 to 18446744073709551615",
    usize => "a non-negative whole number",
    u128 => "a whole number from 0 to 2^128-1",
    std::net::IpAddr => "an IP address",
}

impl ConfigValue for bool {
    const IS_SWITCH: bool = true;
    fn expected() -> String {
        "true or false".into()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("not a boolean".into()),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl ConfigValue for String {
    fn expected() -> String {
        "text".into()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Ok(s.clone()),
            other => Err(format!("a {} where text was expected", other.type_str())),
        }
    }
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

impl ConfigValue for PathBuf {
    fn expected() -> String {
        "a path".into()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty path".into());
        }
        Ok(PathBuf::from(text))
    }
    fn render(&self) -> String {
        format!("{:?}", self.display().to_string())
    }
}

impl<T: ConfigValue> ConfigValue for Option<T> {
    fn expected() -> String {
        format!("{} (or empty for none)", T::expected())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            Ok(None)
        } else {
            T::from_text(text).map(Some)
        }
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) if s.trim().is_empty() => Ok(None),
            v => T::from_toml(v).map(Some),
        }
    }
    fn render(&self) -> String {
        match self {
            Some(v) => v.render(),
            None => "\"\"".into(),
        }
    }
}

impl<T: ConfigValue> ConfigValue for Vec<T> {
    fn expected() -> String {
        format!("a comma-separated list of: {}", T::expected())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| T::from_text(s).map_err(|e| format!("{s:?}: {e}")))
            .collect()
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Array(items) => items.iter().map(T::from_toml).collect(),
            toml::Value::String(s) => Self::from_text(s),
            other => Err(format!("a {} where a list was expected", other.type_str())),
        }
    }
    fn render(&self) -> String {
        let items: Vec<String> = self.iter().map(ConfigValue::render).collect();
        format!("[{}]", items.join(", "))
    }
}

/// A secret string (a private key). Never printed: `Debug`, `Display`,
/// `render` and serialisation all show `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

impl ConfigValue for Secret {
    fn expected() -> String {
        "a secret (text)".into()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(Secret(text.trim().to_string()))
    }
    fn render(&self) -> String {
        if self.0.is_empty() {
            "\"\"".into()
        } else {
            "\"<redacted>\"".into()
        }
    }
}

/// A log level, in the seeds' vocabulary (`silent fatal error warn info verbose debug trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Nothing.
    Silent,
    /// Errors only (the seeds' `fatal` is the same here).
    Error,
    /// Warnings and errors.
    Warn,
    /// The story of each epoch and job.
    Info,
    /// Everything useful for debugging (`verbose` maps here).
    Debug,
    /// Everything.
    Trace,
}

impl ConfigValue for LogLevel {
    fn expected() -> String {
        "one of silent, fatal, error, warn, info, verbose, debug, trace".into()
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "silent" | "off" => LogLevel::Silent,
            "fatal" | "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "verbose" | "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return Err("unknown level".into()),
        })
    }
    fn render(&self) -> String {
        format!("{:?}", format!("{self:?}").to_ascii_lowercase())
    }
}

/// One field of a settings struct, as the loader and `--help` see it.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// The TOML key (the Rust field name).
    pub key: &'static str,
    /// Environment variables, first found wins.
    pub env: &'static [&'static str],
    /// The long flag without dashes, e.g. `proverAgent.proverBrokerUrl`.
    pub flag: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Whether the value is a secret (redacted, loadable from credentials).
    pub secret: bool,
    /// What a valid value looks like.
    pub expected: fn() -> String,
    /// Whether the field is a boolean (a bare flag means true).
    pub boolean: bool,
}

/// A settings struct declared with [`crate::settings!`].
pub trait Settings {
    /// The fields, in declaration order.
    fn fields(&self) -> &'static [FieldSpec];
    /// Sets one field from a raw value.
    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String>;
    /// Renders one field for `config show`.
    fn render(&self, key: &str) -> Option<String>;
    /// Checks constraints that span fields or go beyond the type; errors name
    /// the key. Runs once, after all layers are applied.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// Declares a settings struct: each field with its default, environment
/// names, flag and one line of help. Generates the struct, `Default`, and
/// [`Settings`](crate::config::Settings).
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                #[doc = $help:literal]
                $field:ident : $ty:ty = $default:expr ,
                env [$($env:literal),*] ,
                flag $flag:literal
                $(, $secret:ident)? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Serialize)]
        pub struct $name {
            $(
                #[doc = $help]
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $name {
            const FIELD_SPECS: &'static [$crate::config::FieldSpec] = &[
                $($crate::config::FieldSpec {
                    key: stringify!($field),
                    env: &[$($env),*],
                    flag: $flag,
                    help: $help,
                    secret: $crate::settings!(@secret $($secret)?),
                    expected: <$ty as $crate::config::ConfigValue>::expected,
                    boolean: <$ty as $crate::config::ConfigValue>::IS_SWITCH,
                },)*
            ];
        }

        impl $crate::config::Settings for $name {
            fn fields(&self) -> &'static [$crate::config::FieldSpec] {
                Self::FIELD_SPECS
            }
            fn set(&mut self, key: &str, raw: $crate::config::Raw<'_>) -> Result<(), String> {
                match key {
                    $(stringify!($field) => {
                        self.$field = <$ty as $crate::config::ConfigValue>::from_raw(raw)?;
                        Ok(())
                    })*
                    _ => Err(format!("unknown key {key}")),
                }
            }
            fn render(&self, key: &str) -> Option<String> {
                match key {
                    $(stringify!($field) => Some($crate::config::ConfigValue::render(&self.$field)),)*
                    _ => None,
                }
            }
            fn validate(&self) -> Result<(), (&'static str, String)> {
                $crate::config::Validate::check(self)
            }
        }
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

/// Cross-field checks for a settings struct; implement it for each struct
/// (an empty impl accepts everything).
pub trait Validate {
    /// Returns the offending key and the problem.
    fn check(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
}

/// A configuration that did not load. One line, naming key and source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse.
    #[error("invalid {key} = {value} from {origin}: expected {expected} ({problem})")]
    Invalid {
        /// The field.
        key: &'static str,
        /// The value as given (or `<redacted>` for secrets).
        value: String,
        /// Where it came from.
        origin: Source,
        /// What was expected.
        expected: String,
        /// What the parser said.
        problem: String,
    },
    /// A value that parses but breaks a constraint.
    #[error("invalid {key} from {origin}: {problem}")]
    Constraint {
        /// The field.
        key: &'static str,
        /// Where the offending value came from.
        origin: Source,
        /// What is wrong.
        problem: String,
    },
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, on one line.
        message: String,
    },
    /// A key in the file that no settings struct knows.
    #[error(
        "unknown key {key:?} in config file {path} (run `aztec-prover config show` to list keys)"
    )]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// A secret file or credential that could not be read.
    #[error("cannot read secret for {key} from {path}: {error}")]
    SecretFile {
        /// The field.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// Everything a load reads from, so tests need not touch the process environment.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The TOML file, if any.
    pub file: Option<PathBuf>,
    /// Whether a missing file is an error (true for `--config`, false for the default path).
    pub file_required: bool,
    /// Environment variables.
    pub env: HashMap<String, String>,
    /// Flags given on the command line: flag name (no dashes) and value.
    pub flags: Vec<(String, String)>,
}

impl Inputs {
    /// Inputs from the process environment, with `file` as the TOML file.
    pub fn from_process(
        file: Option<PathBuf>,
        file_required: bool,
        flags: Vec<(String, String)>,
    ) -> Inputs {
        Inputs {
            file,
            file_required,
            env: std::env::vars().collect(),
            flags,
        }
    }

    fn env(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }
}

/// Where each field's effective value came from, by key.
pub type Provenance = BTreeMap<&'static str, Source>;

/// Applies every layer to `groups` (in place) and validates them.
/// Keys must be unique across groups.
// Configuration errors come once, at start: their size costs nothing.
#[allow(clippy::result_large_err)]
pub fn load(groups: &mut [&mut dyn Settings], inputs: &Inputs) -> Result<Provenance, ConfigError> {
    let mut provenance = Provenance::new();
    for g in groups.iter() {
        for f in g.fields() {
            provenance.insert(f.key, Source::Default);
        }
    }

    // 1. the TOML file
    if let Some(path) = &inputs.file {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
                        path: path.clone(),
                        message: e.to_string().lines().collect::<Vec<_>>().join(" "),
                    })?;
                for (key, value) in &table {
                    let (g, spec) =
                        find_key(groups, key).ok_or_else(|| ConfigError::UnknownKey {
                            key: key.clone(),
                            path: path.clone(),
                        })?;
                    let source = Source::File(path.clone());
                    apply(
                        &mut *groups[g],
                        spec,
                        Raw::Toml(value),
                        &display_toml(value, spec),
                        source,
                        &mut provenance,
                    )?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !inputs.file_required => {}
            Err(error) => {
                return Err(ConfigError::ReadFile {
                    path: path.clone(),
                    error,
                });
            }
        }
    }

    // By index: each field's value is set on `groups[g]` while its specs are read.
    #[allow(clippy::needless_range_loop)]
    for g in 0..groups.len() {
        for spec in groups[g].fields() {
            // 2. systemd credentials and <ENV>_FILE, for secrets
            if spec.secret {
                if let Some(dir) = inputs.env("CREDENTIALS_DIRECTORY") {
                    let path = Path::new(dir).join(credential_name(spec.key));
                    if path.exists() {
                        let text = read_secret(spec.key, &path)?;
                        apply(
                            &mut *groups[g],
                            spec,
                            Raw::Text(&text),
                            "",
                            Source::Credential(path),
                            &mut provenance,
                        )?;
                    }
                }
                for var in spec.env {
                    let file_var = format!("{var}_FILE");
                    if let Some(p) = inputs.env(&file_var) {
                        let path = PathBuf::from(p);
                        let text = read_secret(spec.key, &path)?;
                        apply(
                            &mut *groups[g],
                            spec,
                            Raw::Text(&text),
                            "",
                            Source::EnvFile(file_var, path),
                            &mut provenance,
                        )?;
                        break;
                    }
                }
            }
            // 3. environment
            if let Some((var, text)) = spec.env.iter().find_map(|v| inputs.env(v).map(|t| (*v, t)))
            {
                apply(
                    &mut *groups[g],
                    spec,
                    Raw::Text(text),
                    text,
                    Source::Env(var.to_string()),
                    &mut provenance,
                )?;
            }
            // 4. flags
            if let Some((_, text)) = inputs.flags.iter().rev().find(|(f, _)| f == spec.flag) {
                apply(
                    &mut *groups[g],
                    spec,
                    Raw::Text(text),
                    text,
                    Source::Flag(spec.flag.to_string()),
                    &mut provenance,
                )?;
            }
        }
    }

    for g in groups.iter() {
        if let Err((key, problem)) = g.validate() {
            let source = provenance.get(key).cloned().unwrap_or(Source::Default);
            return Err(ConfigError::Constraint {
                key,
                origin: source,
                problem,
            });
        }
    }
    Ok(provenance)
}

fn find_key(groups: &[&mut dyn Settings], key: &str) -> Option<(usize, &'static FieldSpec)> {
    groups
        .iter()
        .enumerate()
        .find_map(|(i, g)| g.fields().iter().find(|f| f.key == key).map(|f| (i, f)))
}

#[allow(clippy::result_large_err)]
fn apply(
    group: &mut dyn Settings,
    spec: &'static FieldSpec,
    raw: Raw<'_>,
    shown: &str,
    source: Source,
    provenance: &mut Provenance,
) -> Result<(), ConfigError> {
    group
        .set(spec.key, raw)
        .map_err(|problem| ConfigError::Invalid {
            key: spec.key,
            value: if spec.secret {
                "<redacted>".into()
            } else {
                format!("{shown:?}")
            },
            origin: source.clone(),
            expected: (spec.expected)(),
            problem,
        })?;
    provenance.insert(spec.key, source);
    Ok(())
}

fn display_toml(value: &toml::Value, spec: &FieldSpec) -> String {
    if spec.secret {
        String::new()
    } else {
        value.to_string()
    }
}

// Configuration errors come once, at start: their size costs nothing.
#[allow(clippy::result_large_err)]
fn read_secret(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|error| ConfigError::SecretFile {
            key,
            path: path.to_path_buf(),
            error,
        })
}

/// The systemd credential name of a secret field: the key with dashes,
/// e.g. `publisher_private_key` -> `publisher-private-key`.
pub fn credential_name(key: &str) -> String {
    key.replace('_', "-")
}

/// Renders the effective configuration as commented TOML, secrets redacted.
pub fn show(groups: &[&dyn Settings], provenance: &Provenance) -> String {
    let mut out = String::new();
    for g in groups {
        for f in g.fields() {
            let value = g.render(f.key).unwrap_or_default();
            let source = provenance.get(f.key).cloned().unwrap_or(Source::Default);
            let line = format!("{} = {}", f.key, value);
            out.push_str(&format!("{line:<48} # {source}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    settings! {
        /// Test settings.
        pub struct Demo {
            /// A port.
            port: u16 = 8080, env ["DEMO_PORT", "ALT_PORT"], flag "demo.port";
            /// A switch.
            enabled: bool = false, env ["DEMO_ENABLED"], flag "demo.enabled";
            /// A list.
            hosts: Vec<String> = vec![], env ["DEMO_HOSTS"], flag "demo.hosts";
            /// A key.
            private_key: Secret = Secret::default(), env ["DEMO_KEY"], flag "demo.privateKey", secret;
            /// A timeout.
            timeout_ms: u64 = 1000, env ["DEMO_TIMEOUT_MS"], flag "demo.timeoutMs";
        }
    }

    impl Validate for Demo {
        fn check(&self) -> Result<(), (&'static str, String)> {
            if self.timeout_ms == 0 {
                return Err(("timeout_ms", "must be at least 1".into()));
            }
            Ok(())
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn later_layers_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.toml");
        std::fs::write(
            &file,
            "port = 9000\nhosts = [\"a\", \"b\"]\ntimeout_ms = 5\n",
        )
        .unwrap();
        let mut d = Demo::default();
        let inputs = Inputs {
            file: Some(file.clone()),
            file_required: true,
            env: env(&[("DEMO_PORT", "9100"), ("DEMO_HOSTS", "x, y")]),
            flags: vec![("demo.port".into(), "9200".into())],
        };
        let prov = load(&mut [&mut d], &inputs).unwrap();
        assert_eq!(d.port, 9200);
        assert_eq!(d.hosts, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(d.timeout_ms, 5);
        assert_eq!(prov["port"], Source::Flag("demo.port".into()));
        assert_eq!(prov["timeout_ms"], Source::File(file));
        assert_eq!(prov["enabled"], Source::Default);
    }

    #[test]
    fn first_listed_env_name_wins() {
        let mut d = Demo::default();
        let inputs = Inputs {
            env: env(&[("ALT_PORT", "1"), ("DEMO_PORT", "2")]),
            ..Inputs::default()
        };
        load(&mut [&mut d], &inputs).unwrap();
        assert_eq!(d.port, 2);
    }

    #[test]
    fn bad_value_names_key_source_and_expectation() {
        let mut d = Demo::default();
        let inputs = Inputs {
            env: env(&[("DEMO_PORT", "eighty")]),
            ..Inputs::default()
        };
        let msg = load(&mut [&mut d], &inputs).unwrap_err().to_string();
        assert!(msg.contains("port"), "{msg}");
        assert!(msg.contains("environment variable DEMO_PORT"), "{msg}");
        assert!(msg.contains("0 to 65535"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.toml");
        std::fs::write(&file, "prot = 1\n").unwrap();
        let mut d = Demo::default();
        let inputs = Inputs {
            file: Some(file),
            file_required: true,
            ..Inputs::default()
        };
        let msg = load(&mut [&mut d], &inputs).unwrap_err().to_string();
        assert!(msg.contains("unknown key \"prot\""), "{msg}");
    }

    #[test]
    fn missing_default_file_is_fine_but_missing_explicit_file_is_not() {
        let mut d = Demo::default();
        let mut inputs = Inputs {
            file: Some("/nonexistent/demo.toml".into()),
            ..Inputs::default()
        };
        assert!(load(&mut [&mut d], &inputs).is_ok());
        inputs.file_required = true;
        assert!(load(&mut [&mut d], &inputs).is_err());
    }

    #[test]
    fn constraint_failure_names_key_and_source() {
        let mut d = Demo::default();
        let inputs = Inputs {
            flags: vec![("demo.timeoutMs".into(), "0".into())],
            ..Inputs::default()
        };
        let msg = load(&mut [&mut d], &inputs).unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid timeout_ms from flag --demo.timeoutMs: must be at least 1"
        );
    }

    #[test]
    fn secrets_load_from_credentials_and_are_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("private-key"), "0xsecret\n").unwrap();
        let mut d = Demo::default();
        let inputs = Inputs {
            env: env(&[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]),
            ..Inputs::default()
        };
        let prov = load(&mut [&mut d], &inputs).unwrap();
        assert_eq!(d.private_key.expose(), "0xsecret");
        let shown = show(&[&d], &prov);
        assert!(!shown.contains("0xsecret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(!format!("{d:?}").contains("0xsecret"));
        assert!(!serde_json::to_string(&d).unwrap().contains("0xsecret"));
    }

    #[test]
    fn secret_from_env_file_variable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "0xabc").unwrap();
        let mut d = Demo::default();
        let inputs = Inputs {
            env: env(&[("DEMO_KEY_FILE", p.to_str().unwrap())]),
            ..Inputs::default()
        };
        load(&mut [&mut d], &inputs).unwrap();
        assert_eq!(d.private_key.expose(), "0xabc");
    }

    #[test]
    fn booleans_accept_common_spellings() {
        for (text, want) in [
            ("true", true),
            ("1", true),
            ("yes", true),
            ("off", false),
            ("FALSE", false),
        ] {
            assert_eq!(bool::from_text(text), Ok(want));
        }
        assert!(bool::from_text("maybe").is_err());
    }
}
