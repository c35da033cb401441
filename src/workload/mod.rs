//! Workloads: what an agent does in one run, as pure data and pure functions.
//!
//! * [`corpus`]: a deterministic generator for the benchmark-file corpus;
//! * [`ingest`]: the Rust harnesses' file-ingestion step (data summary + metrics);
//! * [`templates`]: filling the manifest's prompt templates;
//! * [`extract`]: what the harnesses took out of the analysis response;
//! * this module: the requests one agent run sends ([`Step`], [`AgentWorkflow`]).
//!
//! Nothing here talks to a server; the runner sends the prompts and feeds the analysis
//! response back into [`AgentWorkflow::next_step`].

pub mod corpus;
pub(crate) mod extract;
pub(crate) mod ingest;
pub mod protocol;
pub(crate) mod templates;

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::{Corpus, Options, Role, Task};

pub use extract::Extracted;
pub use ingest::DataType;
pub use ingest::{IngestResult, ingest};

/// Which request of an agent run a call is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The analysis call of an agent workflow.
    Analysis,
    /// The report call of an agent workflow.
    Report,
    /// One prompt of a single-inference task.
    Single,
    /// The persona call.
    Persona,
    /// A warm-up request (excluded from the metrics).
    Warmup,
    /// A request of a serving load (`load` workloads).
    Load,
}

impl Stage {
    /// snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Analysis => "analysis",
            Stage::Report => "report",
            Stage::Single => "single",
            Stage::Persona => "persona",
            Stage::Warmup => "warmup",
            Stage::Load => "load",
        }
    }
}

/// One step of an agent run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Read the corpus (timed as part of the agent's execution, as in the harnesses).
    Ingest,
    /// Send one prompt.
    Call {
        /// Which request this is.
        stage: Stage,
        /// The prompt text.
        prompt: String,
    },
}

/// Errors of building a workload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkloadError {
    /// An agent workflow was asked of a task of another kind.
    #[error("the task is not an agent workflow")]
    NotAgentWorkflow,
    /// The ingest found a different number of files than the manifest expects.
    #[error("ingest found {found} files, the manifest expects {expected} (corpus layout drift)")]
    LayoutDrift {
        /// `expected_files`.
        expected: u32,
        /// Files found.
        found: u32,
    },
}

/// The prompts of a single-inference task, in order (empty for other tasks).
pub fn single_inference_prompts(task: &Task) -> Vec<String> {
    match task {
        Task::SingleInference { prompts } => prompts.clone(),
        _ => Vec::new(),
    }
}

/// The persona prompt of `role` in a persona task (`None` for other tasks or roles).
pub fn persona_prompt(task: &Task, role: Role) -> Option<String> {
    match task {
        Task::Persona { prompts } => prompts.get(&role).cloned(),
        _ => None,
    }
}

/// The steps known before anything is sent: one call per prompt (single inference), the
/// persona call, or `[Ingest]` for an agent workflow (whose calls then come from
/// [`AgentWorkflow::next_step`]).
pub fn initial_steps(task: &Task, role: Role) -> Vec<Step> {
    match task {
        Task::SingleInference { prompts } => prompts
            .iter()
            .map(|p| Step::Call {
                stage: Stage::Single,
                prompt: p.clone(),
            })
            .collect(),
        Task::Persona { .. } => persona_prompt(task, role)
            .map(|prompt| Step::Call {
                stage: Stage::Persona,
                prompt,
            })
            .into_iter()
            .collect(),
        Task::AgentWorkflow { .. } => vec![Step::Ingest],
        // A load's requests come from its driver, not from steps.
        Task::Load(_) => Vec::new(),
    }
}

