//! failure_of: what a Python caller receives for dispatcher errors.

use super::*;

#[test]
fn failure_of_no_such_method() {
    let failure = failure_of(Error::NoSuchMethod {
        method: "foobar".into(),
    });
    assert_eq!(
        failure.to_value(),
        json!({
            "class": "NoSuchMethod",
            "module": "oslo_messaging.rpc.dispatcher",
            "message": "Endpoint does not support RPC method foobar",
            "tb": [],
            "args": ["Endpoint does not support RPC method foobar"],
            "kwargs": {}
        })
    );
}

#[test]
fn failure_of_unsupported_version() {
    let failure = failure_of(Error::UnsupportedVersion {
        version: "3.2".into(),
        method: "foo".into(),
    });
    assert_eq!(
        failure.to_value(),
        json!({
            "class": "UnsupportedVersion",
            "module": "oslo_messaging.rpc.dispatcher",
            "message": "Endpoint does not support RPC version 3.2. Attempted method: foo",
            "tb": [],
            "args": ["Endpoint does not support RPC version 3.2. Attempted method: foo"],
            "kwargs": {}
        })
    );
}

#[test]
fn failure_of_remote_error_is_unchanged() {
    let original = RemoteError::value_error("boom").with_traceback(vec!["line\n".into()]);
    assert_eq!(
        failure_of(Error::Remote(Box::new(original.clone()))),
        original
    );
}

/// End to end: a caller of a missing method gets oslo's NoSuchMethod failure.
#[tokio::test]
async fn caller_receives_no_such_method_and_unsupported_version() {
    let transport = memory_transport().await;
    let endpoint = Endpoint::new().method("foo", |_: Context, _: Map<String, Value>| async {
        Ok::<_, RemoteError>(1)
    });
    let server = RpcServer::new(&transport, Target::topic("testtopic").server("testserver"))
        .endpoint(endpoint)
        .start()
        .await
        .unwrap();
    let client =
        RpcClient::new(&transport, Target::topic("testtopic")).timeout(Duration::from_secs(5));
    match client
        .call::<_, Value>(&Context::new(), "foobar", json!({}))
        .await
    {
        Err(Error::Remote(f)) => {
            assert!(
                f.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"),
                "{f:?}"
            );
            assert_eq!(f.message, "Endpoint does not support RPC method foobar");
        }
        other => panic!("expected a NoSuchMethod failure, got {other:?}"),
    }
    match client
        .prepare()
        .version("2.0")
        .call::<_, Value>(&Context::new(), "foo", json!({}))
        .await
    {
        Err(Error::Remote(f)) => {
            assert!(
                f.is("oslo_messaging.rpc.dispatcher", "UnsupportedVersion"),
                "{f:?}"
            );
            assert_eq!(
                f.message,
                "Endpoint does not support RPC version 2.0. Attempted method: foo"
            );
        }
        other => panic!("expected an UnsupportedVersion failure, got {other:?}"),
    }
    server.stop().await;
    server.wait().await.unwrap();
}
