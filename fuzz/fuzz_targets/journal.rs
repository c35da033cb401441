#![no_main]
//! `journal`: see `chimera_fuzz::inputs::journal` and `chimera::fuzzing`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chimera_fuzz::inputs::journal(data));