/// Ingests a corpus. `manifest_dir` resolves relative `directory` paths; a `generated`
/// corpus is written (again, identically) to `generated_root/<csv>-<json>-<md>-<seed>/`
/// and ingested from there; `empty` ingests nothing.
pub fn ingest_corpus(
    corpus: &Corpus,
    manifest_dir: &Path,
    generated_root: &Path,
) -> io::Result<IngestResult> {
    match corpus {
        Corpus::Generated { .. } => {
            let name = corpus
                .generated_name()
                .expect("a generated corpus has a name");
            let dir = generated_root.join(name);
            corpus::generate_spec(&dir, corpus)?;
            Ok(ingest(&dir))
        }
        Corpus::Directory { path } => {
            let p = PathBuf::from(path);
            let root = if p.is_absolute() {
                p
            } else {
                manifest_dir.join(p)
            };
            Ok(ingest(&root))
        }
        Corpus::Empty => Ok(IngestResult::empty()),
    }
}

/// Where an agent workflow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    /// The analysis call is next.
    Analysis,
    /// The report call is next (it needs the analysis response).
    Report,
    /// Both calls were handed out.
    Done,
}

/// One agent's ingest → analysis → report run (H2 baseline, H5, H6v2), after the ingest.
#[derive(Debug, Clone)]
pub struct AgentWorkflow {
    analysis_template: String,
    report_template: String,
    options: Options,
    ingest: IngestResult,
    state: WorkflowState,
}

impl AgentWorkflow {
    /// The workflow of `role` with its effective `options` (what is sent; `default` is
    /// printed for absent fields) over an ingest result. The role's `role_templates`
    /// replace the task's templates. Fails when the task is not an agent workflow, or when
    /// `expected_files` is set and the ingest found a different count.
    pub fn new(
        task: &Task,
        role: Role,
        options: &Options,
        ingest: IngestResult,
    ) -> Result<Self, WorkloadError> {
        let Task::AgentWorkflow {
            expected_files,
            analysis_template,
            report_template,
            role_templates,
            ..
        } = task
        else {
            return Err(WorkloadError::NotAgentWorkflow);
        };
        if let Some(expected) = *expected_files
            && expected != ingest.files
        {
            return Err(WorkloadError::LayoutDrift {
                expected,
                found: ingest.files,
            });
        }
        let (a, r) = match role_templates.get(&role) {
            Some(t) => (&t.analysis_template, &t.report_template),
            None => (analysis_template, report_template),
        };
        Ok(Self {
            analysis_template: a.clone(),
            report_template: r.clone(),
            options: options.clone(),
            ingest,
            state: WorkflowState::Analysis,
        })
    }

    /// The ingest result the prompts are built from.
    pub fn ingest(&self) -> &IngestResult {
        &self.ingest
    }

    /// Where the workflow is.
    pub fn state(&self) -> WorkflowState {
        self.state
    }

    /// The analysis prompt (`build_analysis_prompt`).
    pub fn analysis_prompt(&self) -> String {
        templates::fill_analysis(
            &self.analysis_template,
            &self.ingest.summary_text,
            &self.options,
        )
    }

    /// What the report prompt takes from the analysis response (`parse_analysis_response`).
    /// The response is trimmed first, as the harness's `call_ollama_streaming` returned it.
    pub fn extract(analysis_text: &str) -> Extracted {
        extract::extract(analysis_text.trim())
    }

    /// The report prompt (`build_report_prompt`) for an analysis response.
    pub fn report_prompt(&self, analysis_text: &str) -> String {
        templates::fill_report(
            &self.report_template,
            &Self::extract(analysis_text),
            &self.ingest.metrics,
            &self.options,
        )
    }

