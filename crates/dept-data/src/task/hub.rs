//! Where each task's data is on the Hugging Face hub today, for `dept data fetch`.
//!
//! [`Task::hub_dataset`] is what the official code passed to `datasets.load_dataset` (`glue/rte`, `super_glue/cb`,
//! `lucadiliello/newsqa`): canonical ids of 2023, several of which have since moved under an organisation
//! (`glue` is `nyu-mll/glue`). The hub keeps a parquet export of every dataset (the dataset viewer's
//! `refs/convert/parquet` branch), which the loaders read as they are.

use super::Task;

/// A task's dataset on the hub: the repository and the config (subset) holding the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubSource {
    pub repo: &'static str,
    pub config: &'static str,
}

/// The legacy canonical ids the official code used, and where those datasets live now with their default config.
const MOVED: &[(&str, &str, &str)] = &[
    ("glue", "nyu-mll/glue", ""),
    ("super_glue", "aps/super_glue", ""),
    ("winogrande", "allenai/winogrande", ""),
    ("scitail", "allenai/scitail", ""),
    ("paws", "google-research-datasets/paws", ""),
    ("yelp_polarity", "fancyzhx/yelp_polarity", "plain_text"),
    ("squad", "rajpurkar/squad", "plain_text"),
];

impl Task {
    /// The task's dataset on the hub; `None` for tasks with no hub dataset (the vision-language ones, whose
    /// annotations come from VL-T5's release).
    pub fn hub_source(&self) -> Option<HubSource> {
        let id = self.hub_dataset;
        if id.contains(' ') {
            return None;
        }
        let (head, rest) = match id.split_once('/') {
            Some((head, rest)) => (head, Some(rest)),
            None => (id, None),
        };
        match (MOVED.iter().find(|(old, _, _)| *old == head), rest) {
            (Some((_, repo, _)), Some(config)) => Some(HubSource { repo, config }),
            (Some((_, repo, config)), None) if !config.is_empty() => {
                Some(HubSource { repo, config })
            }
            (Some(_), None) => None,
            // An organisation's dataset (`lucadiliello/newsqa`): one config, `default`.
            (None, Some(_)) => Some(HubSource {
                repo: id,
                config: "default",
            }),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tasks::{all_tasks, task};

    #[test]
    fn every_text_task_has_a_hub_source() {
        for task in all_tasks() {
            let source = task.hub_source();
            assert_eq!(
                source.is_none(),
                task.hub_dataset.contains(' '),
                "{}",
                task.name
            );
        }
        let rte = task("rte").unwrap().hub_source().unwrap();
        assert_eq!((rte.repo, rte.config), ("nyu-mll/glue", "rte"));
        let wsc = task("wsc").unwrap().hub_source().unwrap();
        assert_eq!((wsc.repo, wsc.config), ("aps/super_glue", "wsc.fixed"));
        let newsqa = task("newsqa").unwrap().hub_source().unwrap();
        assert_eq!(
            (newsqa.repo, newsqa.config),
            ("lucadiliello/newsqa", "default")
        );
        let yelp = task("yelp_polarity").unwrap().hub_source().unwrap();
        assert_eq!(
            (yelp.repo, yelp.config),
            ("fancyzhx/yelp_polarity", "plain_text")
        );
    }
}
