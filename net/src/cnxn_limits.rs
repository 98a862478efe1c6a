//! The connection limits of one client listener: `maxCnxns` (open
//! connections in all) and `maxClientCnxns` (per client IP), counted as
//! ZooKeeper's connection factories count them: the total is checked
//! first, then the address; a slot is held until the connection's task
//! ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections, in all and per client IP, for `maxCnxns` and
/// `maxClientCnxns`.
#[derive(Default)]
pub(crate) struct IpCounts {
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_ip: HashMap<IpAddr, u32>,
    /// Invariant: the sum of `by_ip`'s values.
    total: u32,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Total(u32),
    PerIp(u32),
}

impl IpCounts {
    pub(crate) fn try_add(
        self: &Arc<Self>,
        ip: IpAddr,
        max_per_ip: u32,
        max_total: u32,
    ) -> Result<IpGuard, Refused> {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // ZooKeeper checks the total first, then the address.
        if max_total != 0 && c.total >= max_total {
            return Err(Refused::Total(c.total));
        }
        let n = c.by_ip.entry(ip).or_insert(0);
        if max_per_ip != 0 && *n >= max_per_ip {
            return Err(Refused::PerIp(*n));
        }
        *n += 1;
        c.total += 1;
        Ok(IpGuard {
            counts: self.clone(),
            ip,
        })
    }
}

/// Releases one connection's slot in [`IpCounts`] when dropped.
pub(crate) struct IpGuard {
    counts: Arc<IpCounts>,
    ip: IpAddr,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut c = self.counts.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
            c.total -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_check_the_total_then_the_address() {
        let counts = Arc::new(IpCounts::default());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let g1 = counts.try_add(a, 0, 2).expect("first");
        let _g2 = counts.try_add(b, 0, 2).expect("second");
        assert_eq!(counts.try_add(b, 0, 2).err(), Some(Refused::Total(2)));
        assert_eq!(counts.try_add(b, 1, 3).err(), Some(Refused::PerIp(1)));
        drop(g1);
        let _g3 = counts.try_add(b, 0, 2).expect("a slot came free");
        assert_eq!(counts.inner.lock().unwrap().total, 2);
    }
}
