//! What a step declares it needs, written into its component.
//!
//! See [`needs!`](crate::needs!).

/// The declaration's text as a byte array of length `N`, for the custom
/// section [`needs!`](crate::needs!) writes (a `static` must be an array,
/// not a slice, to land in the section).
#[doc(hidden)]
pub const fn bytes<const N: usize>(text: &str) -> [u8; N] {
    let src = text.as_bytes();
    assert!(src.len() == N, "stepbox_sdk::needs!: length mismatch");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = src[i];
        i += 1;
    }
    out
}
