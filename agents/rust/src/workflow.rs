//! The job's task, done as chimera's in-process agent does it (`AgentJob::run` in
//! `src/run/mod.rs`): the prompts come from chimera's own workload code, each request becomes
//! one record line, and the report of an agent workflow is sent only when its analysis
//! succeeded.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use chimera::manifest::{Corpus, Role, Task};
use chimera::workload::protocol::{AgentJob, AgentRecord, JobTask, RecordStage};
use chimera::workload::{AgentWorkflow, IngestResult, WorkloadError, ingest};
use serde::Serialize;

use crate::client::{Target, send};
use crate::exec::Exec;
use crate::request::Request;

/// One request known before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// Its stage.
    pub(crate) stage: RecordStage,
    /// Its index in the run.
    pub(crate) index: u32,
    /// The prompt.
    pub(crate) prompt: String,
}

/// What a run sends.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    /// Fixed prompts (single inference, persona).
    Calls(Vec<Call>),
    /// An agent workflow after its ingest: the analysis, then the report built from it.
    Workflow(Box<AgentWorkflow>),
}

/// The plan of a job: its prompts, or its ingested agent workflow. Fails only on corpus
/// layout drift (`expected_files` differs from what the ingest found).
pub(crate) fn plan(job: &AgentJob) -> Result<Plan, WorkloadError> {
    Ok(match &job.task {
        JobTask::SingleInference { prompts } => Plan::Calls(
            prompts
                .iter()
                .enumerate()
                .map(|(i, p)| Call {
                    stage: RecordStage::Single,
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    prompt: p.clone(),
                })
                .collect(),
        ),
        JobTask::Persona { prompt } => Plan::Calls(vec![Call {
            stage: RecordStage::Persona,
            index: 0,
            prompt: prompt.clone(),
        }]),
        JobTask::AgentWorkflow {
            analysis_template,
            report_template,
            expected_files,
        } => {
            let ingested = match &job.corpus_dir {
                Some(dir) => ingest(Path::new(dir)),
                None => IngestResult::empty(),
            };
            // The role's templates are already resolved into the job: no overrides here, so
            // any role gives the same prompts.
            let task = Task::AgentWorkflow {
                corpus: Corpus::Empty,
                expected_files: *expected_files,
                analysis_template: analysis_template.clone(),
                report_template: report_template.clone(),
                role_templates: BTreeMap::new(),
            };
            Plan::Workflow(Box::new(AgentWorkflow::new(
                &task,
                Role::Baseline,
                &job.options,
                ingested,
            )?))
        }
    })
}

/// The prompts `--print-prompts` prints: `{"analysis_prompt", "report_prompt"}` for an agent
/// workflow (the report built from `analysis_text`, `""` without it), `{"prompts": [...]}`
/// otherwise. Compact JSON.
pub(crate) fn prompts_json(plan: &Plan, analysis_text: Option<&str>) -> serde_json::Result<String> {
    #[derive(Serialize)]
    struct WorkflowPrompts {
        analysis_prompt: String,
        report_prompt: String,
    }
    #[derive(Serialize)]
    struct Prompts<'a> {
        prompts: Vec<&'a str>,
    }
    match plan {
        Plan::Calls(calls) => serde_json::to_string(&Prompts {
            prompts: calls.iter().map(|c| c.prompt.as_str()).collect(),
        }),
        Plan::Workflow(wf) => serde_json::to_string(&WorkflowPrompts {
            analysis_prompt: wf.analysis_prompt(),
            report_prompt: analysis_text
                .map(|t| wf.report_prompt(t))
                .unwrap_or_default(),
        }),
    }
}

/// The records file: one [`AgentRecord`] JSON object per line, written and flushed per
/// request.
#[derive(Debug)]
pub(crate) struct RecordSink {
    file: File,
}

impl RecordSink {
    /// Opens (creates) `path` for appending.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RecordSink { file })
    }

    /// Appends one record line and flushes it.
    pub(crate) fn write(&mut self, record: &AgentRecord) -> io::Result<()> {
        let mut line = serde_json::to_string(record).map_err(io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

/// Everything one run needs, owned (an executor may move it onto another thread).
#[derive(Debug)]
pub(crate) struct Work {
    /// What to send.
    pub(crate) plan: Plan,
    /// The request every prompt is sent with.
    pub(crate) request: Request,
    /// Where and how.
    pub(crate) target: Target,
    /// Where the records go.
    pub(crate) sink: RecordSink,
}

impl Work {
    /// Sends the plan's requests on executor `E`, writing a record after each. Fails only
    /// when a record cannot be written.
    pub(crate) async fn run<E: Exec>(self) -> io::Result<()> {
        let Work {
            plan,
            request,
            target,
            mut sink,
        } = self;
        let with = |prompt: String| Request {
            prompt,
            ..request.clone()
        };
        match plan {
            Plan::Calls(calls) => {
                for c in calls {
                    let outcome = send::<E>(&target, &with(c.prompt)).await;
                    sink.write(&outcome.record(c.stage, c.index))?;
                }
            }
            Plan::Workflow(wf) => {
                let analysis = send::<E>(&target, &with(wf.analysis_prompt())).await;
                let mut record = analysis.record(RecordStage::Analysis, 0);
                record.files_ingested = Some(wf.ingest().files);
                sink.write(&record)?;
                if analysis.ok() {
                    let prompt = wf.report_prompt(&analysis.reply.text);
                    let report = send::<E>(&target, &with(prompt)).await;
                    sink.write(&report.record(RecordStage::Report, 1))?;
                }
            }
        }
        Ok(())
    }
}
