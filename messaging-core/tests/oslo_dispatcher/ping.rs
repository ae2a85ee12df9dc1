//! TestDispatcherWithPingEndpoint

use super::*;

fn ping_request() -> Request {
    Request::new(PING_METHOD, Map::new(), Context::new())
}

#[tokio::test]
async fn dispatcher_with_ping() {
    let dispatcher = Dispatcher::new(
        vec![],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        true,
    )
    .unwrap();
    assert_eq!(
        dispatcher.dispatch(ping_request()).await.unwrap(),
        json!("pong")
    );
}

#[tokio::test]
async fn dispatcher_with_ping_already_used() {
    let endpoint = Endpoint::new().method(PING_METHOD, |_: Context, _: Map<String, Value>| async {
        Ok::<_, RemoteError>("not_pong")
    });
    let dispatcher = Dispatcher::new(
        vec![endpoint],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        true,
    )
    .unwrap();
    assert_eq!(
        dispatcher.dispatch(ping_request()).await.unwrap(),
        json!("not_pong")
    );
}

#[tokio::test]
async fn dispatcher_without_ping_by_default() {
    let dispatcher = Dispatcher::new(
        vec![],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        false,
    )
    .unwrap();
    match dispatcher.dispatch(ping_request()).await {
        Err(Error::UnsupportedVersion { version, method }) => {
            assert_eq!((version.as_str(), method.as_str()), ("1.0", PING_METHOD));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert!(
        !Config::default().default.rpc_ping_enabled,
        "rpc_ping_enabled defaults to False"
    );
}

/// The built-in ping endpoint has the default target: null namespace, version 1.0.
#[tokio::test]
async fn ping_endpoint_has_the_default_target() {
    let dispatcher = Dispatcher::new(
        vec![],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        true,
    )
    .unwrap();
    let mut request = ping_request();
    request.namespace = Some("other".into());
    assert!(matches!(
        dispatcher.dispatch(request.clone()).await,
        Err(Error::UnsupportedVersion { .. })
    ));
    let mut request = ping_request();
    request.version = Some("1.1".into());
    assert!(matches!(
        dispatcher.dispatch(request.clone()).await,
        Err(Error::UnsupportedVersion { .. })
    ));
}

/// `rpc_ping_enabled = True` in the config gives a server the ping endpoint.
#[tokio::test]
async fn server_answers_ping_when_enabled_in_config() {
    let mut config = Config::default();
    config.default.rpc_ping_enabled = true;
    let transport = DriverRegistry::with_memory()
        .transport(&format!("memory:///ping_{}", new_id()), &config)
        .await
        .unwrap();
    let server = RpcServer::new(&transport, Target::topic("testtopic").server("testserver"))
        .start()
        .await
        .unwrap();
    let client =
        RpcClient::new(&transport, Target::topic("testtopic")).timeout(Duration::from_secs(5));
    let pong: String = client
        .call(&Context::new(), PING_METHOD, json!({}))
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    server.stop().await;
    server.wait().await.unwrap();
}
