//! Who is where: scenarios, their room sizes, the standard mix, and which
//! rooms a shard owns.
//!
//! A run is planned before any user starts: every simulated client gets a
//! slot (a kind of client, a room, a place in the room). Rooms are never
//! split between shards, so the writer and every reader of a room live in
//! one process and one monotonic clock covers both ends of each sample.

use std::fmt;
use std::str::FromStr;

/// A kind of simulated client; one goose scenario each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Channels of 50, a message every 30 s on average, `messages:list` (limit 20).
    Chat,
    /// Rooms of 10, a heartbeat every 5 s, `presence:list`; some leave, some time out.
    Presence,
    /// Rooms of 5 moving at the configured rate, `cursors:list`.
    Cursors,
    /// One writer streaming 50 tokens a second into a message, 20 readers.
    Stream,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 4] = [Kind::Chat, Kind::Presence, Kind::Cursors, Kind::Stream];

    /// The lower-case name used in metric names, tags and files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Presence => "presence",
            Kind::Cursors => "cursors",
            Kind::Stream => "stream",
        }
    }

    /// Clients per room (the stream's writer included).
    pub fn room_size(self) -> usize {
        match self {
            Kind::Chat => 50,
            Kind::Presence => 10,
            Kind::Cursors => 5,
            Kind::Stream => 21,
        }
    }

    /// Whether every update must reach every reader (a message list, a
    /// heartbeat, a token), or only the latest one must (a cursor, where
    /// a newer position rightly replaces an older one).
    pub fn every_update_counts(self) -> bool {
        !matches!(self, Kind::Cursors)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What `--scenario` names: one kind, or the standard mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioName {
    /// Only one kind of client.
    Only(Kind),
    /// 60% chat, 30% presence, 10% cursors.
    Mix,
}

impl FromStr for ScenarioName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "chat" => ScenarioName::Only(Kind::Chat),
            "presence" => ScenarioName::Only(Kind::Presence),
            "cursors" => ScenarioName::Only(Kind::Cursors),
            "stream" => ScenarioName::Only(Kind::Stream),
            "mix" => ScenarioName::Mix,
            other => {
                return Err(format!("unknown scenario {other:?}; expected chat, presence, cursors, stream or mix"))
            }
        })
    }
}

impl fmt::Display for ScenarioName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioName::Only(kind) => f.write_str(kind.name()),
            ScenarioName::Mix => f.write_str("mix"),
        }
    }
}

/// `--shard I/N`: this process runs shard I (1-based) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    /// How many shards share the load.
    pub count: usize,
}

impl Shard {
    /// The whole load in one process.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    fn owns(self, room: usize) -> bool {
        room % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected a shard like 2/4 (shard 2 of 4), got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard {index}/{count}: the index must be from 1 to the count"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How many clients of each kind a scenario runs for `users` users in all.
pub fn split(scenario: ScenarioName, users: usize) -> Vec<(Kind, usize)> {
    match scenario {
        ScenarioName::Only(kind) => vec![(kind, users)],
        ScenarioName::Mix => {
            let chat = users * 60 / 100;
            let presence = users * 30 / 100;
            vec![(Kind::Chat, chat), (Kind::Presence, presence), (Kind::Cursors, users - chat - presence)]
        }
    }
}

/// One room of this shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomPlan {
    /// The kind of its clients.
    pub kind: Kind,
    /// Its number among all rooms of that kind, across every shard.
    pub number: usize,
    /// How many clients it holds.
    pub members: usize,
}

/// The rooms of one shard, per kind, in order.
pub fn rooms(scenario: ScenarioName, users: usize, shard: Shard) -> Vec<RoomPlan> {
    let mut out = Vec::new();
    for (kind, count) in split(scenario, users) {
        let size = kind.room_size();
        let mut left = count;
        let mut number = 0;
        while left > 0 {
            let members = left.min(size);
            // A stream room needs its writer and at least one reader.
            if (kind != Kind::Stream || members >= 2) && shard.owns(number) {
                out.push(RoomPlan { kind, number, members });
            }
            left -= members;
            number += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_splits_users_sixty_thirty_ten() {
        assert_eq!(
            split(ScenarioName::Mix, 5000),
            vec![(Kind::Chat, 3000), (Kind::Presence, 1500), (Kind::Cursors, 500)]
        );
        let total: usize = split(ScenarioName::Mix, 7).iter().map(|(_, n)| n).sum();
        assert_eq!(total, 7);
    }

    #[test]
    fn rooms_are_whole_and_the_last_one_takes_the_rest() {
        let r = rooms(ScenarioName::Only(Kind::Chat), 120, Shard::WHOLE);
        assert_eq!(r.iter().map(|r| r.members).collect::<Vec<_>>(), vec![50, 50, 20]);
    }

    #[test]
    fn shards_partition_the_rooms_without_splitting_one() {
        let whole = rooms(ScenarioName::Mix, 5000, Shard::WHOLE);
        let mut merged: Vec<RoomPlan> =
            (1..=3).flat_map(|i| rooms(ScenarioName::Mix, 5000, Shard { index: i, count: 3 })).collect();
        merged.sort_by_key(|r| (r.kind, r.number));
        assert_eq!(merged, whole);
        let users: usize = whole.iter().map(|r| r.members).sum();
        assert_eq!(users, 5000);
    }

    #[test]
    fn bad_names_and_shards_are_refused_with_the_expected_form() {
        assert!("chatty".parse::<ScenarioName>().unwrap_err().contains("expected chat"));
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().unwrap_err().contains("2/4"));
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
    }
}
