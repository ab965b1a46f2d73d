//! Control API of the `um-sim` binary (filled in below).
