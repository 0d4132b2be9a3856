//! Past one machine: the processes of an Apache Ballista cluster that runs
//! wausage's SQL. [`server`] holds the scheduler and executor commands and
//! [`LocalCluster`], which starts both as child processes for the benchmark;
//! [`codec`] ships the windowing operator to the executors. The client's
//! side, a `--cluster` session, is `crate::engine::remote`.

mod codec;
mod server;

pub use server::{run_executor, run_scheduler, ExecutorOptions, LocalCluster};

#[cfg(test)]
mod tests {
    use ballista_core::extension::SessionConfigExt;
    use ballista_core::registry::BallistaFunctionRegistry;

    use super::server::{cluster_config, cluster_state};

    #[test]
    fn cluster_sessions_know_every_wausage_function() {
        let state = cluster_state(cluster_config()).unwrap();
        let registry = BallistaFunctionRegistry::from(&state);
        for name in wausage_udfs::function_names() {
            let known = registry.scalar_functions.contains_key(&name)
                || registry.aggregate_functions.contains_key(&name)
                || registry.window_functions.contains_key(&name);
            assert!(known, "{name} missing from the cluster registry");
        }
        assert!(state
            .config()
            .options()
            .extensions
            .get::<crate::engine::settings::WaOptions>()
            .is_some());
        // The scheduler plans every scan: it gives the files their read
        // schemas, and the windowing its one phase.
        let rules: Vec<&str> = state
            .physical_optimizers()
            .iter()
            .map(|r| r.name())
            .collect();
        for rule in ["FooterReadSchemas", "SinglePhaseWindowing"] {
            assert!(rules.contains(&rule), "{rule} not in {rules:?}");
        }
    }

    #[test]
    fn the_adaptive_planner_is_off_so_windowing_keeps_one_phase() {
        assert!(!cluster_config()
            .ballista_config()
            .adaptive_query_planner_enabled());
    }
}
