//! [`named_enum!`](crate::named_enum): an enum whose every variant has a fixed name, declared
//! once. The counter vocabularies (the one [`DropReason`](crate::DropReason), the region's
//! [`GlobalCounter`](crate::GlobalCounter), the dataplane's worker and classifier counters)
//! and the [`TransformId`](crate::TransformId) codes are written with it, so that the list
//! of variants, the array of all of them and their names cannot drift apart.

/// Declares an enum whose variants each carry a name, and derives from that one list:
/// `COUNT`, `ALL` (every variant in declaration order, which is also storage order for
/// counters indexed with `as usize`), `const fn name(self)`, and `Display` (the name).
///
/// ```
/// espgw_sadb::named_enum! {
///     /// Why a frame was dropped.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Drop {
///         /// Bad checksum.
///         Checksum => "checksum",
///         TooBig = 7 => "too-big",
///     }
/// }
/// assert_eq!(Drop::ALL, [Drop::Checksum, Drop::TooBig]);
/// assert_eq!((Drop::COUNT, Drop::TooBig.name()), (2, "too-big"));
/// assert_eq!(Drop::TooBig as u8, 7);
/// assert_eq!(Drop::Checksum.to_string(), "checksum");
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $(= $disc:expr)? => $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant $(= $disc)?, )+
        }

        impl $name {
            /// The number of variants.
            pub const COUNT: usize = [$($name::$variant),+].len();
            /// Every variant, in declaration order.
            pub const ALL: [$name; Self::COUNT] = [$($name::$variant),+];
            /// The variant's fixed name (show output, logs, statistics keys).
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
