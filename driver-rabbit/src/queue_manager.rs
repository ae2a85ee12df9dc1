//! oslo.messaging's queue manager (`QManager` of the reference's rabbit driver,
//! `[oslo_messaging_rabbit] use_queue_manager`): queue-name suffixes that stay the same
//! across restarts, so a restarted service takes over its earlier queues instead of
//! creating new, randomly named ones and leaving the old ones to expire, which at scale
//! costs the broker a lot.
//!
//! A suffix is `<hostname>:<processname>:<N>`, with `hostname` and `processname` from
//! the options of those names (defaults: the machine's host name, and the file name of
//! the program as Python's `os.path.basename(sys.argv[0])`). The driver builds with it:
//!
//! - the reply queue `reply_<hostname>:<processname>:<N>`;
//! - fanout queues `<topic>_fanout_<hostname>:<processname>:<N>`. With the queue
//!   manager these are not deleted when the service stops, as their names are reused
//!   after a restart; their `x-expires` removes the ones that are not.
//!
//! `N` counts, from 1, the names handed out by the processes of one process group
//! since the group started. It is kept in the counter file
//! `/dev/shm/<hostname>_<processname>_qmanager` as one line `<pgid>:<N>:<start_time>`,
//! the same file and format as the reference, where `start_time` is the start time of
//! the group's leader in clock ticks since boot (field 22 of `/proc/<pgid>/stat`).
//! When the file was written by another group, or by an earlier group that had the
//! same id (containers reuse pids from 1 on every start), the count starts over at 1:
//! the service restarted, and its names are handed out again in the same order.
//!
//! The reference serializes readers and writers of the file with an oslo.concurrency
//! external lock in a lock directory a Rust process cannot know, so here the counter
//! file itself is locked (`flock`) while it is read and rewritten. A Python and a Rust
//! service with the same host and process names would not exclude each other, but
//! they do not share a process group either, so they never share a count anyway.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use messaging_core::config;

/// Where the reference keeps counter files: memory backed, so they vanish on reboot,
/// when every count has to start over anyway.
const SHM_DIR: &str = "/dev/shm";

/// The process name used when the option is empty and the program's name unknown.
const FALLBACK_PROCESSNAME: &str = "rust";

/// Stable queue-name suffixes across restarts (oslo's queue manager).
#[derive(Debug, Clone)]
pub(crate) struct QueueManager {
    /// The first part of every name.
    hostname: String,
    /// The second part of every name.
    processname: String,
    /// The counter file.
    path: PathBuf,
    /// Our process group id, or our pid when the group id is 0 (a group led from
    /// outside our pid namespace): identifies the processes that share one count.
    group: u32,
    /// The start time of `group`'s process in clock ticks since boot, which tells a
    /// new group from an earlier one with the same id.
    start_time: u64,
}

impl QueueManager {
    /// For this process, from the options' hostname and processname (empty → the
    /// machine's host name, the program's file name), counting in
    /// `/dev/shm/<hostname>_<processname>_qmanager` as the reference does.
    ///
    /// Where there is no `/dev/shm` the counter file goes to the system's temporary
    /// directory instead: it then survives reboots, which is harmless since the boot
    /// changes the process group's start time and so restarts the count.
    ///
    /// Fails where `/proc/self/stat` cannot be read (not Linux): the driver then refuses
    /// the configuration, naming `use_queue_manager`.
    pub(crate) fn new(hostname: &str, processname: &str) -> io::Result<QueueManager> {
        let shm = Path::new(SHM_DIR);
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        QueueManager::in_dir(&dir, hostname, processname)
    }

    /// Same as [`QueueManager::new`], with the counter file in `dir` instead of
    /// `/dev/shm` (tests).
    pub(crate) fn in_dir(
        dir: &Path,
        hostname: &str,
        processname: &str,
    ) -> io::Result<QueueManager> {
        let hostname = if hostname.is_empty() {
            config::local_hostname()
        } else {
            hostname.to_owned()
        };
        let processname = if processname.is_empty() {
            default_processname()
        } else {
            processname.to_owned()
        };
        let own_stat = std::fs::read_to_string("/proc/self/stat")?;
        let pgid = stat_field(&own_stat, 5)
            .and_then(|field| field.parse::<u32>().ok())
            .ok_or_else(|| invalid_data("no process group in /proc/self/stat"))?;
        let group = if pgid == 0 { std::process::id() } else { pgid };
        let start_time = start_time_of(group, &own_stat)?;
        let path = dir.join(format!("{hostname}_{processname}_qmanager"));
        Ok(QueueManager {
            hostname,
            processname,
            path,
            group,
            start_time,
        })
    }

