#![no_main]
//! `import`: see `chimera_fuzz::inputs::import` and `chimera::fuzzing`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chimera_fuzz::inputs::import(data));
