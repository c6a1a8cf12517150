//! [`named_enum!`]: the enums of the wire contract that are also words in CSV files, query
//! strings and the database, with one spelling each.

/// Declares a fieldless enum with its lower-case wire name per variant: serde, `as_str`,
/// `Display`, `FromStr` (case-insensitive, with an error that lists the choices) and `ALL`.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used on the wire, in files and in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::api::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let wanted = s.trim();
                $name::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| $crate::api::UnknownName {
                        what: $what,
                        given: s.to_owned(),
                        choices: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

/// A word that names none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; use one of {}", choices.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub choices: Vec<&'static str>,
}
