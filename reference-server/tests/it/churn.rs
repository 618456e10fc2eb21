//! A client that churns its query set (removing and re-adding thousands of
//! queries as fast as it can) is bounded by its session's bucket of query
//! changes: it gets `FatalError` `TooManyQueryChanges` and close 1013 (try
//! again, so the official clients back off), while a bystander is served.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use syncspec_server::server::ServerConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Long enough for anything here to happen on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// One `ModifyQuerySet` from `base` that adds (or removes) queries `0..n`.
fn change(base: u32, n: u32, add: bool) -> String {
    let modifications: Vec<String> = (0..n)
        .map(|id| match add {
            true => format!(r#"{{"type":"Add","queryId":{id},"udfPath":"counters:get","args":[{{"name":"q{id}"}}]}}"#),
            false => format!(r#"{{"type":"Remove","queryId":{id}}}"#),
        })
        .collect();
    format!(
        r#"{{"type":"ModifyQuerySet","baseVersion":{base},"newVersion":{},"modifications":[{}]}}"#,
        base + 1,
        modifications.join(",")
    )
}

const CONNECT: &str = r#"{"type":"Connect","sessionId":"00000000-0000-4000-8000-00000000c0de","connectionCount":0,"lastCloseReason":"InitialConnect"}"#;

#[tokio::test]
async fn a_client_churning_its_query_set_is_closed_with_1013_and_a_bystander_is_served() {
    let (addr, _stop) = crate::http::start(ServerConfig::standard()).await;
    let (mut churner, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/sync")).await.unwrap();
    churner.send(Message::text(CONNECT)).await.unwrap();
    // 5,000 queries added and removed, frame after frame, without waiting:
    // 10,000 changes a pair, past a burst of 20,000 on the third pair.
    let churn = async {
        let mut base = 0;
        for _ in 0..50 {
            for add in [true, false] {
                if churner.send(Message::text(change(base, 5_000, add))).await.is_err() {
                    return;
                }
                base += 1;
            }
        }
    };
    // The churner reads nothing until it has sent; a bystander meanwhile.
    let (_, served) = tokio::join!(churn, crate::admission::try_bystander(&addr));
    served.expect("the bystander was served while the churner churned");
    let ending = tokio::time::timeout(DEADLINE, async {
        let mut fatal = None;
        while let Some(Ok(message)) = churner.next().await {
            match message {
                Message::Text(t) if t.contains("FatalError") => fatal = Some(t.to_string()),
                Message::Close(frame) => return (fatal, frame),
                _ => {}
            }
        }
        (fatal, None)
    })
    .await
    .expect("the churning session was never closed");
    let (fatal, close) = ending;
    let fatal = fatal.expect("a FatalError before the close");
    assert!(fatal.contains("TooManyQueryChanges"), "{fatal}");
    let close = close.expect("a close frame");
    assert_eq!((close.code, close.reason.as_str()), (CloseCode::Again, "TooManyQueryChanges"));
    crate::admission::try_bystander(&addr).await.expect("the bystander is served afterwards");
}
