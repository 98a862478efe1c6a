//! What start-up (`boot`) needs of a data directory, as a trait: the
//! server's implementation does file IO, the simulator's and `MemDir`
//! hold the files in memory.

use super::recover::{DiskImage, Repair};

/// A data directory as start-up needs it. The server's implementation
/// does file IO; the simulator's holds the files in memory.
pub trait DataDir {
    type Error: std::fmt::Display + std::fmt::Debug;
    /// Every `log.*` and `snapshot.*` file.
    fn image(&mut self) -> Result<DiskImage, Self::Error>;
    /// Whether the `repairing` mark is present.
    fn repair_mark(&mut self) -> Result<bool, Self::Error>;
    /// Makes the `repairing` mark present and durable.
    fn set_repair_mark(&mut self) -> Result<(), Self::Error>;
    /// Carries out recovery's repairs, durably.
    fn apply_repairs(&mut self, repairs: &[Repair]) -> Result<(), Self::Error>;
    /// The contents of `acceptedEpoch` and `currentEpoch`, where present.
    #[allow(clippy::type_complexity)]
    fn epoch_files(&mut self) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), Self::Error>;
}
