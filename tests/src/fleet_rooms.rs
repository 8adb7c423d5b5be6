//! Several real rooms on one fleet broker, for the rollout tests: a [`Mosquitto`] with the ACL of
//! docs/fleet.md, and per room a real roomd with its device key in its own [`Swtpm`], its own
//! [`Rauc`] service with file slots, and the fleet channel to the broker (the setup of
//! `fleet_mqtt.rs`, for many rooms). Every RAUC trusts the first room's keyring, so that one
//! bundle signed with [`Signer::Trusted`] of the first rig installs on every room.
//!
//! The fleet role is the spec's (`admin` for a firmware update, which needs the FirmwareUpdate
//! permission), and every room downloads bundles from 127.0.0.1 under `meeting.ca_file`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::mosquitto::{FleetCa, Mosquitto, MqttClient};
use crate::rauc::Rauc;
use crate::{HarnessError, RoomctlOutput, Roomd, Swtpm, roomctl_bin};

/// A room to start: its id (also `system.name`, the CN of its device certificate), its firmware
/// image's version and its security floor, and its `fleet.role`.
pub struct RoomSpec {
    pub id: &'static str,
    pub version: &'static str,
    pub floor: &'static str,
    pub role: &'static str,
}

impl RoomSpec {
    /// A room whose fleet role is `admin` (what a firmware update needs).
    pub fn admin(id: &'static str, version: &'static str, floor: &'static str) -> RoomSpec {
        RoomSpec {
            id,
            version,
            floor,
            role: "admin",
        }
    }
}

/// One room of a [`Fleet`]. Fields drop in order: roomd before its RAUC and TPM.
pub struct FleetRoom {
    pub id: String,
    pub roomd: Roomd,
    pub rauc: Rauc,
    _tpm: Swtpm,
}

/// A broker, its fleet manager `fleet-admin` and the rooms.
pub struct Fleet {
    pub rooms: Vec<FleetRoom>,
    pub admin: MqttClient,
    pub broker: Mosquitto,
    pub ca: FleetCa,
}

impl Fleet {
    /// Starts the broker and the rooms, then makes the broker trust the rooms' self-signed
    /// device certificates (a restart) and waits until every room is online with a status.
    /// `meeting_ca` is the CA file of the servers bundles come from.
    pub fn start(specs: &[RoomSpec], meeting_ca: &Path) -> Result<Fleet, HarnessError> {
        let ca = FleetCa::new()?;
        let mut broker = Mosquitto::start(&ca, "")?;
        let admin = broker.client(&ca, "fleet-admin")?;
        let mut rooms: Vec<FleetRoom> = Vec::new();
        let mut keyring: Option<PathBuf> = None;
        for spec in specs {
            let rauc = match &keyring {
                None => Rauc::start()?,
                Some(first) => Rauc::start_with(|root| {
                    let _ = std::fs::copy(first, root.join("ca.crt"));
                })?,
            };
            keyring.get_or_insert_with(|| rauc.dir().join("ca.crt"));
            let tpm = Swtpm::start()?;
            let os_release = rauc.os_release("os-release", Some(spec.version), Some(spec.floor));
            let config = format!(
                "{}\n[system]\nname = \"{id}\"\n\n\
                 [fleet]\nbroker = \"{broker}\"\nca_file = \"{fleet_ca}\"\nrole = \"{role}\"\n\
                 backoff_min_ms = 200\nbackoff_max_ms = 1000\nstatus_interval_ms = 200\n\n\
                 [update]\nrauc_bus = \"{bus}\"\nos_release = \"{os}\"\n\n\
                 [meeting]\nallowed_servers = [\"127.0.0.1\"]\nca_file = \"{meeting_ca}\"\n",
                tpm.identity_toml(),
                id = spec.id,
                role = spec.role,
                broker = broker.url(),
                fleet_ca = broker.ca_file().display(),
                bus = rauc.bus_address(),
                os = os_release.display(),
                meeting_ca = meeting_ca.display(),
            );
            let roomd = Roomd::start_claimed(&config)?;
            rooms.push(FleetRoom {
                id: spec.id.to_owned(),
                roomd,
                rauc,
                _tpm: tpm,
            });
        }
        let mut trust = String::new();
        for room in &rooms {
            let pem = std::fs::read_to_string(room.roomd.cert_path())
                .map_err(|e| HarnessError::io("cannot read a device certificate", e))?;
            trust.push_str(&pem);
        }
        broker.trust(&ca, &trust)?;
        broker.restart()?;
        let fleet = Fleet {
            rooms,
            admin,
            broker,
            ca,
        };
        fleet.wait_online(Duration::from_secs(60))?;
        Ok(fleet)
    }

    pub fn room(&self, id: &str) -> &FleetRoom {
        self.rooms
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no room {id}"))
    }

    /// Runs `roomctl fleet --broker … ARGS` as the fleet manager, ended after `timeout`.
    pub fn roomctl(&self, args: &[&str], timeout: Duration) -> Result<RoomctlOutput, HarnessError> {
        let output = Command::new("timeout")
            .arg(timeout.as_secs().max(1).to_string())
            .arg(roomctl_bin()?)
            .arg("fleet")
            .args(["--broker", &self.broker.url()])
            .arg("--ca")
            .arg(&self.admin.ca)
            .arg("--cert")
            .arg(&self.admin.cert)
            .arg("--key")
            .arg(&self.admin.key)
            .args(args)
            .env_remove("ROOMCTL_TOKEN")
            .output()
            .map_err(|e| HarnessError::io("cannot run roomctl", e))?;
        Ok(RoomctlOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// `roomctl fleet list --format json` until every room is listed online with health `ok`.
    pub fn wait_online(&self, timeout: Duration) -> Result<Value, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.roomctl(&["list", "--format", "json"], Duration::from_secs(20))?;
            let listed: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
            let ready = self.rooms.iter().all(|room| {
                listed.as_array().is_some_and(|list| {
                    list.iter().any(|r| {
                        r["room"] == room.id.as_str() && r["online"] == true && r["health"] == "ok"
                    })
                })
            });
            if ready {
                return Ok(listed);
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    what: format!(
                        "every room online with health ok; last list: {} {}; broker: {}",
                        out.stdout,
                        out.stderr,
                        self.broker.log()
                    ),
                    timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
