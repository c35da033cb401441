//! Managed servers: the servers a manifest's endpoints ask chimera to start (`managed:`).
//!
//! A campaign (`chimera run`) drives one `ManagedServers` through
//! this lifecycle:
//!
//! 1. **Start**, before the health check (`ManagedServers::start`): every endpoint with
//!    `managed` (deduplicated by URL) has `${VAR}` (from chimera's environment) and a leading
//!    `~/` expanded in its command and env values; an unset variable stops everything before
//!    anything is started. The expanded values are handed to the server only: whatever chimera
//!    writes (the log's header line, messages, errors, the journal) shows `${VAR}` in their
//!    place, and the server output it quotes in errors has them masked the same way, so a
//!    token passed as `${SECRET}` never reaches a file or a terminal through chimera.
//!    Nothing may answer at the endpoint's address yet (a server already
//!    there would be measured instead of the managed one). The command runs with the env added,
//!    stdin closed, stdout and stderr appended to `<campaign>/servers/<endpoint>.log` (mode
//!    0600: the server's own output may hold what it was given), in its
//!    own process group (so a terminal's Ctrl-C reaches chimera, which stops it in order), and
//!    is waited for until it answers (`ollama`/`emulator`: `GET /api/version`; `openai`:
//!    `GET /health`, which llama-server answers with 503 while it loads, falling back to
//!    `GET /v1/models`) within `startup_timeout_s`.
//! 2. **Models** of managed `ollama` endpoints: a model tag the plan uses there and
//!    `/api/tags` lacks is pulled (`POST /api/pull`, progress shown). Unmanaged endpoints are
//!    never pulled into.
//! 3. **Watch** (`ManagedServers::ensure_alive`): before every attempt of a cell, the
//!    servers of its endpoints are checked; a dead one is started again (same command, same
//!    log) and a `server_restarted` event is journaled. A cell that failed because its server
//!    died (`ManagedServers::exited`) is retried after the restart.
//! 4. **Stop** (`ManagedServers::stop_all`), at the end, on an error and on Ctrl-C/SIGTERM:
//!    SIGTERM to each process group, up to 10 s for the whole group to exit, then SIGKILL.
//!    Dropping a server's process handle SIGKILLs its group, so a panic leaves nothing
//!    behind. (Only `kill -9` of chimera itself can orphan a server: the next run then finds
//!    its port in use and says so.)
//!
//! One file per job: spec resolution (`spec.rs`), processes (`process.rs`),
//! readiness (`ready.rs`), model pulls (`pull.rs`) and the supervisor (`supervise.rs`). Their
//! HTTP goes through `backend::manage`; errors are [`ManagedError`], which the
//! campaign wraps.

mod cancel;
mod console;
mod error;
mod process;
mod pull;
mod ready;
mod spec;
mod supervise;

pub use error::ManagedError;
pub(crate) use spec::{offset_ports, use_running_servers};
pub(crate) use supervise::ManagedServers;
