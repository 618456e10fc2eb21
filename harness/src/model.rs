//! `syncspec model`: run the stateright checks and print what they found.

use std::process::ExitCode;

use stateright::Model as _;
use syncspec_models::report;
use syncspec_models::sync::SyncModel;

use crate::cli::ModelArgs;

pub(crate) fn run(args: ModelArgs) -> anyhow::Result<ExitCode> {
    let faults = crate::cli::parse_faults(&args.faults).map_err(anyhow::Error::msg)?;
    let configurations: Vec<(&str, SyncModel)> =
        SyncModel::standard().into_iter().map(|(name, m)| (name, m.with_faults(&faults))).collect();
    if let Some(addr) = args.explore {
        anyhow::ensure!(addr.ip().is_loopback(), "the Explorer serves on loopback only; got {addr}");
        let (name, model) = configurations.into_iter().last().expect("at least one configuration");
        println!("stateright Explorer for {name:?} at http://{addr}/ (Ctrl-C to stop)");
        let checker = model.checker().serve(addr);
        // The Explorer answers from its own threads; wait here until stopped.
        loop {
            std::thread::park();
            let _ = &checker;
        }
    }
    if !faults.is_empty() {
        let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
        println!("faults on: {}", names.join(", "));
    }
    let mut failed = 0;
    for (name, model) in configurations {
        let r = report::check(name, model);
        println!(
            "{name}: {} states ({} unique), depth {}, {:.2} s",
            r.states,
            r.unique_states,
            r.max_depth,
            r.elapsed.as_secs_f64()
        );
        for p in &r.properties {
            let verdict = if p.holds { "holds" } else { "FAILS" };
            println!("  {verdict:<5}  {} {}", p.kind, p.name);
            if !p.holds {
                failed += 1;
                if let Some(trace) = &p.trace {
                    println!("         counterexample, {} steps:", trace.len());
                    for (i, step) in trace.iter().enumerate() {
                        println!("         {:>3}. {step}", i + 1);
                    }
                }
            }
        }
    }
    println!("{} propert{} failed", failed, if failed == 1 { "y" } else { "ies" });
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
