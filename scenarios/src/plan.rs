//! Who is where: scenarios, their room sizes, the standard mix, and which
//! rooms a shard owns.
//!
//! A run is planned before any user starts: every simulated client gets a
//! slot (a kind of client, a room, a place in the room). Rooms are never
//! split between shards, so the writer and every reader of a room live in
//! one process and one monotonic clock covers both ends of each sample.

use std::fmt;
use std::str::FromStr;

use syncspec_reports::load::Metric;

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
    /// Channels of 50 as chat, each client watching `messages:page` page 0
    /// and loading older pages every 10 s on average until the history ends.
    History,
    /// One client per channel of 21 calling the `messages:streamReply`
    /// action (100 tokens, 20 ms apart), 20 readers.
    Reply,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 6] = [Kind::Chat, Kind::Presence, Kind::Cursors, Kind::Stream, Kind::History, Kind::Reply];

    /// The lower-case name used in metric names, tags and files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Presence => "presence",
            Kind::Cursors => "cursors",
            Kind::Stream => "stream",
            Kind::History => "history",
            Kind::Reply => "reply",
        }
    }

    /// Clients per room (the stream's writer included).
    pub fn room_size(self) -> usize {
        match self {
            Kind::Chat => 50,
            Kind::Presence => 10,
            Kind::Cursors => 5,
            Kind::Stream | Kind::Reply => 21,
            Kind::History => 50,
        }
    }

    /// Whether one member writes and the rest only read (so a room needs
    /// at least two members).
    pub fn one_writer(self) -> bool {
        matches!(self, Kind::Stream | Kind::Reply)
    }

    /// Whether every update must reach every reader (a message list, a
    /// heartbeat, a token), or only the latest one must (a cursor, where
    /// a newer position rightly replaces an older one).
    pub fn every_update_counts(self) -> bool {
        !matches!(self, Kind::Cursors)
    }

    /// What its clients measure: sync, the writer's own round trips and
    /// send lag for every kind, and a kind's own (`page` for history,
    /// `action` for reply).
    pub fn metrics(self) -> impl Iterator<Item = Metric> {
        Metric::ALL.into_iter().filter(move |m| match m {
            Metric::Page => self == Kind::History,
            Metric::Action => self == Kind::Reply,
            Metric::Sync | Metric::Mutation | Metric::Visible | Metric::SendLag => true,
        })
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
            "history" => ScenarioName::Only(Kind::History),
            "reply" => ScenarioName::Only(Kind::Reply),
            "mix" => ScenarioName::Mix,
            other => {
                return Err(format!(
                    "unknown scenario {other:?}; expected chat, presence, cursors, stream, history, reply or mix"
                ))
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
            // A stream or reply room needs its writer and at least one reader.
            if (!kind.one_writer() || members >= 2) && shard.owns(number) {
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
        // A reply channel of one member would have no reader: it is left out.
        let r = rooms(ScenarioName::Only(Kind::Reply), 43, Shard::WHOLE);
        assert_eq!(r.iter().map(|r| r.members).collect::<Vec<_>>(), vec![21, 21]);
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
        assert_eq!("history".parse::<ScenarioName>(), Ok(ScenarioName::Only(Kind::History)));
        assert_eq!("reply".parse::<ScenarioName>(), Ok(ScenarioName::Only(Kind::Reply)));
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
    }
}
