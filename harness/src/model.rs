//! `syncspec model`: run the stateright checks and print what they found.

use std::collections::BTreeSet;
use std::process::ExitCode;

use stateright::Model as _;
use syncspec_models::report;
use syncspec_models::sync::SyncModel;
use syncspec_reports::model::ModelCheck;
use syncspec_reports::report::Report;
use syncspec_server::core::Fault;

use crate::cli::ModelArgs;

pub(crate) fn run(args: ModelArgs) -> anyhow::Result<ExitCode> {
    let faults = crate::cli::parse_faults(&args.faults).map_err(anyhow::Error::msg)?;
    if let Some(addr) = args.explore {
        anyhow::ensure!(addr.ip().is_loopback(), "the Explorer serves on loopback only; got {addr}");
        let (name, model) = SyncModel::standard().into_iter().last().expect("at least one configuration");
        println!("stateright Explorer for {name:?} at http://{addr}/ (Ctrl-C to stop)");
        let checker = model.with_faults(&faults).checker().serve(addr);
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
    let check = check_all(&faults, print_configuration);
    let failed = check.failed();
    println!("{} propert{} failed", failed, if failed == 1 { "y" } else { "ies" });
    if let Some(out) = &args.out {
        let runtime = tokio::runtime::Runtime::new()?;
        let mut backend = runtime.block_on(crate::column::new("(in process)", Some(&args.faults)));
        backend.model = Some(check);
        let index = crate::output::write(&Report::new(vec![backend]), out, None)?;
        println!("report in {}", index.display());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Checks every standard configuration with `faults` on, handing each result to `each` as it comes.
pub(crate) fn check_all(
    faults: &BTreeSet<Fault>,
    mut each: impl FnMut(&syncspec_reports::model::Configuration),
) -> ModelCheck {
    let mut check =
        ModelCheck { faults: faults.iter().map(|f| f.name().to_owned()).collect(), configurations: Vec::new() };
    for (name, model) in SyncModel::standard() {
        let configuration = report::check(name, model.with_faults(faults));
        each(&configuration);
        check.configurations.push(configuration);
    }
    check
}

fn print_configuration(r: &syncspec_reports::model::Configuration) {
    println!(
        "{}: {} states ({} unique), depth {}, {:.2} s",
        r.name,
        r.states,
        r.unique_states,
        r.max_depth,
        r.elapsed_ms / 1000.0
    );
    for p in &r.properties {
        let verdict = if p.holds { "holds" } else { "FAILS" };
        println!("  {verdict:<5}  {} {}", p.expectation.name(), p.name);
        if !p.holds {
            if let Some(trace) = &p.trace {
                println!("         counterexample, {} steps:", trace.len());
                for (i, step) in trace.iter().enumerate() {
                    println!("         {:>3}. {step}", i + 1);
                }
            }
        }
    }
}
