//! The commands a user runs, one file each with one `run` entry and its options.

pub mod bench;
pub mod clean;
pub mod compare;
pub mod doctor;
pub mod pod;
pub mod soak;
pub mod test;
