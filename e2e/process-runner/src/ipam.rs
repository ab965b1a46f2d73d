//! Pod IPs: one loopback address per Pod (Linux routes all of 127/8 to lo,
//! so binding 127.0.x.y needs no setup).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Hands out 127.0.1.1 .. 127.0.254.254 (127.0.0.0/24 stays for the host's
/// own services), round-robin so a released address is not reused at once.
#[derive(Debug, Default)]
pub struct LoopbackIpam {
    used: BTreeSet<u32>,
    cursor: u32,
}

const FIRST: u32 = (127 << 24) | (1 << 8) | 1;
const LAST: u32 = (127 << 24) | (254 << 8) | 254;

fn usable(ip: u32) -> bool {
    let last_octet = ip & 0xff;
    (FIRST..=LAST).contains(&ip) && last_octet != 0 && last_octet != 255
}

impl LoopbackIpam {
    /// Marks an address as taken (a Pod that already has it).
    pub fn claim(&mut self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        usable(n) && self.used.insert(n)
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        if self.cursor < FIRST {
            self.cursor = FIRST;
        }
        let span = LAST - FIRST + 1;
        for step in 0..span {
            let n = FIRST + (self.cursor - FIRST + step) % span;
            if usable(n) && !self.used.contains(&n) {
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
        let mut ipam = LoopbackIpam::default();
        let a = ipam.allocate().unwrap();
        let b = ipam.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(b, Ipv4Addr::new(127, 0, 1, 2));
        ipam.release(a);
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 0, 1, 3));
        assert!(ipam.claim(Ipv4Addr::new(127, 0, 1, 4)));
        assert!(!ipam.claim(Ipv4Addr::new(127, 0, 1, 4)), "already taken");
        assert!(!ipam.claim(Ipv4Addr::new(10, 0, 0, 1)), "not ours");
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 0, 1, 5));
    }

    #[test]
    fn skips_network_and_broadcast_octets() {
        let mut ipam = LoopbackIpam {
            cursor: (127 << 24) | (1 << 8) | 254,
            ..Default::default()
        };
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 0, 1, 254));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(127, 0, 2, 1));
    }
}
