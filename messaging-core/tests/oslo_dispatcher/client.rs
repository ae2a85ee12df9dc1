//! test_client.py: TestVersionCap, TestCanSendVersion, call/cast target errors.

use super::*;

const TOPIC: &str = "testtopic";

/// A `prepare(version_cap=...)` argument.
#[derive(Clone, Copy)]
enum Cap {
    /// Not passed.
    Keep,
    /// `version_cap=X`.
    Set(&'static str),
    /// `version_cap=None`.
    Clear,
}

struct ClientRow {
    ctor_cap: Option<&'static str>,
    prepare_cap: Cap,
    ctor_version: Option<&'static str>,
    prepare_version: Option<&'static str>,
}

fn client_for(transport: &Transport, row: &ClientRow) -> RpcClient {
    let mut target = Target::topic(TOPIC);
    if let Some(v) = row.ctor_version {
        target = target.version(v);
    }
    let mut client = RpcClient::new(transport, target).timeout(Duration::from_secs(5));
    if let Some(cap) = row.ctor_cap {
        client = client.version_cap(cap);
    }
    match row.prepare_cap {
        Cap::Keep => {}
        Cap::Set(cap) => client = client.prepare().version_cap(cap),
        // RpcClient::prepare() has no way to clear a cap (oslo's
        // `prepare(version_cap=None)`); the prepared client oslo gets is the one
        // without a cap.
        Cap::Clear => {
            client =
                RpcClient::new(transport, client.target().clone()).timeout(Duration::from_secs(5));
        }
    }
    if let Some(v) = row.prepare_version {
        client = client.prepare().version(v);
    }
    client
}

#[derive(Clone, Copy, PartialEq)]
enum How {
    Call,
    Cast,
}

/// Sends `foo` with no arguments and returns what a server on the topic received
/// (`None` if nothing arrived) along with the send's outcome.
async fn send_foo(
    transport: &Transport,
    client: &RpcClient,
    how: How,
) -> (Result<()>, Option<Request>) {
    let mut listener = transport
        .driver()
        .listen(&Target::topic(TOPIC).server("testserver"))
        .await
        .unwrap();
    let mut server = tokio::spawn(async move {
        let incoming = listener.next().await?;
        if let Some(responder) = incoming.responder {
            responder.reply(Ok(Value::Null)).await.unwrap();
        }
        Some(incoming.request.decode().unwrap())
    });
    let outcome = match how {
        How::Call => client
            .call::<_, Value>(&Context::new(), "foo", json!({}))
            .await
            .map(drop),
        How::Cast => client.cast(&Context::new(), "foo", json!({})).await,
    };
    let received = match tokio::time::timeout(Duration::from_millis(200), &mut server).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => {
            server.abort();
            None
        }
    };
    (outcome, received)
}

async fn check_version_cap(
    row: ClientRow,
    how: How,
    expected: std::result::Result<Option<&str>, (&str, &str)>,
) {
    let transport = memory_transport().await;
    let client = client_for(&transport, &row);
    let (outcome, received) = send_foo(&transport, &client, how).await;
    match expected {
        Ok(version) => {
            outcome.unwrap();
            let request = received.expect("the message was sent");
            assert_eq!(request.method, "foo");
            assert!(request.args.is_empty());
            assert_eq!(request.namespace, None);
            assert_eq!(request.version.as_deref(), version);
            assert_eq!(request.reply.is_some(), how == How::Call);
        }
        Err((version, cap)) => {
            match outcome {
                Err(Error::VersionCap {
                    version: v,
                    version_cap: c,
                }) => assert_eq!((v.as_str(), c.as_str()), (version, cap)),
                other => panic!("expected Error::VersionCap, got {other:?}"),
            }
            assert!(received.is_none(), "nothing is sent");
        }
    }
}

macro_rules! version_cap_rows {
    ($($name:ident: ($ctor_cap:expr, $prepare_cap:expr, $ctor_version:expr, $prepare_version:expr) => $expected:expr;)*) => {
        mod version_cap {
            use super::*;
            $(
                pub mod $name {
                    use super::*;
                    fn row() -> ClientRow {
                        ClientRow {
                            ctor_cap: $ctor_cap,
                            prepare_cap: $prepare_cap,
                            ctor_version: $ctor_version,
                            prepare_version: $prepare_version,
                        }
                    }
                    #[tokio::test]
                    async fn call() {
                        check_version_cap(row(), How::Call, $expected).await;
                    }
                    #[tokio::test]
                    async fn cast() {
                        check_version_cap(row(), How::Cast, $expected).await;
                    }
                }
            )*
        }
    };
}

version_cap_rows! {
    all_none: (None, Cap::Keep, None, None) => Ok(None);
    ctor_cap_ok: (Some("1.1"), Cap::Keep, Some("1.0"), None) => Ok(Some("1.0"));
    ctor_cap_override_ok: (Some("2.0"), Cap::Set("1.1"), Some("1.0"), Some("1.0")) => Ok(Some("1.0"));
    ctor_cap_override_none_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None) => Ok(Some("1.0"));
    ctor_cap_minor_fail: (Some("1.0"), Cap::Keep, Some("1.1"), None) => Err(("1.1", "1.0"));
    ctor_cap_major_fail: (Some("2.0"), Cap::Keep, None, Some("1.0")) => Err(("1.0", "2.0"));
    ctor_cap_none_version_ok: (None, Cap::Keep, Some("1.0"), None) => Ok(Some("1.0"));
    ctor_cap_version_none_fail: (Some("1.0"), Cap::Keep, None, None) => Err(("None", "1.0"));
}

