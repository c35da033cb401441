//! Statistics as pure functions over slices (filled in by the statistics work).
