//! stepbox