    /// The next `<hostname>:<processname>:<N>`: under an exclusive lock of the counter
    /// file, continues its count when our process group wrote it, and starts over at 1
    /// when it is missing, unreadable, or from another (earlier) group.
    pub(crate) fn next_name(&self) -> io::Result<String> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)?;
        // Released when `file` is closed, at the end of this function.
        file.lock()?;
        let mut content = Vec::new();
        file.read_to_end(&mut content)?;
        let counter = match parse_counter_file(&String::from_utf8_lossy(&content)) {
            // A start time of 0 (the group's leader had exited when it was read) matches
            // any: the processes of one group must not disagree on whether it restarted.
            Some((group, counter, start_time))
                if group == self.group
                    && (start_time == self.start_time
                        || start_time == 0
                        || self.start_time == 0) =>
            {
                counter.saturating_add(1)
            }
            _ => 1,
        };
        // Written over from the start, then cut to length: a crash between the two never
        // leaves the file empty (which would restart the count and repeat names).
        let line = format!("{}:{counter}:{}", self.group, self.start_time);
        file.seek(SeekFrom::Start(0))?;
        file.write_all(line.as_bytes())?;
        file.set_len(line.len() as u64)?;
        file.flush()?;
        Ok(format!("{}:{}:{counter}", self.hostname, self.processname))
    }
}

/// The program's file name ([`config::process_name`]), or `rust` when there is none.
fn default_processname() -> String {
    Some(config::process_name())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| FALLBACK_PROCESSNAME.to_owned())
}

/// The start time (clock ticks since boot) of process `pid`, from its
/// `/proc/<pid>/stat`; `own_stat` is our own `/proc/self/stat`, used when `pid` is us.
///
/// When the group's leader has exited its stat is gone; the start time is then 0, so
/// the group is told by its id alone, as before the reference added start times:
/// the processes still left in the group keep sharing one count.
fn start_time_of(pid: u32, own_stat: &str) -> io::Result<u64> {
    let stat = if pid == std::process::id() {
        own_stat.to_owned()
    } else {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error),
        }
    };
    stat_field(&stat, 22)
        .and_then(|field| field.parse::<u64>().ok())
        .ok_or_else(|| invalid_data("no start time in /proc/<pid>/stat"))
}

/// Field `n` (1-based, as in proc(5); `n` ≥ 3) of a `/proc/<pid>/stat` line. The
/// second field, the command name in parentheses, may itself hold spaces and
/// parentheses, so the fields are counted from after the last `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after_comm = stat.get(stat.rfind(')')? + 1..)?;
    after_comm.split_whitespace().nth(n.checked_sub(3)?)
}

/// The `(pgid, counter, start_time)` of a counter file's content, or `None` when it is
/// not one (a trailing newline is accepted).
fn parse_counter_file(content: &str) -> Option<(u32, u64, u64)> {
    let mut parts = content.trim_end().split(':');
    let group = parts.next()?.parse().ok()?;
    let counter = parts.next()?.parse().ok()?;
    let start_time = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((group, counter, start_time))
}

