#![no_main]
//! `openai_stream`: see `chimera_fuzz::inputs::openai_stream` and `chimera::fuzzing`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chimera_fuzz::inputs::openai_stream(data));
