//! The judges: the requirements (requirements.rs) and the diagnosis rules
//! (diagnose/) over the facts a probe gathered.
pub mod diagnose;
pub mod requirements;
