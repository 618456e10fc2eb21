//! Model-check results as the report keeps them: per configuration the
//! states explored and each property's verdict, with the shortest trace.

use serde::{Deserialize, Serialize};

/// `always`, `sometimes` or `eventually`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// Holds in every reachable state; a counterexample breaks it.
    Always,
    /// Holds in some reachable state; the example shows it is not vacuous.
    Sometimes,
    /// Holds on every path eventually.
    Eventually,
}

impl Expectation {
    /// The word.
    pub fn name(self) -> &'static str {
        match self {
            Expectation::Always => "always",
            Expectation::Sometimes => "sometimes",
            Expectation::Eventually => "eventually",
        }
    }
}

/// One property's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// The property's name.
    pub name: String,
    /// What kind of property.
    pub expectation: Expectation,
    /// Whether it held (an `always` with no counterexample, a `sometimes` with an example).
    pub holds: bool,
    /// The shortest path to the counterexample (or, for `sometimes`, the example), one step a line.
    pub trace: Option<Vec<String>>,
}

/// One configuration's check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// What the configuration explores.
    pub name: String,
    /// States visited, counting repeats.
    pub states: usize,
    /// Distinct states.
    pub unique_states: usize,
    /// The longest path explored.
    pub max_depth: usize,
    /// Wall time, milliseconds.
    pub elapsed_ms: f64,
    /// Every property.
    pub properties: Vec<Property>,
}

impl Configuration {
    /// Whether every property held.
    pub fn passed(&self) -> bool {
        self.properties.iter().all(|p| p.holds)
    }
}

/// A whole model check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCheck {
    /// Fault switches that were on in the core.
    pub faults: Vec<String>,
    /// Every configuration, in the order checked.
    pub configurations: Vec<Configuration>,
}

impl ModelCheck {
    /// Distinct states over every configuration.
    pub fn unique_states(&self) -> usize {
        self.configurations.iter().map(|c| c.unique_states).sum()
    }

    /// Properties that did not hold, over every configuration.
    pub fn failed(&self) -> usize {
        self.configurations.iter().flat_map(|c| &c.properties).filter(|p| !p.holds).count()
    }

    /// Properties checked, over every configuration.
    pub fn checked(&self) -> usize {
        self.configurations.iter().map(|c| c.properties.len()).sum()
    }
}