    /// The next call: first the analysis, then, given the analysis response (`None` is
    /// taken as an empty response), the report; then `None`.
    pub fn next_step(&mut self, analysis_response: Option<&str>) -> Option<Step> {
        match self.state {
            WorkflowState::Analysis => {
                self.state = WorkflowState::Report;
                Some(Step::Call {
                    stage: Stage::Analysis,
                    prompt: self.analysis_prompt(),
                })
            }
            WorkflowState::Report => {
                self.state = WorkflowState::Done;
                Some(Step::Call {
                    stage: Stage::Report,
                    prompt: self.report_prompt(analysis_response.unwrap_or("")),
                })
            }
            WorkflowState::Done => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::RoleTemplates;

    fn workflow_task(expected: Option<u32>) -> Task {
        let mut role_templates = BTreeMap::new();
        role_templates.insert(
            Role::Chimera,
            RoleTemplates {
                analysis_template: "Chimera at temp {temperature}, ctx {num_ctx}:\n{data_summary}"
                    .into(),
                report_template: "R {summary} | {recommendations}".into(),
            },
        );
        Task::AgentWorkflow {
            corpus: Corpus::Empty,
            expected_files: expected,
            analysis_template: "A:\n{data_summary}\n\nend".into(),
            report_template: "- Summary: {summary}\n- Key Findings:\n{key_findings}\n- Performance Metrics: {performance_metrics}\n- Recommendations:\n{recommendations}".into(),
            role_templates,
        }
    }

    #[test]
    fn state_machine_and_role_templates() {
        let task = workflow_task(Some(0));
        let mut w = AgentWorkflow::new(
            &task,
            Role::Baseline,
            &Options::default(),
            IngestResult::empty(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            w.next_step(None),
            Some(Step::Call {
                stage: Stage::Analysis,
                prompt: "A:\nTotal files analyzed: 0\n\n\n\nend".into()
            })
        );
        let Some(Step::Call { stage, prompt }) = w.next_step(Some(
            "\n\nExecutive Summary\nNo data.\n## Next\n- We should add data.\n",
        )) else {
            panic!("no report step");
        };
        assert_eq!(stage, Stage::Report);
        assert_eq!(
            prompt,
            "- Summary: No data.\n- Key Findings:\nNone provided\n- Performance Metrics: {\n  \"data_types\": [],\n  \"total_file_size_bytes\": 0,\n  \"total_files_analyzed\": 0\n}\n- Recommendations:\n1. We should add data."
        );
        assert_eq!(w.next_step(None), None);
        assert_eq!(w.state(), WorkflowState::Done);

        let opts = Options {
            temperature: Some(0.6),
            ..Options::default()
        };
        let c = AgentWorkflow::new(&task, Role::Chimera, &opts, IngestResult::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.analysis_prompt(),
            "Chimera at temp 0.6, ctx default:\nTotal files analyzed: 0\n\n"
        );
        assert_eq!(c.report_prompt("x"), "R x | None provided");
    }

    #[test]
    fn errors() {
        let drift = AgentWorkflow::new(
            &workflow_task(Some(101)),
            Role::Collector,
            &Options::default(),
            IngestResult::empty(),
        );
        assert_eq!(
            drift.err(),
            Some(WorkloadError::LayoutDrift {
                expected: 101,
                found: 0
            })
        );
        let single = Task::SingleInference {
            prompts: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            AgentWorkflow::new(
                &single,
                Role::Client,
                &Options::default(),
                IngestResult::empty()
            )
            .err(),
            Some(WorkloadError::NotAgentWorkflow)
        );
        assert_eq!(single_inference_prompts(&single), vec!["a", "b"]);
        assert_eq!(initial_steps(&single, Role::Client).len(), 2);
        assert_eq!(
            initial_steps(&workflow_task(None), Role::Collector),
            vec![Step::Ingest]
        );
    }

    #[test]
    fn persona() {
        let mut prompts = BTreeMap::new();
        prompts.insert(Role::Collector, "You are DataCollector-9000".to_string());
        let t = Task::Persona { prompts };
        assert_eq!(
            persona_prompt(&t, Role::Collector).as_deref(),
            Some("You are DataCollector-9000")
        );
        assert_eq!(persona_prompt(&t, Role::Insight), None);
        assert_eq!(
            initial_steps(&t, Role::Collector),
            vec![Step::Call {
                stage: Stage::Persona,
                prompt: "You are DataCollector-9000".into()
            }]
        );
        assert!(initial_steps(&t, Role::Insight).is_empty());
        assert!(single_inference_prompts(&t).is_empty());
        assert_eq!(
            serde_json::to_string(&Stage::Warmup).ok().as_deref(),
            Some("\"warmup\"")
        );
    }
}
