//! `chimera import`: the original harnesses' raw results converted into chimera's tables.
