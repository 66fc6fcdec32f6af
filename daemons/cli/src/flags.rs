//! Turns settings structs into command-line flags (the seeds' style:
//! `--proverBroker.proverBrokerJobTimeoutMs 5000`) and back into config inputs.

use std::collections::HashSet;
use std::path::PathBuf;

use aztec_prover_common::config::{self, ConfigError, FieldSpec, Inputs, Provenance, Settings};
use clap::{Arg, ArgAction, ArgMatches, Command};

/// Where daemons look for their config file unless `--config` is given.
pub const CONFIG_DIR: &str = "/etc/aztec-prover";

fn help_for(f: &FieldSpec, default: &str) -> String {
    let env = if f.env.is_empty() {
        String::new()
    } else {
        format!(" [env: {}]", f.env.join(", "))
    };
    let default = if f.secret {
        String::new()
    } else {
        format!(" [default: {default}]")
    };
    let secret = if f.secret {
        format!(
            " Also read from $CREDENTIALS_DIRECTORY/{} or <ENV>_FILE.",
            config::credential_name(f.key)
        )
    } else {
        String::new()
    };
    format!("{}{secret}{env}{default}", f.help)
}

/// Adds one flag per field of `groups` (skipping flags already present) and `--config`.
pub fn with_settings(cmd: Command, groups: &[&dyn Settings]) -> Command {
    // A flag given twice takes the last value, as later layers win everywhere else.
    let mut cmd = cmd.args_override_self(true);
    let mut seen: HashSet<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    if seen.insert("config".to_string()) {
        cmd = cmd.arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML config file [default: /etc/aztec-prover/<daemon>.toml if it exists]"),
        );
    }
    for g in groups {
        for f in g.fields() {
            if !seen.insert(f.flag.to_string()) {
                continue;
            }
            let default = g.render(f.key).unwrap_or_default();
            let mut arg = Arg::new(f.flag)
                .long(f.flag)
                .value_name("VALUE")
                .action(ArgAction::Set)
                .help(help_for(f, &default))
                .help_heading(heading(f.flag));
            if f.boolean {
                arg = arg.num_args(0..=1).default_missing_value("true");
            }
            cmd = cmd.arg(arg);
        }
    }
    cmd
}

fn heading(flag: &str) -> &'static str {
    match flag.split_once('.') {
        Some(("proverBroker", _)) => "Prover broker",
        Some(("proverAgent", _)) => "Prover agent",
        Some(("proverNode", _)) => "Prover node",
        Some(("p2p", _)) => "P2P",
        _ => "General",
    }
}

/// The flags the user gave, for the fields of `groups`.
pub fn given(matches: &ArgMatches, groups: &[&dyn Settings]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in groups {
        for f in g.fields() {
            if matches!(
                matches.value_source(f.flag),
                Some(clap::parser::ValueSource::CommandLine)
            ) && let Some(v) = matches.get_one::<String>(f.flag)
            {
                out.push((f.flag.to_string(), v.clone()));
            }
        }
    }
    out
}

/// The config inputs for `daemon` from the command line and the process environment.
pub fn inputs(daemon: &str, matches: &ArgMatches, groups: &[&dyn Settings]) -> Inputs {
    let (file, required) = match matches.get_one::<PathBuf>("config") {
        Some(p) => (p.clone(), true),
        None => (
            PathBuf::from(CONFIG_DIR).join(format!("{daemon}.toml")),
            false,
        ),
    };
    Inputs::from_process(Some(file), required, given(matches, groups))
}

/// Loads `groups` from `inputs`.
#[allow(clippy::result_large_err)] // as config::load
pub fn load(groups: &mut [&mut dyn Settings], inputs: &Inputs) -> Result<Provenance, ConfigError> {
    config::load(groups, inputs)
}