/// An error for a `/proc` file that does not read as proc(5) says.
fn invalid_data(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or(0);
            let unique = format!(
                "qmanager-test-{}-{nanos}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let dir = std::env::temp_dir().join(unique);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn manager(dir: &TempDir) -> QueueManager {
        QueueManager::in_dir(&dir.0, "host", "proc").unwrap()
    }

    #[test]
    fn counts_from_one_within_a_process() {
        let dir = TempDir::new();
        let qm = manager(&dir);
        assert_eq!(qm.next_name().unwrap(), "host:proc:1");
        assert_eq!(qm.next_name().unwrap(), "host:proc:2");
        assert_eq!(qm.next_name().unwrap(), "host:proc:3");
        // A second manager of the same process continues the same count.
        assert_eq!(manager(&dir).next_name().unwrap(), "host:proc:4");
    }

    #[test]
    fn counter_file_is_named_and_written_as_the_reference() {
        let dir = TempDir::new();
        let qm = manager(&dir);
        assert_eq!(qm.path, dir.0.join("host_proc_qmanager"));
        qm.next_name().unwrap();
        qm.next_name().unwrap();
        let content = std::fs::read_to_string(&qm.path).unwrap();
        assert_eq!(content, format!("{}:2:{}", qm.group, qm.start_time));
    }

    #[test]
    fn continues_our_own_count_with_a_trailing_newline() {
        let dir = TempDir::new();
        let qm = manager(&dir);
        std::fs::write(&qm.path, format!("{}:41:{}\n", qm.group, qm.start_time)).unwrap();
        assert_eq!(qm.next_name().unwrap(), "host:proc:42");
    }

    #[test]
    fn starts_over_after_another_group() {
        let dir = TempDir::new();
        let qm = manager(&dir);
        let others = [
            format!("{}:7:{}", qm.group.wrapping_add(1), qm.start_time),
            format!("{}:7:{}", qm.group, qm.start_time.wrapping_add(1)),
        ];
        for other in others {
            std::fs::write(&qm.path, other).unwrap();
            assert_eq!(qm.next_name().unwrap(), "host:proc:1");
            assert_eq!(qm.next_name().unwrap(), "host:proc:2");
        }
    }

    #[test]
    fn starts_over_after_an_unparsable_file() {
        let dir = TempDir::new();
        let qm = manager(&dir);
        let garbage: [&[u8]; 6] = [
            b"",
            b"garbage",
            b"1:2",
            b"a:b:c",
            b"1:2:3:4",
            b"\xff\xfe:1:2",
        ];
        for content in garbage {
            std::fs::write(&qm.path, content).unwrap();
            assert_eq!(qm.next_name().unwrap(), "host:proc:1");
        }
        // Our own count parses, whatever was there before.
        assert_eq!(qm.next_name().unwrap(), "host:proc:2");
    }

    #[test]
    fn names_are_host_process_counter() {
        let dir = TempDir::new();
        let qm = QueueManager::in_dir(&dir.0, "", "").unwrap();
        assert_eq!(qm.hostname, config::local_hostname());
        assert_eq!(qm.processname, default_processname());
        let name = qm.next_name().unwrap();
        let parts: Vec<&str> = name.rsplitn(2, ':').collect();
        assert_eq!(parts, ["1", &format!("{}:{}", qm.hostname, qm.processname)]);
        assert!(!qm.hostname.is_empty());
        assert!(!qm.processname.is_empty());
    }

    #[test]
    fn concurrent_callers_get_distinct_names() {
        let dir = TempDir::new();
        let qm = manager(&dir);
        let mut names: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..25)
                            .map(|_| manager(&dir).next_name().unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap())
                .collect()
        });
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 100);
        assert_eq!(qm.next_name().unwrap(), "host:proc:101");
    }

    #[test]
    fn uses_our_group_and_its_start_time() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let pgid: u32 = stat_field(&stat, 5).unwrap().parse().unwrap();
        let dir = TempDir::new();
        let qm = manager(&dir);
        let group = if pgid != 0 { pgid } else { std::process::id() };
        assert_eq!(qm.group, group);
        if let Ok(group_stat) = std::fs::read_to_string(format!("/proc/{group}/stat")) {
            let start_time: u64 = stat_field(&group_stat, 22).unwrap().parse().unwrap();
            assert_eq!(qm.start_time, start_time);
            assert!(start_time > 0);
        }
    }

    #[test]
    fn stat_fields_count_from_after_the_last_parenthesis() {
        let mut stat = String::from("1234 ((a) b (c)) S 1 77");
        for field in 6..=21 {
            stat.push_str(&format!(" {field}"));
        }
        stat.push_str(" 987654 42 43\n");
        assert_eq!(stat_field(&stat, 3), Some("S"));
        assert_eq!(stat_field(&stat, 5), Some("77"));
        assert_eq!(stat_field(&stat, 21), Some("21"));
        assert_eq!(stat_field(&stat, 22), Some("987654"));
        assert_eq!(stat_field(&stat, 99), None);
        assert_eq!(stat_field(&stat, 2), None);
        assert_eq!(stat_field("1234 no parenthesis", 3), None);
    }

    #[test]
    fn parses_counter_files() {
        assert_eq!(parse_counter_file("12:3:456"), Some((12, 3, 456)));
        assert_eq!(parse_counter_file("12:3:456\n"), Some((12, 3, 456)));
        assert_eq!(parse_counter_file("12:3"), None);
        assert_eq!(parse_counter_file("12:x:456"), None);
        assert_eq!(parse_counter_file("-1:3:456"), None);
    }
}
