//! Pod IPs: one loopback address per Pod (Linux routes all of 127/8 to lo,
//! so binding 127.N.x.y needs no setup).
//!
//! Several runners (clusters of parallel test stages) share the host's
//! loopback, so each takes a block 127.N.0.0/16 of its own, held by an
//! exclusive lock file for its lifetime. 127.0.0.0/16 stays for the host
//! (127.0.0.1 services, Debian's 127.0.1.1 host name).

use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A 127.N.0.0/16 block held by this process.
#[derive(Debug)]
pub struct Block {
    pub octet: u8,
    /// Keeps the lock: released when the process exits.
    _lock: File,
}

/// Takes the first free block, trying 127.`first`, then upwards (wrapping).
pub fn claim_block(lock_dir: &Path, first: u8) -> std::io::Result<Block> {
    for step in 0..254u16 {
        let octet = ((u16::from(first.max(1)) - 1 + step) % 254 + 1) as u8;
        let path = lock_dir.join(format!("um-process-runner-127.{octet}.lock"));
        let file = match File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(f) => f,
            // Another user's lock file: that block is not ours to take.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => continue,
            Err(e) => return Err(e),
        };
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Block { octet, _lock: file });
        }
    }
    Err(std::io::Error::other(
        "every 127.N.0.0/16 loopback block is held by another process runner",
    ))
}

/// Hands out 127.N.1.1 .. 127.N.254.254, round-robin so a released address
/// is not reused at once.
#[derive(Debug)]
pub struct LoopbackIpam {
    base: u32,
    used: BTreeSet<u32>,
    cursor: u32,
}

impl LoopbackIpam {
    pub fn new(octet: u8) -> Self {
        let base = (127 << 24) | (u32::from(octet) << 16);
        LoopbackIpam {
            base,
            used: BTreeSet::new(),
            cursor: base | (1 << 8) | 1,
        }
    }

    fn first(&self) -> u32 {
        self.base | (1 << 8) | 1
    }

    fn last(&self) -> u32 {
        self.base | (254 << 8) | 254
    }

    fn usable(&self, ip: u32) -> bool {
        let last_octet = ip & 0xff;
        (self.first()..=self.last()).contains(&ip) && last_octet != 0 && last_octet != 255
    }

    /// Marks an address as taken (a Pod that already has it).
    pub fn claim(&mut self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        self.usable(n) && self.used.insert(n)
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let (first, last) = (self.first(), self.last());
        let span = last - first + 1;
        let start = self.cursor.clamp(first, last);
        for step in 0..span {
            let n = first + (start - first + step) % span;
            if self.usable(n) && !self.used.contains(&n) {
                self.used.insert(n);
                self.cursor = n + 1;
                return Some(Ipv4Addr::from(n));
            }
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_loopback_addresses_round_robin() {
        let mut ipam = LoopbackIpam::new(7);
        let a = ipam.allocate().unwrap();
        let b = ipam.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(127, 7, 1, 1));
        assert_eq!(b, Ipv4Addr::new(127, 7, 1, 2));
        ipam.release(a);
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 7, 1, 3));
        assert!(ipam.claim(Ipv4Addr::new(127, 7, 1, 4)));
        assert!(!ipam.claim(Ipv4Addr::new(127, 7, 1, 4)), "already taken");
        assert!(
            !ipam.claim(Ipv4Addr::new(127, 8, 1, 9)),
            "another runner's block"
        );
        assert!(!ipam.claim(Ipv4Addr::new(10, 0, 0, 1)), "not loopback");
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 7, 1, 5));
    }

    #[test]
    fn skips_network_and_broadcast_octets() {
        let mut ipam = LoopbackIpam::new(1);
        ipam.cursor = u32::from(Ipv4Addr::new(127, 1, 1, 254));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 1, 1, 254));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 1, 2, 1));
    }

    #[test]
    fn blocks_are_exclusive_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let a = claim_block(dir.path(), 5).unwrap();
        assert_eq!(a.octet, 5);
        let b = claim_block(dir.path(), 5).unwrap();
        assert_eq!(b.octet, 6, "5 is held");
        drop(a);
        let c = claim_block(dir.path(), 5).unwrap();
        assert_eq!(c.octet, 5, "released with its holder");
        let wrap = claim_block(dir.path(), 254).unwrap();
        assert_eq!(wrap.octet, 254);
        assert_eq!(
            claim_block(dir.path(), 254).unwrap().octet,
            1,
            "wraps past 254"
        );
    }
}
