//! The process's own figures from `/proc/self` and the board's temperatures from
//! `/sys/class/thermal`, read at scrape time (a few small files; no crate needed for that).

use std::path::Path;

/// Clock ticks per second of the times in `/proc/<pid>/stat`: the kernel's USER_HZ, an ABI
/// constant of 100 on x86 and Arm (what `sysconf(_SC_CLK_TCK)` returns there).
const USER_HZ: f64 = 100.0;

/// What `/proc/self` says about roomd.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ProcessStats {
    /// User and system CPU time since the process started, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory (`VmRSS`), in bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: u64,
    /// Threads of the process.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit of open file descriptors; `None` when unlimited or unreadable.
    pub max_fds: Option<u64>,
    /// Start of the process, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// Reads `/proc/self`; `None` where it is not mounted or has an unexpected shape.
    pub(super) fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| field_after(&s, "btime"))?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        parse(&stat, &status, boot_time, &limits, open_fds)
    }
}

/// The figures from the texts of `stat`, `status` and `limits`, the boot time (`btime` of
/// `/proc/stat`) and the number of entries in `fd/`.
fn parse(
    stat: &str,
    status: &str,
    boot_time: u64,
    limits: &str,
    open_fds: u64,
) -> Option<ProcessStats> {
    // The command name in parentheses may hold spaces and parentheses: fields start after the
    // last `)`, with field 3 (state) first.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let utime = field(14)?;
    let stime = field(15)?;
    let threads = field(20)?;
    let start_ticks = field(22)?;
    let virtual_bytes = field(23)?;
    let resident_bytes = field_after(status, "VmRSS:")? * 1024;
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            l.trim_start_matches("Max open files")
                .split_whitespace()
                .next()
        })
        .and_then(|soft| soft.parse().ok());
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / USER_HZ,
        resident_bytes,
        virtual_bytes,
        threads,
        open_fds,
        max_fds,
        start_time_seconds: boot_time as f64 + start_ticks as f64 / USER_HZ,
    })
}

/// The number after `key` on the line that starts with it (`VmRSS:   1234 kB` → 1234).
fn field_after(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// One thermal zone of the board.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Temperature {
    /// The zone's directory name, e.g. `thermal_zone0`.
    pub zone: String,
    /// What the zone measures, as the driver names it (e.g. `x86_pkg_temp`, `cpu-thermal`).
    pub kind: String,
    /// Degrees Celsius.
    pub celsius: f64,
}

/// Every readable thermal zone under `dir` (`/sys/class/thermal`), sorted by zone; empty on
/// hardware without any (virtual machines, containers).
pub(super) fn temperatures(dir: &Path) -> Vec<Temperature> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut zones: Vec<Temperature> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let zone = entry.file_name().to_string_lossy().into_owned();
            if !zone.starts_with("thermal_zone") {
                return None;
            }
            // Millidegrees; a sensor that is off answers with an error.
            let milli: i64 = std::fs::read_to_string(entry.path().join("temp"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let kind = std::fs::read_to_string(entry.path().join("type"))
                .map(|t| t.trim().chars().take(64).collect())
                .unwrap_or_default();
            Some(Temperature {
                zone,
                kind,
                celsius: milli as f64 / 1000.0,
            })
        })
        .collect();
    zones.sort_by(|a, b| a.zone.cmp(&b.zone));
    zones
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (roomd (main) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
        250 130 0 0 20 0 9 0 123456 987654321 5000 18446744073709551615 1 1 0 0 0 0 0 4096 \
        17 0 0 0 0 0 0 0 0 0 0 0 0 0 0";

    #[test]
    fn parses_stat_status_and_limits() {
        let status = "Name:\troomd\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let stats = parse(STAT, status, 1_700_000_000, limits, 17).unwrap();
        assert_eq!(stats.cpu_seconds, 3.8);
        assert_eq!(stats.resident_bytes, 20480 * 1024);
        assert_eq!(stats.virtual_bytes, 987_654_321);
        assert_eq!(stats.threads, 9);
        assert_eq!(stats.open_fds, 17);
        assert_eq!(stats.max_fds, Some(1024));
        assert_eq!(stats.start_time_seconds, 1_700_000_000.0 + 1234.56);
    }

    #[test]
    fn unlimited_files_and_garbage() {
        let limits = "Max open files            unlimited            unlimited            files\n";
        let stats = parse(STAT, "VmRSS: 4 kB\n", 1, limits, 3).unwrap();
        assert_eq!(stats.max_fds, None);
        assert!(parse("garbage", "VmRSS: 4 kB\n", 1, "", 3).is_none());
        assert!(parse(STAT, "no rss here", 1, "", 3).is_none());
    }

    #[test]
    fn reads_this_process() {
        let stats = ProcessStats::read().expect("/proc/self is readable here");
        assert!(stats.resident_bytes > 0);
        assert!(stats.open_fds >= 3);
        assert!(stats.threads >= 1);
        assert!(stats.start_time_seconds > 1_600_000_000.0);
    }

    #[test]
    fn temperatures_from_a_thermal_tree() {
        let dir = tempfile::tempdir().unwrap();
        for (zone, kind, temp) in [
            ("thermal_zone1", "cpu-thermal\n", "48500\n"),
            ("thermal_zone0", "acpitz\n", "27800\n"),
        ] {
            let z = dir.path().join(zone);
            std::fs::create_dir(&z).unwrap();
            std::fs::write(z.join("type"), kind).unwrap();
            std::fs::write(z.join("temp"), temp).unwrap();
        }
        std::fs::create_dir(dir.path().join("cooling_device0")).unwrap();
        let off = dir.path().join("thermal_zone2");
        std::fs::create_dir(&off).unwrap();
        std::fs::write(off.join("type"), "off\n").unwrap();
        let zones = temperatures(dir.path());
        assert_eq!(
            zones,
            [
                Temperature {
                    zone: "thermal_zone0".into(),
                    kind: "acpitz".into(),
                    celsius: 27.8
                },
                Temperature {
                    zone: "thermal_zone1".into(),
                    kind: "cpu-thermal".into(),
                    celsius: 48.5
                },
            ]
        );
        assert!(temperatures(&dir.path().join("absent")).is_empty());
    }
}
