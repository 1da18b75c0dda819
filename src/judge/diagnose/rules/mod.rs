//! The rule table. Facts and fixes come from NVIDIA's and Microsoft's documentation:
//! the NVIDIA Container Toolkit's behaviour, the CUDA and NVML error codes
//! users meet in containers, Windows containers, and health-check rules.
//!
//! Each rule is a `Rule` constant beside its trigger, in a file by topic;
//! `RULES` lists them in code order, the order docs/diagnoses.md follows.
use super::Rule;

mod bandwidth;
mod burn;
mod busy;
mod container;
mod counters;
mod driver;
mod fabric;
mod facts;
mod hardware;
mod homogeneity;
mod leftovers;
mod libraries;
mod memtest;
mod peer;
mod platform;
mod results;
mod throttling;
mod traps;
mod visible_devices;
mod xid;

pub const RULES: &[Rule] = &[
    container::GP001,
    container::GP002,
    visible_devices::GP003,
    visible_devices::GP004,
    visible_devices::GP005,
    libraries::GP006,
    libraries::GP007,
    libraries::GP008,
    container::GP009,
    driver::GP010,
    driver::GP011,
    driver::GP012,
    container::GP013,
    hardware::GP014,
    hardware::GP015,
    hardware::GP016,
    throttling::GP017,
    platform::GP018,
    platform::GP019,
    driver::GP020,
    container::GP021,
    libraries::GP022,
    libraries::GP023,
    platform::GP024,
    driver::GP025,
    visible_devices::GP026,
    container::GP027,
    libraries::GP028,
    busy::GP029,
    throttling::GP030,
    bandwidth::GP031,
    burn::GP032,
    burn::GP033,
    busy::GP034,
    results::GP035,
    hardware::GP036,
    driver::GP037,
    fabric::GP038,
    fabric::GP039,
    xid::GP040,
    xid::GP041,
    xid::GP042,
    homogeneity::GP043,
    memtest::GP044,
    traps::GP045,
    leftovers::GP046,
    leftovers::GP047,
    counters::GP050,
    counters::GP051,
    counters::GP052,
    peer::GP058,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_ordered() {
        let codes: Vec<&str> = RULES.iter().map(|r| r.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }
}
