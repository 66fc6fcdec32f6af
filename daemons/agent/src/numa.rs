//! Where an agent's threads run. The topology comes from
//! `<sysfs>/devices/system/node/node*/cpulist`; instance N of the template
//! unit takes node (N-1) mod nodes, sizes its pools to that node's CPUs and
//! pins its threads there, so the memory they first touch (keys, witness,
//! buckets) is allocated on that node too. Config can name CPUs instead, or
//! turn pinning off.

use std::path::Path;

/// What the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affinity {
    /// One NUMA node per instance.
    Numa,
    /// No pinning.
    Off,
    /// These CPUs.
    Cpus(Vec<u32>),
}

impl Affinity {
    /// Parses `numa`, `off` or a CPU list.
    pub fn parse(s: &str) -> Result<Affinity, String> {
        match s.trim() {
            "numa" | "auto" => Ok(Affinity::Numa),
            "off" | "none" | "" => Ok(Affinity::Off),
            list => parse_cpulist(list)
                .map(Affinity::Cpus)
                .map_err(|e| format!("{e} (expected numa, off or a CPU list such as 0-7,16-23)")),
        }
    }
}

/// The CPUs this process may run on (its affinity mask): the only ids its
/// threads can be pinned to.
pub fn allowed_cpus() -> Vec<u32> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id as u32)
        .collect()
}

/// Parses a kernel CPU list (`0-3,8,10-11`).
pub fn parse_cpulist(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("{x:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 65_536 {
                    return Err(format!("bad CPU range {part:?}"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if out.is_empty() {
        return Err("empty CPU list".into());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// NUMA nodes and their CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// `(node id, cpus)`, by node id.
    pub nodes: Vec<(u32, Vec<u32>)>,
}

impl Topology {
    /// Reads the topology under `sysfs_root`; a machine without NUMA
    /// information is one node holding every CPU.
    pub fn read(sysfs_root: &Path) -> Topology {
        let dir = sysfs_root.join("devices/system/node");
        let mut nodes = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = name
                    .strip_prefix("node")
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let Ok(list) = std::fs::read_to_string(e.path().join("cpulist")) else {
                    continue;
                };
                if let Ok(cpus) = parse_cpulist(&list) {
                    nodes.push((id, cpus));
                }
            }
        }
        nodes.sort();
        if nodes.is_empty() {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            nodes.push((0, (0..n).collect()));
        }
        Topology { nodes }
    }
}

/// Where this process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The NUMA node, when pinned to one.
    pub node: Option<u32>,
    /// The CPUs its threads use.
    pub cpus: Vec<u32>,
    /// Whether threads are pinned to `cpus`.
    pub pinned: bool,
}

impl Placement {
    /// One line for the log.
    pub fn describe(&self) -> String {
        let cpus = render_cpulist(&self.cpus);
        match (self.node, self.pinned) {
            (Some(n), true) => format!("NUMA node {n}, CPUs {cpus} (pinned)"),
            (None, true) => format!("CPUs {cpus} (pinned)"),
            _ => format!("{} CPUs, not pinned", self.cpus.len()),
        }
    }
}

/// Renders a CPU list compactly (`0-3,8`).
pub fn render_cpulist(cpus: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The placement of `instance` (0: not a template instance).
pub fn place(affinity: &Affinity, topo: &Topology, instance: u32) -> Placement {
    let all: Vec<u32> = {
        let mut v: Vec<u32> = topo
            .nodes
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        v.sort_unstable();
        v
    };
    match affinity {
        Affinity::Off => Placement {
            node: None,
            cpus: all,
            pinned: false,
        },
        Affinity::Cpus(c) => Placement {
            node: None,
            cpus: c.clone(),
            pinned: true,
        },
        Affinity::Numa if instance == 0 || topo.nodes.len() < 2 => Placement {
            node: None,
            cpus: all,
            pinned: false,
        },
        Affinity::Numa => {
            let (id, cpus) = &topo.nodes[(instance as usize - 1) % topo.nodes.len()];
            Placement {
                node: Some(*id),
                cpus: cpus.clone(),
                pinned: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(nodes: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (i, list) in nodes.iter().enumerate() {
            let n = d.path().join(format!("devices/system/node/node{i}"));
            std::fs::create_dir_all(&n).unwrap();
            std::fs::write(n.join("cpulist"), format!("{list}\n")).unwrap();
        }
        // Entries that are not nodes are ignored.
        std::fs::write(d.path().join("devices/system/node/possible"), "0-9\n").unwrap();
        d
    }

    #[test]
    fn two_and_four_node_machines_spread_instances_round_robin() {
        let two = fake(&["0-7,16-23", "8-15,24-31"]);
        let t = Topology::read(two.path());
        assert_eq!(t.nodes.len(), 2);
        let p1 = place(&Affinity::Numa, &t, 1);
        assert_eq!((p1.node, p1.cpus.len(), p1.pinned), (Some(0), 16, true));
        assert_eq!(render_cpulist(&p1.cpus), "0-7,16-23");
        assert_eq!(place(&Affinity::Numa, &t, 2).node, Some(1));
        assert_eq!(place(&Affinity::Numa, &t, 3).node, Some(0));

        let four = fake(&["0-3", "4-7", "8-11", "12-15"]);
        let t = Topology::read(four.path());
        let nodes: Vec<Option<u32>> = (1..=5)
            .map(|i| place(&Affinity::Numa, &t, i).node)
            .collect();
        assert_eq!(nodes, [Some(0), Some(1), Some(2), Some(3), Some(0)]);
        assert_eq!(place(&Affinity::Numa, &t, 4).cpus, vec![12, 13, 14, 15]);
        // Not an instance, or pinning off: every CPU, unpinned.
        assert!(!place(&Affinity::Numa, &t, 0).pinned);
        assert_eq!(place(&Affinity::Off, &t, 2).cpus.len(), 16);
        // An explicit list wins.
        let p = place(&Affinity::parse("2,5-6").unwrap(), &t, 3);
        assert_eq!((p.cpus, p.pinned, p.node), (vec![2, 5, 6], true, None));
    }

    #[test]
    fn cpu_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_cpulist("0-2,5,4").unwrap(), vec![0, 1, 2, 4, 5]);
        assert!(parse_cpulist("3-1").is_err());
        assert!(parse_cpulist("x").is_err());
        assert!(Affinity::parse("0-").is_err());
        let none = tempfile::tempdir().unwrap();
        assert_eq!(Topology::read(none.path()).nodes.len(), 1);
    }
}
