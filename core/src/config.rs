//! The core's configuration: the subset of zoo.cfg that decides behaviour
//! (the shell keeps the IO-only keys such as ports and directories).

use crate::ids::ServerId;
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub struct Config {
    pub server_id: ServerId,
    /// ZooKeeper's basic time unit.
    pub tick_time_ms: u32,
    /// Session timeouts are clamped to [min, max]; ZooKeeper's defaults are
    /// 2 x tickTime and 20 x tickTime.
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// `jute.maxbuffer`: the largest client frame accepted, and the largest
    /// znode payload.
    pub max_buffer: u32,
    /// Seeds the core's generator (session passwords, jitter).
    pub seed: u64,
    /// `DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// `X509AuthenticationProvider.superUser`: the certificate subject
    /// that is the super user.
    pub x509_super_user: Option<String>,
    /// The optional authentication providers configured (`authProvider.N`
    /// naming ZooKeeper's x509 or SASL provider): their schemes are valid
    /// in ACLs; without them an `x509:`/`sasl:` id is InvalidACL.
    pub acl_providers: crate::tree::acl::Providers,
    /// Client SASL (DIGEST-MD5) from the JAAS `Server` section; `None`
    /// when not configured (a `sasl` request is then answered with no
    /// token, as ZooKeeper answers it without a SASL login).
    pub sasl: Option<crate::sasl::SaslConfig>,
    /// `enforce.auth.schemes` when `enforce.auth.enabled` (or `sasl` when
    /// `sessionRequireClientSASLAuth`): a request from a connection with
    /// no id of these schemes is refused and the connection closed.
    /// Empty: not enforced.
    pub enforce_auth_schemes: Vec<String>,
    /// `extendedTypesEnabled`: TTL nodes (and the server id in session ids
    /// capped to 254, as ZooKeeper does).
    pub extended_types_enabled: bool,
    /// How often containers and TTL nodes are checked for reaping
    /// (`znode.container.checkIntervalMs`).
    pub container_check_interval_ms: u64,
    /// Deletions of containers and TTL nodes per minute at most
    /// (`znode.container.maxPerMinute`); the rest wait for the next check.
    pub container_max_per_minute: u64,
    /// Txns between snapshots (`snapCount`).
    pub snap_count: u64,
    /// Requests one connection may have waiting for their replies; a
    /// client past it is disconnected with a logged reason (it alone, not
    /// the server, pays). A last-resort guard set well above what real
    /// clients pipeline: ordinary backpressure comes from the shell's
    /// bounded event queue, as ZooKeeper throttles reads rather than
    /// disconnecting at its 1,000-request outstanding limit.
    pub outstanding_per_conn_max: usize,
    /// `skipACL`: ZooKeeper's escape hatch; off by default.
    pub skip_acl: bool,
    /// Voting members (`server.N=...` participants). Empty, or only this
    /// server with no observers, means standalone.
    pub voters: BTreeSet<ServerId>,
    /// Non-voting members (`server.N=...:observer`).
    pub observers: BTreeSet<ServerId>,
    /// Voters of a newer configuration this server has seen proposed but
    /// not known committed (a reconfig txn in its log): until then every
    /// decision needs a majority of these too (see `zab::quorum`).
    /// The node keeps `voters`, `observers` and these current.
    pub next_voters: Option<BTreeSet<ServerId>>,
    /// Observers of that newer configuration.
    pub next_observers: BTreeSet<ServerId>,
    /// `reconfigEnabled`: the reconfig request is served (else it is
    /// answered ReconfigDisabled).
    pub reconfig_enabled: bool,
    /// Note every commit's voters for `Node::take_commit_quorums` (the
    /// simulator's configuration check); off in the server.
    pub record_commit_quorums: bool,
    /// `initLimit`: ticks a learner has to connect and sync.
    pub init_limit_ticks: u32,
    /// `syncLimit`: ticks without hearing from the leader (or a quorum of
    /// followers) before giving up on it.
    pub sync_limit_ticks: u32,
    /// How long a settled vote waits for a better one before deciding.
    pub election_finalize_ms: u64,
    /// A planted bug to enable (honoured only with the `canary` feature).
    pub canary: Option<crate::canary::Canary>,
    /// The text of `/zookeeper/config` (the ensemble's member list), which
    /// every member fills locally at start, as ZooKeeper does (no txn).
    pub member_list: Option<std::sync::Arc<[u8]>>,
    /// `readonlymode.enabled`: a member cut off from its quorum serves
    /// reads to read-only clients (`node::readonly`).
    pub read_only_mode: bool,
    /// Bounds on what clients can make a server hold (`limits`).
    pub limits: crate::limits::Limits,
    /// `zookeeper.enforceQuota`: hard quota limits refuse writes (every
    /// member must agree, as every member applies the check).
    pub enforce_quota: bool,
    /// New sessions get Apache ZooKeeper's password for their id rather
    /// than Paddock's: set while following a ZooKeeper ensemble, whose
    /// servers must accept the session when its client moves to them.
    pub zookeeper_session_passwords: bool,
}

impl Config {
    pub fn standalone(server_id: u64) -> Config {
        let tick = 2000;
        Config {
            server_id: ServerId(server_id),
            tick_time_ms: tick,
            min_session_timeout_ms: 2 * tick,
            max_session_timeout_ms: 20 * tick,
            max_buffer: 0xfffff,
            seed: 0x5eed,
            super_digest: None,
            x509_super_user: None,
            acl_providers: Default::default(),
            sasl: None,
            enforce_auth_schemes: Vec::new(),
            extended_types_enabled: false,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            snap_count: 100_000,
            outstanding_per_conn_max: 10_000,
            skip_acl: false,
            voters: BTreeSet::new(),
            observers: BTreeSet::new(),
            next_voters: None,
            next_observers: BTreeSet::new(),
            reconfig_enabled: false,
            record_commit_quorums: false,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            election_finalize_ms: 50,
            canary: None,
            member_list: None,
            read_only_mode: false,
            limits: crate::limits::Limits::default(),
            enforce_quota: false,
            zookeeper_session_passwords: false,
        }
    }

    /// A member of an ensemble.
    pub fn ensemble(server_id: u64, voters: &[u64], observers: &[u64]) -> Config {
        let mut c = Config::standalone(server_id);
        c.voters = voters.iter().map(|&v| ServerId(v)).collect();
        c.observers = observers.iter().map(|&v| ServerId(v)).collect();
        c
    }

    pub fn is_standalone(&self) -> bool {
        self.observers.is_empty()
            && (self.voters.is_empty()
                || (self.voters.len() == 1 && self.voters.contains(&self.server_id)))
    }

    pub fn is_observer(&self) -> bool {
        self.observers.contains(&self.server_id)
    }

    /// Whether a server that lost durable records has a leader to repair
    /// from (anything but a lone voter), and so keeps a `repairing` mark.
    pub fn repairs_from_peers(&self) -> bool {
        self.voters.len() > 1 || self.is_observer()
    }

    /// Every other member, of the configuration in force and the pending
    /// one.
    pub fn peers(&self) -> impl Iterator<Item = ServerId> + '_ {
        let next = self
            .next_voters
            .iter()
            .flatten()
            .chain(self.next_observers.iter());
        let all: BTreeSet<ServerId> = self
            .voters
            .iter()
            .chain(self.observers.iter())
            .chain(next)
            .copied()
            .filter(|s| *s != self.server_id)
            .collect();
        all.into_iter()
    }
}
