//! The catalogue as a sequential oracle: mutations applied one at a time in
//! a given order, queries evaluated against the result.
//!
//! Checkers replay a backend's committed mutations here, in the order of the
//! commit timestamps the backend claimed, and compare every return value and
//! every pushed result. There are no sessions, no OCC, no rate limits and no
//! clock: only the functions' semantics over the store.

use syncspec_protocol::catalogue::{Function, Kind};
use syncspec_protocol::value::{Object, Value};
use syncspec_protocol::wire::Ts;

use crate::auth::Identity;
use crate::functions::{self, UserError};
use crate::store::{Snapshot, Store};
use crate::txn::Txn;

/// Ids for one mutation's inserts come from a range of this size.
const IDS_PER_MUTATION: u64 = 1 << 20;

/// A store plus the functions that read and write it, one call at a time.
#[derive(Clone, Debug, Default)]
pub struct Oracle {
    store: Store,
    mutations: u64,
}

impl Oracle {
    /// An empty store.
    pub fn new() -> Oracle {
        Oracle::default()
    }

    /// The latest state.
    pub fn head(&self) -> &Snapshot {
        self.store.head()
    }

    /// Runs a mutation and commits its writes at `ts` (or just after the
    /// previous commit, when `ts` is not later). User errors commit nothing.
    pub fn mutate(
        &mut self,
        ts: Ts,
        function: Function,
        args: &Object,
        caller: Option<&Identity>,
    ) -> Result<Value, UserError> {
        self.mutations += 1;
        let head = self.store.head().clone();
        let mut txn = Txn::new(&head, self.mutations * IDS_PER_MUTATION);
        let value = functions::run(function, args, caller, &mut txn)?;
        let (_, writes) = txn.finish();
        let ts = ts.max(self.store.ts() + 1);
        self.store.apply(ts, &writes);
        Ok(value)
    }

    /// Evaluates a query on the latest state.
    pub fn query(&self, function: Function, args: &Object, caller: Option<&Identity>) -> Result<Value, UserError> {
        let mut txn = Txn::new(self.store.head(), 0);
        functions::run(function, args, caller, &mut txn)
    }
}

/// Looks up a catalogue function of `kind` and validates its arguments.
pub fn resolve(kind: Kind, path: &str, args: &Value) -> Result<(Function, Object), String> {
    let function = Function::from_path(path)
        .filter(|f| f.kind() == kind)
        .ok_or_else(|| format!("{path} is not a {kind:?} of the catalogue"))?;
    let fields = function.validate(args).map_err(|e| e.to_string())?;
    Ok((function, fields.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_then_queries() {
        let mut oracle = Oracle::new();
        let args = Object::from([("name".into(), Value::from("c"))]);
        assert_eq!(oracle.mutate(10, Function::CountersIncrement, &args, None), Ok(Value::Int64(1)));
        assert_eq!(oracle.mutate(5, Function::CountersIncrement, &args, None), Ok(Value::Int64(2)));
        assert_eq!(oracle.query(Function::CountersGet, &args, None), Ok(Value::Int64(2)));
        assert!(oracle.head().ts > 10);
        assert!(resolve(Kind::Query, "counters:increment", &Value::Object(args)).is_err());
    }
}
