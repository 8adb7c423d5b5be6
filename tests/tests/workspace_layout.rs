//! The crate graph is part of the design (README, "Repository layout"): crates are cut where
//! dependencies and trust change. These checks read cargo's resolved graph (`cargo metadata`,
//! offline) and fail when a dependency crosses a line it should not: roomctl runs on an
//! integrator's laptop without GStreamer or TPM libraries, the model is plain data, and only the
//! crates that need key material or media reach the TPM or GStreamer.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Crates whose presence means a C library must be installed to build.
const GSTREAMER: &str = "gstreamer";
const TPM: &str = "tss-esapi";
const HTTP_SERVER: &str = "actix-web";

struct Graph {
    /// package id → (name, ids of its normal dependencies)
    nodes: HashMap<String, (String, Vec<String>)>,
    by_name: HashMap<String, String>,
}

impl Graph {
    fn load() -> Graph {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        // Only this platform's dependencies: the others (Windows console crates) are not
        // downloaded by a build here, and --offline must not need them.
        let host = host_triple();
        let output = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--offline"])
            .args(["--filter-platform", &host])
            .current_dir(&root)
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
        let names: HashMap<String, String> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap_or_default().to_owned(),
                    p["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let mut nodes = HashMap::new();
        for node in metadata["resolve"]["nodes"].as_array().expect("resolve") {
            let id = node["id"].as_str().unwrap_or_default().to_owned();
            // Only what ends up in the built library or binary: dev and build dependencies of a
            // crate are not shipped with it.
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|k| k["kind"].is_null())
                })
                .filter_map(|d| d["pkg"].as_str().map(str::to_owned))
                .collect();
            nodes.insert(id.clone(), (names[&id].clone(), deps));
        }
        let by_name = nodes
            .iter()
            .map(|(id, (name, _))| (name.clone(), id.clone()))
            .collect();
        Graph { nodes, by_name }
    }

    /// Every package `name` pulls in, itself excluded.
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let start = self
            .by_name
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not a workspace package"));
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.clone()];
        let mut names = BTreeSet::new();
        while let Some(id) = todo.pop() {
            for dep in &self.nodes[&id].1 {
                if seen.insert(dep.clone()) {
                    names.insert(self.nodes[dep].0.clone());
                    todo.push(dep.clone());
                }
            }
        }
        names
    }

    fn roomd_crates_under(&self, name: &str) -> BTreeSet<String> {
        self.closure(name)
            .into_iter()
            .filter(|n| n.starts_with("roomd"))
            .collect()
    }
}

