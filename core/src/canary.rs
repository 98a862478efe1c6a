//! Planted bugs that prove the simulator's checkers can fail. They exist
//! only with the `canary` cargo feature (never in the shipped binary) and
//! are chosen at run time through `Config::canary`.

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Canary {
    /// A learner acknowledges proposals before they are durable, and a
    /// standalone server counts its own vote before `Persisted`.
    AckBeforePersist,
    /// The leader commits without a quorum of acknowledgements.
    CommitWithMinority,
    /// Election compares votes by zxid and id only, ignoring the epoch.
    VoteWithoutEpoch,
    /// A learner applies a proposal when it arrives, before its COMMIT.
    ApplyBeforeCommit,
    /// A learner ignores TRUNC and keeps its old-epoch tail.
    SkipTrunc,
    /// A follower expires sessions on its own.
    ExpireOnFollower,
    /// Watch events are sent after the reply that shows their data.
    WatchAfterData,
    /// A learner confirms a reconnecting client's session from its own
    /// records instead of asking the leader (REVALIDATE).
    ConfirmSessionLocally,
    /// A failed fsync (or write) is retried and its batch acknowledged,
    /// though the page cache may have dropped the data ("fsyncgate").
    RetryFailedFsync,
    /// A reconfiguration is put in force as soon as it is logged, before
    /// it is committed (the old configuration's quorum is not asked).
    ActivateBeforeCommit,
    /// A pending reconfiguration is committed by the old configuration's
    /// votes alone (the new configuration's quorum is not asked).
    OldVotesForNew,
}

impl Canary {
    pub const ALL: [Canary; 11] = [
        Canary::AckBeforePersist,
        Canary::CommitWithMinority,
        Canary::VoteWithoutEpoch,
        Canary::ApplyBeforeCommit,
        Canary::SkipTrunc,
        Canary::ExpireOnFollower,
        Canary::WatchAfterData,
        Canary::ConfirmSessionLocally,
        Canary::RetryFailedFsync,
        Canary::ActivateBeforeCommit,
        Canary::OldVotesForNew,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Canary::AckBeforePersist => "ack-before-persist",
            Canary::CommitWithMinority => "commit-with-minority",
            Canary::VoteWithoutEpoch => "vote-without-epoch",
            Canary::ApplyBeforeCommit => "apply-before-commit",
            Canary::SkipTrunc => "skip-trunc",
            Canary::ExpireOnFollower => "expire-on-follower",
            Canary::WatchAfterData => "watch-after-data",
            Canary::ConfirmSessionLocally => "confirm-session-locally",
            Canary::RetryFailedFsync => "retry-failed-fsync",
            Canary::ActivateBeforeCommit => "activate-before-commit",
            Canary::OldVotesForNew => "old-votes-for-new",
        }
    }

    pub fn from_name(name: &str) -> Option<Canary> {
        Canary::ALL.into_iter().find(|c| c.name() == name)
    }
}