/// The argument of oslo's `can_send_version`.
#[derive(Clone, Copy)]
enum Arg {
    /// `can_send_version()`: the prepared target's version (`can_send_target_version`).
    Absent,
    /// `can_send_version(version=X)`, X possibly None.
    Given(Option<&'static str>),
}

/// Checks one TestCanSendVersion row; with an argument, `client.prepare()` answers
/// the same.
fn check_can_send(row: ClientRow, arg: Arg, expected: bool, transport: &Transport) {
    let client = client_for(transport, &row);
    match arg {
        Arg::Absent => assert_eq!(client.can_send_target_version().unwrap(), expected),
        Arg::Given(version) => {
            assert_eq!(client.can_send_version(version).unwrap(), expected);
            assert_eq!(
                client.prepare().can_send_version(version).unwrap(),
                expected
            );
        }
    }
}

macro_rules! can_send_rows {
    ($($name:ident: ($ctor_cap:expr, $prepare_cap:expr, $ctor_version:expr, $prepare_version:expr), $arg:expr => $expected:expr;)*) => {
        mod can_send_version {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let row = ClientRow {
                        ctor_cap: $ctor_cap,
                        prepare_cap: $prepare_cap,
                        ctor_version: $ctor_version,
                        prepare_version: $prepare_version,
                    };
                    check_can_send(row, $arg, $expected, &memory_transport().await);
                }
            )*
        }
    };
}

can_send_rows! {
    all_none: (None, Cap::Keep, None, None), Arg::Absent => true;
    ctor_cap_ok: (Some("1.1"), Cap::Keep, Some("1.0"), None), Arg::Absent => true;
    ctor_cap_override_ok: (Some("2.0"), Cap::Set("1.1"), Some("1.0"), Some("1.0")), Arg::Absent => true;
    ctor_cap_override_none_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None), Arg::Absent => true;
    ctor_cap_can_send_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None), Arg::Given(Some("1.1")) => true;
    ctor_cap_can_send_none_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None), Arg::Given(None) => true;
    ctor_cap_minor_fail: (Some("1.0"), Cap::Keep, Some("1.1"), None), Arg::Absent => false;
    ctor_cap_major_fail: (Some("2.0"), Cap::Keep, None, Some("1.0")), Arg::Absent => false;
    ctor_cap_none_version_ok: (None, Cap::Keep, Some("1.0"), None), Arg::Absent => true;
    ctor_cap_version_none_fail: (Some("1.0"), Cap::Keep, None, None), Arg::Absent => false;
    // The explicit None is checked, not the target's 1.0.
    ctor_cap_version_can_send_none_fail: (Some("1.0"), Cap::Keep, Some("1.0"), None), Arg::Given(None) => false;
}

/// test_invalid_version_type: versions that are not `major.minor[.rev]` integers are
/// refused (oslo refuses them in `prepare`; here the send refuses them) and nothing
/// is sent.
#[tokio::test]
async fn invalid_version_type() {
    for bad in ["5", "5.a", "5.5.a"] {
        let transport = memory_transport().await;
        let client = RpcClient::new(&transport, Target::topic(TOPIC))
            .prepare()
            .version(bad);
        let (outcome, received) = send_foo(&transport, &client, How::Cast).await;
        match outcome {
            Err(Error::InvalidVersion { version }) => assert_eq!(version, bad),
            other => panic!("{bad}: expected InvalidVersion, got {other:?}"),
        }
        assert!(received.is_none());
        let capped = RpcClient::new(&transport, Target::topic(TOPIC)).version_cap("5.0");
        assert!(matches!(
            capped.can_send_version(Some(bad)),
            Err(Error::InvalidVersion { .. })
        ));
    }
}

/// TestCallFanout: a call to a fanout target is refused before sending.
#[tokio::test]
async fn call_fanout() {
    let transport = memory_transport().await;
    let base = RpcClient::new(&transport, Target::topic(TOPIC)).timeout(Duration::from_secs(5));
    let fanout_target = RpcClient::new(&transport, Target::topic(TOPIC).fanout(true))
        .timeout(Duration::from_secs(5));
    for (scenario, client) in [
        ("target", fanout_target.clone()),
        ("prepare", base.prepare().fanout(true)),
        ("both", fanout_target.prepare().fanout(true)),
    ] {
        let (outcome, received) = send_foo(&transport, &client, How::Call).await;
        match outcome {
            Err(Error::InvalidTarget { reason, .. }) => {
                assert!(reason.contains("fanout"), "{scenario}: {reason}")
            }
            other => panic!("{scenario}: expected InvalidTarget, got {other:?}"),
        }
        assert!(received.is_none(), "{scenario}: nothing is sent");
    }
}

/// Transport._send: a topic is required to send.
#[tokio::test]
async fn cast_and_call_need_a_topic() {
    let transport = memory_transport().await;
    let client = RpcClient::new(&transport, Target::default()).timeout(Duration::from_secs(5));
    for outcome in [
        client.cast(&Context::new(), "foo", json!({})).await,
        client
            .call::<_, Value>(&Context::new(), "foo", json!({}))
            .await
            .map(drop),
    ] {
        match outcome {
            Err(Error::InvalidTarget { reason, .. }) => {
                assert!(reason.contains("topic"), "{reason}")
            }
            other => panic!("expected InvalidTarget, got {other:?}"),
        }
    }
}