/// The triple rustc builds for here, e.g. `x86_64-unknown-linux-gnu`.
fn host_triple() -> String {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn roomctl_needs_neither_gstreamer_nor_the_tpm_stack() {
    let graph = Graph::load();
    let under = graph.closure("roomctl");
    for forbidden in [GSTREAMER, TPM, HTTP_SERVER] {
        assert!(
            !under.contains(forbidden),
            "roomctl depends on {forbidden}: {under:?}"
        );
    }
    assert_eq!(
        graph.roomd_crates_under("roomctl"),
        set(&["roomd-attestation", "roomd-base"])
    );
}

#[test]
fn each_crate_depends_only_on_the_crates_below_it() {
    let graph = Graph::load();
    let expected: [(&str, &[&str]); 17] = [
        ("roomd-base", &[]),
        ("roomd-attestation", &["roomd-base"]),
        ("roomd-model", &["roomd-base"]),
        ("roomd-hardware", &["roomd-base", "roomd-model"]),
        (
            "roomd-identity",
            &["roomd-attestation", "roomd-base", "roomd-model"],
        ),
        (
            "roomd-core",
            &["roomd-base", "roomd-hardware", "roomd-model"],
        ),
        (
            "roomd-media",
            &[
                "roomd-base",
                "roomd-core",
                "roomd-e2ee",
                "roomd-hardware",
                "roomd-model",
            ],
        ),
        (
            "roomd-meetings",
            &[
                "roomd-attestation",
                "roomd-base",
                "roomd-core",
                "roomd-e2ee",
                "roomd-hardware",
                "roomd-identity",
                "roomd-media",
                "roomd-model",
            ],
        ),
        (
            "roomd-update",
            &["roomd-base", "roomd-core", "roomd-hardware", "roomd-model"],
        ),
        (
            "roomd-system",
            &["roomd-base", "roomd-core", "roomd-hardware", "roomd-model"],
        ),
        (
            "roomd-api",
            &[
                "roomd-attestation",
                "roomd-base",
                "roomd-core",
                "roomd-e2ee",
                "roomd-hardware",
                "roomd-identity",
                "roomd-media",
                "roomd-meetings",
                "roomd-model",
                "roomd-update",
            ],
        ),
        // SIP: signalling, SDP, content floor control (BFCP) and its own media graph;
        // meetings reach it through a trait.
        (
            "roomd-sip",
            &[
                "roomd-attestation",
                "roomd-base",
                "roomd-bfcp",
                "roomd-core",
                "roomd-e2ee",
                "roomd-hardware",
                "roomd-identity",
                "roomd-media",
                "roomd-meetings",
                "roomd-model",
            ],
        ),
        // End-to-end encryption is a leaf: frames, keys and elements, no room state.
        ("roomd-e2ee", &[]),
        // BFCP floor control is a leaf: protocol and sessions, which SIP drives.
        ("roomd-bfcp", &[]),
        // Provisioning applies a bundle through the core and enrols the identity; no media,
        // no API.
        (
            "roomd-provisioning",
            &[
                "roomd-attestation",
                "roomd-base",
                "roomd-core",
                "roomd-hardware",
                "roomd-identity",
                "roomd-model",
            ],
        ),
        // The fleet channel runs requests with the API's parsing, permissions and audit.
        (
            "roomd-fleet",
            &[
                "roomd-api",
                "roomd-attestation",
                "roomd-base",
                "roomd-core",
                "roomd-e2ee",
                "roomd-hardware",
                "roomd-identity",
                "roomd-media",
                "roomd-meetings",
                "roomd-model",
                "roomd-update",
            ],
        ),
        // The D-Bus interface checks and records its callers with the API's permission table
        // and audit log, so it sits on top of the API.
        (
            "roomd-dbus",
            &[
                "roomd-api",
                "roomd-attestation",
                "roomd-base",
                "roomd-core",
                "roomd-e2ee",
                "roomd-hardware",
                "roomd-identity",
                "roomd-media",
                "roomd-meetings",
                "roomd-model",
                "roomd-update",
            ],
        ),
    ];
    for (name, below) in expected {
        assert_eq!(graph.roomd_crates_under(name), set(below), "{name}");
    }
}

#[test]
fn only_media_and_identity_crates_reach_the_c_libraries() {
    let graph = Graph::load();
    for plain in ["roomd-base", "roomd-model", "roomd-hardware", "roomd-core"] {
        let under = graph.closure(plain);
        for forbidden in [GSTREAMER, TPM, HTTP_SERVER] {
            assert!(!under.contains(forbidden), "{plain} depends on {forbidden}");
        }
    }
    assert!(!graph.closure("roomd-media").contains(TPM));
    // The update worker speaks D-Bus only: no media, no TPM, no HTTP server.
    let update = graph.closure("roomd-update");
    for forbidden in [GSTREAMER, TPM, HTTP_SERVER] {
        assert!(
            !update.contains(forbidden),
            "roomd-update depends on {forbidden}"
        );
    }
    // The host worker likewise: D-Bus and files, nothing else.
    let system = graph.closure("roomd-system");
    for forbidden in [GSTREAMER, TPM, HTTP_SERVER] {
        assert!(
            !system.contains(forbidden),
            "roomd-system depends on {forbidden}"
        );
    }
    // The room core stays free of D-Bus: D-Bus lives at the edges (roomd-update, roomd-system,
    // roomd-dbus).
    for plain in ["roomd-base", "roomd-model", "roomd-hardware", "roomd-core"] {
        assert!(
            !graph.closure(plain).contains("zbus"),
            "{plain} depends on zbus"
        );
    }
    assert!(!graph.closure("roomd-identity").contains(GSTREAMER));
    // Provisioning fetches and enrols; it neither serves HTTP nor touches media.
    let provisioning = graph.closure("roomd-provisioning");
    for forbidden in [GSTREAMER, HTTP_SERVER] {
        assert!(
            !provisioning.contains(forbidden),
            "roomd-provisioning depends on {forbidden}"
        );
    }
    // Floor control is protocol only: no media, no TPM, no HTTP server.
    let bfcp = graph.closure("roomd-bfcp");
    for forbidden in [GSTREAMER, TPM, HTTP_SERVER] {
        assert!(
            !bfcp.contains(forbidden),
            "roomd-bfcp depends on {forbidden}"
        );
    }
    // Frame encryption needs GStreamer and nothing of the TPM or the API.
    let e2ee = graph.closure("roomd-e2ee");
    for forbidden in [TPM, HTTP_SERVER] {
        assert!(
            !e2ee.contains(forbidden),
            "roomd-e2ee depends on {forbidden}"
        );
    }
}
