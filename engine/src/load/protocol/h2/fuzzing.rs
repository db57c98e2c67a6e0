//! Fuzz entry points (filled below).
