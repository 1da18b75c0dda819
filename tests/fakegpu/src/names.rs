//! Closed sets of names a scenario may use, and the error a name outside
//! one gets.
//!
//! A scenario names things the fake matches in code: driver calls
//! (`faults[].call`, `missing_symbols`), NVML readings
//! (`devices[].nvml.not_supported`). A name the fake does not know would
//! match nothing and silently test the healthy path, so each such field is
//! an enum made with `closed_set!`, whose one list of variants is both what
//! the code matches on and what a scenario may say; deserializing a name
//! outside it fails, naming the key, the nearest known name and all of
//! them. Every path that loads a scenario (`fakegpu check`, `fakegpu
//! prepare`, each fake library at run time) goes through
//! `Scenario::load`, so all of them reject it alike.
use std::fmt::Write as _;

/// An enum whose every member has the one name a scenario spells it with
/// (made by `closed_set!`).
pub trait ClosedSet: Copy + PartialEq + 'static {
    /// What a member is, for messages: "driver call".
    const WHAT: &'static str;
    /// Every member, in declaration order.
    const ALL: &'static [Self];
    /// The name a scenario spells this member with.
    fn name(self) -> &'static str;

    /// The member spelt `name`, if one is.
    #[must_use]
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.name() == name)
    }
}

/// An enum that is a closed set of names: each variant is spelt as its
/// identifier, or as the string after `=`. Makes `ClosedSet`, `Display`
/// and a `NAMES` list in declaration order; the enum has no `Deserialize`
/// of its own, so every field of one names its key through `one` or
/// `list` (`#[serde(deserialize_with)]`).
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $what:literal {
            $($(#[$variant_meta:meta])* $variant:ident $(= $text:literal)?),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            /// Every member's name, in declaration order.
            pub const NAMES: &'static [&'static str] =
                &[$($crate::names::closed_set!(@name $variant $(, $text)?)),+];
        }

        impl $crate::names::ClosedSet for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $crate::names::closed_set!(@name $variant $(, $text)?)),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::names::ClosedSet::name(*self))
            }
        }
    };
    (@name $variant:ident) => { stringify!($variant) };
    (@name $variant:ident, $text:literal) => { $text };
}
pub(crate) use closed_set;

/// Deserializes one member of `T` at `key` (for `deserialize_with`).
pub fn one<'de, D, T>(d: D, key: &str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: ClosedSet,
{
    let name = <String as serde::Deserialize>::deserialize(d)?;
    member(key, &name).map_err(serde::de::Error::custom)
}

/// Deserializes a list of members of `T` at `key` (for `deserialize_with`).
pub fn list<'de, D, T>(d: D, key: &str) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: ClosedSet,
{
    let names = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    names
        .iter()
        .map(|name| member(key, name))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// The member of `T` spelt `name`, or the error naming `key`.
fn member<T: ClosedSet>(key: &str, name: &str) -> Result<T, String> {
    T::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = T::ALL.iter().map(|m| m.name()).collect();
        unknown(key, T::WHAT, name, &names)
    })
}

/// "KEY: unknown WHAT "GOT" (did you mean "NEAR"?); known: A, B, ...":
/// the error for a name outside the set `known`.
#[must_use]
pub fn unknown(key: &str, what: &str, got: &str, known: &[&str]) -> String {
    let mut text = format!("{key}: unknown {what} {got:?}");
    if let Some(near) = nearest(got, known) {
        let _ = write!(text, " (did you mean {near:?}?)");
    }
    let _ = write!(text, "; known: {}", known.join(", "));
    text
}

/// The name in `known` closest to `got`, if one is close enough to be the
/// one meant: within a third of `got`'s length in edits (at least one) of
/// the name or of a start of it that ends where a word does ("temperature"
/// in "temperature_celsius", "cuMemAlloc" in "cuMemAlloc_v2").
#[must_use]
pub fn nearest<'a>(got: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (got.chars().count() / 3).max(1);
    known
        .iter()
        .map(|name| {
            let whole = edits(got, name);
            let start = name
                .match_indices(['_', '-'])
                .map(|(at, _)| edits(got, &name[..at]))
                .min()
                .unwrap_or(usize::MAX);
            // On a tie the whole name wins over a start of another.
            (whole.min(start), start < whole, *name)
        })
        .filter(|(distance, _, _)| *distance <= limit)
        .min_by_key(|(distance, by_start, _)| (*distance, *by_start))
        .map(|(_, _, name)| name)
}

/// Levenshtein distance: the fewest single-character insertions,
/// deletions and substitutions that turn `a` into `b`.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{edits, nearest, unknown};

    #[test]
    fn edits_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(edits("abc", ""), 3);
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("cuLaunchKernal", "cuLaunchKernel"), 1);
    }

    #[test]
    fn nearest_finds_a_typo_and_a_start_of_a_name() {
        let known = ["temperature_celsius", "power_draw_watts", "ecc"];
        assert_eq!(nearest("temprature", &known), Some("temperature_celsius"));
        assert_eq!(nearest("power_draw", &known), Some("power_draw_watts"));
        assert_eq!(nearest("clocks", &known), None);
        assert_eq!(
            nearest("nvidai0", &["nvidia-uvm", "nvidia0"]),
            Some("nvidia0")
        );
        assert_eq!(
            nearest("cuMemAlloc", &["cuMemAlloc_v2", "cuMemFree_v2"]),
            Some("cuMemAlloc_v2")
        );
    }

    #[test]
    fn unknown_names_the_key_the_nearest_and_every_name() {
        assert_eq!(
            unknown("faults[].call", "driver call", "cuInt", &["cuInit", "cuDeviceGet"]),
            "faults[].call: unknown driver call \"cuInt\" (did you mean \"cuInit\"?); known: cuInit, cuDeviceGet"
        );
        assert_eq!(
            unknown("k", "thing", "zzz", &["a"]),
            "k: unknown thing \"zzz\"; known: a"
        );
    }
}
