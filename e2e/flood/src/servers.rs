//! CPU time of the broker and Redis during the flood, so a run shows the
//! whole budget on a machine where every process shares the same cores.
//! The servers are found by their listening port (Linux `/proc`); when
//! that is not possible (another user's process, another machine) the
//! figure is left out.

use std::time::Duration;

use crate::bridge::cpu_time_of;

/// A server process found by the port in its URL.
pub struct Server {
    pub name: &'static str,
    pid: Option<u32>,
    started_with: Option<Duration>,
}

impl Server {
    pub fn find(name: &'static str, url: &str) -> Self {
        let pid = port_of(url).and_then(listener_pid);
        Self {
            name,
            pid,
            started_with: pid.and_then(cpu_of),
        }
    }

    /// CPU time used since [`Server::find`].
    pub fn cpu_used(&self) -> Option<Duration> {
        let now = cpu_of(self.pid?)?;
        Some(now.saturating_sub(self.started_with?))
    }
}

fn cpu_of(pid: u32) -> Option<Duration> {
    cpu_time_of(&format!("/proc/{pid}/stat"))
}

/// The port of `scheme://[user[:password]@]host:port[/...]`.
pub fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    host_port.rsplit_once(':')?.1.parse().ok()
}

/// The inode of the socket listening on `port` (`/proc/net/tcp` lines:
/// `sl local_address rem_address st ... inode`, state `0A` is LISTEN).
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit_once(':')?.1;
        let listening = *fields.get(3)? == "0A";
        (listening && u16::from_str_radix(local_port, 16).ok()? == port)
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

fn listener_pid(port: u16) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.filter_map(Result::ok).any(|fd| {
                        std::fs::read_link(fd.path())
                            .is_ok_and(|target| target.as_os_str() == wanted.as_str())
                    })
                })
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_of_broker_and_redis_urls() {
        assert_eq!(
            port_of("amqp://guest:guest@127.0.0.1:40643/%2f"),
            Some(40643)
        );
        assert_eq!(port_of("redis://127.0.0.1:56239/"), Some(56239));
        assert_eq!(port_of("redis://:pw@host:6380"), Some(6380));
        assert_eq!(port_of("redis://host/0"), None);
    }

    #[test]
    fn finds_the_listening_socket_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9EF3 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D2A4 0100007F:9EF3 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(listening_inode(table, 0x9EF3), Some(4242));
        assert_eq!(
            listening_inode(table, 0xD2A4),
            None,
            "an established socket"
        );
    }

    #[test]
    fn finds_a_listener_of_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
    }
}
